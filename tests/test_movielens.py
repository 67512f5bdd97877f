"""MovieLens catalogue: parsers on tiny fake folders, and download/verify/extract without the network.

Downloads are simulated by replacing ``movielens._urlopen`` with a function serving local bytes.
"""

from __future__ import annotations

import hashlib
import io
import urllib.error
import zipfile
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from latentrec.data import movielens as ml
from latentrec.errors import ChecksumError, DataError, DownloadError

GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def _flags(*names):
    return "|".join("1" if g in names else "0" for g in GENRES)


def write_100k(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("1\t1\t5\t881250949\n1\t2\t3\t881250950\n2\t1\t4\t881250951\n")
    items = ("1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|"
             + _flags("Animation", "Children's", "Comedy") + "\n"
             + "2|Misérables, Les (1995)|01-Jan-1995||http://x|" + _flags("Drama", "War") + "\n")
    (folder / "u.item").write_bytes(items.encode("latin-1"))
    (folder / "u.genre").write_text("".join(f"{g}|{j}\n" for j, g in enumerate(GENRES)) + "\n")
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|01234\n")
    return folder


def write_dat(folder, users=True):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    movies = "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::Bárbaro: Test (1996)::Animation|Musical\n"
    (folder / "movies.dat").write_bytes(movies.encode("latin-1"))
    if users:
        (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    return folder


def write_csv(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_bytes(b"userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n"
                                         b"1,3,0.5,964981247\r\n7,3,3.5,964982224\r\n")
    (folder / "movies.csv").write_bytes('movieId,title,genres\r\n1,Toy Story (1995),Adventure|Animation\r\n'
                                        '3,"American President, The (1995)",(no genres listed)\r\n'
                                        '4,Café (2010),Drama\r\n'.encode("utf-8"))
    (folder / "links.csv").write_bytes(b"movieId,imdbId,tmdbId\r\n1,0114709,862\r\n3,0112346,\r\n4,0000001,5\r\n")
    return folder


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def zip_of_folder(folder, arcroot) -> bytes:
    return zip_bytes({f"{arcroot}/{p.name}": p.read_bytes() for p in sorted(folder.iterdir())})


class FakeResponse(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


@pytest.fixture
def serve(monkeypatch):
    """serve(blob, md5=...) makes ml-100k download ``blob``; returns the list of requested URLs."""
    monkeypatch.setattr(ml, "_BACKOFF", 0.0)
    calls = []

    def install(blob=None, *, md5="auto", error=None):
        if md5 == "auto":
            md5 = hashlib.md5(blob).hexdigest()
        monkeypatch.setitem(ml.KNOWN_DATASETS, "ml-100k", replace(ml.KNOWN_DATASETS["ml-100k"], md5=md5))

        def opener(url, timeout=None):
            calls.append(url)
            if error is not None:
                raise error
            return FakeResponse(blob)

        monkeypatch.setattr(ml, "_urlopen", opener)
        return calls

    return install


# ---------------------------------------------------------------------------- parsers
def test_parse_100k_folder(tmp_path):
    data = ml.load_movielens(path=write_100k(tmp_path / "ml-100k"))
    assert (len(data), data.n_users, data.n_items) == (3, 2, 2)
    assert data.rating_scale == (1.0, 5.0) and data.name == "ml-100k"
    assert data.timestamps.dtype == np.int64 and data.timestamps.min() == 881250949
    meta = data.item_metadata
    assert meta.loc[1, "title"] == "Toy Story (1995)" and meta.loc[1, "year"] == 1995
    assert meta.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert meta.loc[2, "title"] == "Misérables, Les (1995)"  # Latin-1 decoded
    assert meta.loc[2, "genres"] == "Drama|War"
    assert data.user_metadata.loc[2, "zip"] == "01234" and data.user_metadata.loc[1, "age"] == 24


def test_parse_dat_folder_ml1m_style(tmp_path):
    data = ml.load_movielens(path=write_dat(tmp_path / "some-ml"))
    assert (len(data), data.n_users, data.n_items) == (3, 2, 2)
    assert data.rating_scale == (1.0, 5.0)  # users.dat present: the 1M layout
    assert data.item_metadata.loc[661, "title"] == "Bárbaro: Test (1996)"  # '::' split only, ':' in title kept
    assert data.item_metadata.loc[1193, "year"] == 1975
    assert data.item_metadata.loc[661, "genres"] == "Animation|Musical"
    assert data.user_metadata.loc[2, "age"] == 56


def test_parse_dat_without_users_is_half_star_scale(tmp_path):
    data = ml.load_movielens(path=write_dat(tmp_path / "x", users=False))
    assert data.rating_scale == (0.5, 5.0) and data.user_metadata is None


def test_parse_csv_folder_crlf_quotes_links(tmp_path):
    data = ml.load_movielens(path=write_csv(tmp_path / "ml-latest-small"))
    assert (len(data), data.n_users, data.n_items) == (3, 2, 2)
    assert data.rating_scale == (0.5, 5.0)
    assert list(data.users.ids) == [1, 7]
    meta = data.item_metadata
    assert meta.loc[3, "title"] == "American President, The (1995)"
    assert meta.loc[3, "genres"] == "" and meta.loc[1, "genres"] == "Adventure|Animation"
    assert meta.loc[1, "imdb_id"] == "tt0114709" and meta.loc[1, "tmdb_id"] == 862
    assert pd.isna(meta.loc[3, "tmdb_id"])  # an empty tmdbId stays missing, not 0
    assert meta.loc[4, "title"] == "Café (2010)" and meta.loc[4, "year"] == 2010


def test_year_parsing_edge_cases():
    years = ml._year(pd.Series(["Toy Story (1995)", "Fawlty Towers (1975-1979)", "No Year", "Trailing (2001) "]))
    assert years.iloc[0] == 1995 and years.iloc[1] == 1975 and pd.isna(years.iloc[2]) and years.iloc[3] == 2001


def test_detect_format(tmp_path):
    assert ml.detect_format(write_100k(tmp_path / "a")) == "100k"
    assert ml.detect_format(write_dat(tmp_path / "b")) == "dat"
    assert ml.detect_format(write_csv(tmp_path / "c")) == "csv"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="expected u.data, ratings.dat or ratings.csv"):
        ml.detect_format(tmp_path / "empty")
    with pytest.raises(DataError, match="not a folder"):
        ml.detect_format(tmp_path / "missing")


def test_folder_without_ratings_names_the_missing_file(tmp_path):
    folder = write_dat(tmp_path / "ml-1m")
    (folder / "ratings.dat").unlink()
    with pytest.raises(DataError, match=r"ratings\.dat is missing.*ml-1m\.zip.*place ratings\.dat"):
        ml.load_movielens(path=folder)


# ---------------------------------------------------------------------------- catalogue and data home
def test_catalogue_entries():
    assert set(ml.KNOWN_DATASETS) == {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m",
                                      "ml-latest-small", "ml-latest"}
    assert ml.KNOWN_DATASETS["ml-10m"].folder == "ml-10M100K"
    assert ml.KNOWN_DATASETS["ml-1m"].url == "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
    for info in ml.KNOWN_DATASETS.values():
        assert info.md5 is None or len(info.md5) == 32
        assert (info.md5 is None) == (not info.stable)


def test_unknown_dataset_name():
    with pytest.raises(DataError, match=r"unknown dataset 'ml-5m' \(did you mean 'ml-25m'\?\); expected one of ml-100k"):
        ml.load_movielens("ml-5m")
    with pytest.raises(DataError, match=r"unknown dataset 'books'; expected one of ml-100k"):
        ml.load_movielens("books")


def test_name_aliases():
    assert ml._info("100k").name == "ml-100k" and ml._info("ML-10M100K").name == "ml-10m"


def test_no_name_no_path():
    with pytest.raises(DataError, match="name"):
        ml.load_movielens()


def test_data_home_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTREC_DATA_HOME", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ml.get_data_home(tmp_path / "arg") == tmp_path / "arg"
    assert ml.get_data_home() == tmp_path / "env"
    monkeypatch.delenv("LATENTREC_DATA_HOME")
    assert ml.get_data_home() == tmp_path / "xdg" / "latentrec"


def test_dataset_status(tmp_path):
    write_100k(tmp_path / "ml-100k")
    write_dat(tmp_path / "ml-1m")
    (tmp_path / "ml-1m" / "ratings.dat").unlink()
    status = {name: (present, path) for name, present, path in ml.dataset_status(tmp_path)}
    assert status["ml-100k"] == (True, tmp_path / "ml-100k")
    assert status["ml-1m"][0] is False and status["ml-10m"][1] == tmp_path / "ml-10M100K"


def test_load_by_name_from_data_home(tmp_path, monkeypatch):
    write_csv(tmp_path / "ml-latest-small")
    monkeypatch.setenv("LATENTREC_DATA_HOME", str(tmp_path))
    data = ml.load_movielens("ml-latest-small", download=False)
    assert data.name == "ml-latest-small" and len(data) == 3


def test_offline_missing_without_download_says_what_to_place(tmp_path):
    with pytest.raises(DownloadError) as exc:
        ml.load_movielens("ml-1m", data_home=tmp_path, download=False)
    msg = str(exc.value)
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in msg
    assert str(tmp_path / "ml-1m") in msg and "ratings.dat" in msg


# ---------------------------------------------------------------------------- download
def test_download_extracts_verifies_and_caches(tmp_path, serve):
    blob = zip_of_folder(write_100k(tmp_path / "src"), "ml-100k")
    calls = serve(blob)
    home = tmp_path / "home"
    data = ml.load_movielens("ml-100k", data_home=home)
    assert len(data) == 3 and calls == [ml.KNOWN_DATASETS["ml-100k"].url]
    assert (home / "ml-100k" / "u.item").is_file()
    assert not (home / "ml-100k.zip").exists()  # the archive is removed once extracted
    assert [p.name for p in home.iterdir()] == ["ml-100k"]  # no temporary files left
    ml.load_movielens("ml-100k", data_home=home)
    assert len(calls) == 1  # present: not downloaded again


def test_checksum_mismatch_names_file_expected_and_actual(tmp_path, serve):
    blob = zip_of_folder(write_100k(tmp_path / "src"), "ml-100k")
    serve(blob, md5="0" * 32)
    home = tmp_path / "home"
    with pytest.raises(ChecksumError) as exc:
        ml.load_movielens("ml-100k", data_home=home)
    msg = str(exc.value)
    assert "ml-100k.zip" in msg and "0" * 32 in msg and hashlib.md5(blob).hexdigest() in msg
    assert list(home.iterdir()) == []  # nothing half-written is kept


def test_corrupt_zip(tmp_path, serve):
    serve(b"this is not a zip archive at all" * 10)
    with pytest.raises(DownloadError, match=r"ml-100k\.zip is not a valid zip archive"):
        ml.load_movielens("ml-100k", data_home=tmp_path)
    assert not (tmp_path / "ml-100k").exists()


def test_truncated_zip(tmp_path, serve):
    blob = zip_of_folder(write_100k(tmp_path / "src"), "ml-100k")
    serve(blob[: len(blob) // 2])
    with pytest.raises(DownloadError, match="corrupt or truncated"):
        ml.load_movielens("ml-100k", data_home=tmp_path / "home")


def test_zip_with_bad_crc_is_rejected(tmp_path, serve):
    blob = bytearray(zip_bytes({"ml-100k/u.data": b"1\t1\t5\t1\n" * 50}))
    blob[30 + len("ml-100k/u.data") + 5] ^= 0xFF  # flip a byte of the stored (uncompressed) member data
    serve(bytes(blob))
    with pytest.raises(DownloadError, match=r"member 'ml-100k/u\.data' is corrupt \(CRC mismatch\)"):
        ml.load_movielens("ml-100k", data_home=tmp_path / "home")


def test_path_escaping_member_is_refused(tmp_path, serve):
    home = tmp_path / "home"
    blob = zip_bytes({"ml-100k/u.data": b"1\t1\t5\t1\n", "ml-100k/../../evil.txt": b"owned"})
    serve(blob)
    with pytest.raises(DownloadError, match="outside"):
        ml.load_movielens("ml-100k", data_home=home)
    assert not (tmp_path / "evil.txt").exists() and not (home / "evil.txt").exists()
    assert not (home / "ml-100k").exists()


def test_absolute_member_is_refused(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes({"/etc/evil": b"x"}))
    with pytest.raises(DownloadError, match="outside"):
        ml._safe_extract(archive, tmp_path / "out")


def test_zip_without_expected_folder(tmp_path, serve):
    serve(zip_bytes({"other/u.data": b"1\t1\t5\t1\n"}))
    with pytest.raises(DownloadError, match=r"does not contain ml-100k/u\.data"):
        ml.load_movielens("ml-100k", data_home=tmp_path)


def test_offline_download_error_says_url_and_folder(tmp_path, serve):
    calls = serve(b"", error=urllib.error.URLError("Name or service not known"))
    with pytest.raises(DownloadError) as exc:
        ml.load_movielens("ml-100k", data_home=tmp_path)
    msg = str(exc.value)
    assert "Name or service not known" in msg
    assert "download https://files.grouplens.org/datasets/movielens/ml-100k.zip" in msg
    assert f"place u.data" in msg and str(tmp_path / "ml-100k") in msg
    assert len(calls) == ml._RETRIES  # transient failures are retried


def test_http_404_is_not_retried(tmp_path, serve):
    err = urllib.error.HTTPError("u", 404, "Not Found", {}, None)
    calls = serve(b"", error=err)
    with pytest.raises(DownloadError, match="Not Found"):
        ml.load_movielens("ml-100k", data_home=tmp_path)
    assert len(calls) == 1


def test_unwritable_data_home(tmp_path, serve):
    serve(b"unused")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(DownloadError, match=r"data home .*a-file/home is not writable"):
        ml.load_movielens("ml-100k", data_home=blocker / "home")


# ---------------------------------------------------------------------------- hashes
def test_file_hash_known_answers(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"hello\n")
    assert ml.file_hash(f, "gitsha1") == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object
    assert ml.file_hash(f, "md5") == "b1946ac92492d2347c6235b4d2611184"


def test_verify_files_rejects_modified_file(tmp_path):
    folder = write_100k(tmp_path / "ml-100k")
    with pytest.raises(ChecksumError, match=r"u\.data: sha256 is [0-9a-f]{64}, expected 06416e59"):
        ml.verify_files(folder, "ml-100k")
    with pytest.raises(ChecksumError):
        ml.load_movielens(path=folder, verify=True)


def test_verify_files_skips_absent_files(tmp_path):
    (tmp_path / "empty").mkdir()
    assert ml.verify_files(tmp_path / "empty", "ml-1m") == {"ratings.dat": False, "movies.dat": False,
                                                           "users.dat": False}


def test_docs_catalogue_table_agrees_with_code():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "data.md"
    rows = {line.split("|")[1].strip(" `"): line for line in doc.read_text().splitlines() if line.startswith("| `ml-")}
    assert set(rows) == set(ml.KNOWN_DATASETS)
    for name, info in ml.KNOWN_DATASETS.items():
        assert f"`{info.folder}`" in rows[name] and (info.md5 or "none") in rows[name]
        assert f"| {info.format} |" in rows[name]


def test_malformed_ratings_file_names_the_file(tmp_path):
    # issue 16: garbage in u.data used to be reported without its line
    folder = write_100k(tmp_path / "ml-100k")
    (folder / "u.data").write_text("1\t1\t5\t881250949\n1\tx\t3\t881250950\n")
    with pytest.raises(DataError, match=r"u\.data, line 2: column 'item' is 'x'; expected an integer"):
        ml.load_movielens(path=folder)


def test_malformed_movies_dat_names_the_line(tmp_path):
    # issue 16: garbage in movies.dat used to be reported without its line
    folder = write_dat(tmp_path / "x")
    (folder / "movies.dat").write_text("1::Toy Story (1995)::Comedy\n\n1193 no separators here\n")
    with pytest.raises(DataError, match=r"x/movies\.dat, line 3: expected 3 '::'-separated fields, "
                                        r"the line reads '1193 no separators here'"):
        ml.load_movielens(path=folder)


def test_rating_outside_the_release_scale_is_reported(tmp_path):
    folder = write_100k(tmp_path / "ml-100k")
    (folder / "u.data").write_text("1\t1\t5\t881250949\n1\t2\t9\t881250950\n")
    with pytest.raises(DataError, match=r"ml-100k: .*rating.* is 9, outside the declared rating scale \[1, 5\]"):
        ml.load_movielens(path=folder)
