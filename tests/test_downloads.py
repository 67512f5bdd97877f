"""Issue 16 (part B), downloads against a real HTTP server on 127.0.0.1 (a thread, stopped by the fixture).

Each route of the server misbehaves in one way: missing, flaky, truncated, trickling,
corrupt once or always, changed upstream, altered in transit. Every case checks what
the user is told (what happened, how many attempts) and that nothing is left behind.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import threading
import time
import zipfile
from dataclasses import replace

import pytest

from latentrec.data import movielens as ml
from latentrec.errors import ChecksumError, DataError, DownloadError


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


GOOD = _zip({"ml-100k/u.data": b"1\t1\t5\t881250949\n1\t2\t3\t881250950\n2\t1\t4\t881250951\n"})
GARBAGE = b"this is not a zip archive" * 40


def _bad_member() -> bytes:
    """A zip whose deflated member is damaged: zlib, not zipfile, notices (used to raise a raw zlib.error)."""
    blob = bytearray(_zip({"ml-100k/u.data": b"1\t1\t5\t881250949\n" * 400}))
    start = 30 + len("ml-100k/u.data")
    for k in range(start + 2, start + 40):
        blob[k] ^= 0x5A
    return bytes(blob)


class _Handler(http.server.BaseHTTPRequestHandler):
    counts: dict = {}

    def log_message(self, *args):  # quiet
        pass

    def _send(self, body: bytes, status: int = 200, length: int | None = None):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's name
        route = self.path.strip("/").split("/")[0]
        n = self.counts[route] = self.counts.get(route, 0) + 1
        if route == "good":
            self._send(GOOD)
        elif route == "flaky":
            self._send(b"busy", 500) if n == 1 else self._send(GOOD)
        elif route == "truncated":
            self._send(GOOD[: len(GOOD) // 2], length=len(GOOD))  # closes early
        elif route == "truncated-once":
            self._send(GOOD[:100], length=len(GOOD)) if n == 1 else self._send(GOOD)
        elif route == "drip":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(60):  # bounded: 18 s at most, stops when the client hangs up
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.3)
        elif route == "corrupt-once":
            self._send(GARBAGE) if n == 1 else self._send(GOOD)
        elif route == "corrupt":
            self._send(GARBAGE)
        elif route == "bad-member":
            self._send(_bad_member())
        elif route == "flip":
            self._send(GOOD + bytes([n]))  # different bytes every time
        else:
            self._send(b"no such file", 404)


@pytest.fixture()
def server(monkeypatch):
    """Base URL of the local server; ml-100k's published md5 is that of GOOD; no backoff."""
    _Handler.counts = {}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setattr(ml, "_BACKOFF", 0.0)
    monkeypatch.setitem(ml.KNOWN_DATASETS, "ml-100k",
                        replace(ml.KNOWN_DATASETS["ml-100k"], md5=hashlib.md5(GOOD).hexdigest()))
    monkeypatch.delenv(ml.URL_ENV, raising=False)
    monkeypatch.delenv(ml.DEADLINE_ENV, raising=False)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield lambda route: f"{base}/{route}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _no_md5(monkeypatch):
    monkeypatch.setitem(ml.KNOWN_DATASETS, "ml-100k", replace(ml.KNOWN_DATASETS["ml-100k"], md5=None))


def _left(home):
    return sorted(p.name for p in home.iterdir()) if home.exists() else []


def test_download_from_a_configured_mirror(tmp_path, server):
    folder = ml.download_movielens("ml-100k", tmp_path, base_url=server("good"))
    assert (folder / "u.data").is_file() and _left(tmp_path) == ["ml-100k"]


def test_mirror_from_the_environment(tmp_path, server, monkeypatch):
    monkeypatch.setenv(ml.URL_ENV, server("good"))
    data = ml.load_movielens("ml-100k", data_home=tmp_path)
    assert len(data) == 3 and _Handler.counts == {"good": 1}
    assert ml.KNOWN_DATASETS["ml-100k"].url == server("good") + "ml-100k.zip"


@pytest.mark.parametrize("url,words", [("ftp://mirror/x/", "is not an http:// or https:// URL"),
                                       ("/local/folder", "is not an http:// or https:// URL")])
def test_bad_base_url(tmp_path, server, url, words):
    with pytest.raises(DataError, match=words):
        ml.download_movielens("ml-100k", tmp_path, base_url=url)


@pytest.mark.parametrize("deadline", [0, -1, float("nan"), float("inf"), "soon"])
def test_bad_deadline(tmp_path, server, deadline):
    with pytest.raises(DataError, match="deadline must be a positive number of seconds"):
        ml.download_movielens("ml-100k", tmp_path, base_url=server("good"), deadline=deadline)


def test_404_counts_one_attempt(tmp_path, server):
    # issue 16: a 404 said "after 3 attempts" after one request
    with pytest.raises(DownloadError, match=r"HTTP 404 .*not retried\) after 1 attempt\b") as info:
        ml.download_movielens("ml-100k", tmp_path, base_url=server("missing"))
    assert _Handler.counts == {"missing": 1} and "To install ml-100k by hand" in str(info.value)
    assert _left(tmp_path) == []


def test_server_error_is_retried(tmp_path, server):
    ml.download_movielens("ml-100k", tmp_path, base_url=server("flaky"))
    assert _Handler.counts == {"flaky": 2}


def test_truncated_response_says_incomplete(tmp_path, server):
    with pytest.raises(DownloadError, match=r"incomplete: the connection closed after \d[\d,]* .*bytes\) after 3 attempts"):
        ml.download_movielens("ml-100k", tmp_path, base_url=server("truncated"))
    assert _Handler.counts == {"truncated": 3} and _left(tmp_path) == []


def test_truncated_once_then_complete(tmp_path, server):
    ml.download_movielens("ml-100k", tmp_path, base_url=server("truncated-once"))
    assert _Handler.counts == {"truncated-once": 2}


def test_overall_deadline_stops_a_trickle(tmp_path, server):
    # issue 16: a server sending 1 byte every 0.3 s kept the download running forever
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=r"the 1 s deadline passed with \d+ of 1,000 bytes received"):
        ml.download_movielens("ml-100k", tmp_path, base_url=server("drip"), deadline=1.0)
    assert time.monotonic() - t0 < 6
    assert _left(tmp_path) == []


def test_deadline_from_the_environment(tmp_path, server, monkeypatch):
    monkeypatch.setenv(ml.DEADLINE_ENV, "0.8")
    with pytest.raises(DownloadError, match=r"0\.8 s deadline"):
        ml.download_movielens("ml-100k", tmp_path, base_url=server("drip"))


def test_corrupt_download_is_fetched_again_once(tmp_path, server, monkeypatch):
    _no_md5(monkeypatch)  # like ml-latest-small: nothing to check the bytes against but the zip itself
    ml.download_movielens("ml-100k", tmp_path, base_url=server("corrupt-once"))
    assert _Handler.counts == {"corrupt-once": 2} and _left(tmp_path) == ["ml-100k"]


def test_always_corrupt_download_gives_up_after_one_refetch(tmp_path, server, monkeypatch):
    _no_md5(monkeypatch)
    with pytest.raises(DownloadError, match=r"not a valid zip archive.*fetched again .* corrupt again"):
        ml.download_movielens("ml-100k", tmp_path, base_url=server("corrupt"))
    assert _Handler.counts == {"corrupt": 2} and _left(tmp_path) == []  # the bad archive is not kept


def test_cached_truncated_archive_is_replaced(tmp_path, server, monkeypatch):
    # issue 16: a truncated ml-latest-small.zip (no md5 upstream) stayed in the data home for good
    _no_md5(monkeypatch)
    (tmp_path / "ml-100k.zip").write_bytes(GOOD[: len(GOOD) // 2])
    ml.download_movielens("ml-100k", tmp_path, base_url=server("good"))
    assert _Handler.counts == {"good": 1} and _left(tmp_path) == ["ml-100k"]


def test_cached_archive_failing_its_md5_is_replaced(tmp_path, server):
    (tmp_path / "ml-100k.zip").write_bytes(b"stale")
    ml.download_movielens("ml-100k", tmp_path, base_url=server("good"))
    assert _Handler.counts == {"good": 1}


def test_corrupt_member_is_a_download_error_not_zlib(tmp_path, server, monkeypatch):
    # issue 16: a corrupt member raised a raw zlib.error
    _no_md5(monkeypatch)
    with pytest.raises(DownloadError, match=r"corrupt") as info:
        ml.download_movielens("ml-100k", tmp_path, base_url=server("bad-member"))
    assert type(info.value) in (DownloadError,) and _Handler.counts == {"bad-member": 2}


def test_changed_upstream(tmp_path, server, monkeypatch):
    monkeypatch.setitem(ml.KNOWN_DATASETS, "ml-100k", replace(ml.KNOWN_DATASETS["ml-100k"], md5="0" * 32))
    with pytest.raises(ChecksumError, match=r"the file changed upstream \(two complete downloads agree\); 2 attempts"):
        ml.download_movielens("ml-100k", tmp_path, base_url=server("good"))
    assert _left(tmp_path) == []


def test_altered_in_transit(tmp_path, server, monkeypatch):
    monkeypatch.setitem(ml.KNOWN_DATASETS, "ml-100k", replace(ml.KNOWN_DATASETS["ml-100k"], md5="0" * 32))
    with pytest.raises(ChecksumError, match=r"corrupted in transit \(md5 [0-9a-f]{32} then [0-9a-f]{32}\)"):
        ml.download_movielens("ml-100k", tmp_path, base_url=server("flip"))


def test_no_network_mentions_the_data_home_variable(tmp_path, server):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=r"after 3 attempts; without network access.*LATENTREC_DATA_HOME"):
        ml.download_movielens("ml-100k", tmp_path, base_url=f"http://127.0.0.1:{port}/")


def test_missing_without_download_mentions_the_data_home_variable(tmp_path):
    with pytest.raises(DownloadError, match=r"LATENTREC_DATA_HOME"):
        ml.load_movielens("ml-100k", data_home=tmp_path, download=False)


def test_stale_part_files_and_staging_folders_are_cleaned(tmp_path, server):
    # issue 16: a killed download left .part files behind for good
    old = time.time() - 2 * ml._STALE_S
    part = tmp_path / ".ml-100k.zip.abc123.part"
    part.write_bytes(b"half")
    staging = tmp_path / ".ml-100k.xyz"
    staging.mkdir()
    (staging / "junk").write_text("x")
    fresh = tmp_path / ".ml-100k.zip.running.part"  # another process downloading right now: kept
    fresh.write_bytes(b"busy")
    for p in (part, staging):
        os.utime(p, (old, old))
    ml.download_movielens("ml-100k", tmp_path, base_url=server("good"))
    assert _left(tmp_path) == [".ml-100k.zip.running.part", "ml-100k"]
