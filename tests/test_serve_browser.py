"""End-to-end: the web page in headless Chromium against a real server on 127.0.0.1.

Chromium is driven through the Chrome DevTools Protocol over a websocket with a
tiny stdlib client (no selenium/playwright needed): load the page, search
"Toy Story", click a similar movie, open another one with the keyboard, and
save a screenshot. Skips only where no Chromium binary exists (.ci/run
installs Debian's ``chromium`` when missing).

Set ``LATENTREC_E2E_MODEL`` to a saved model directory to run the page against
it instead of the synthetic one, and ``LATENTREC_SCREENSHOT`` to a path to copy
the screenshot to (that is how docs/screenshot.png is made).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the [serve] extra (fastapi) is not installed")
pytest.importorskip("uvicorn", reason="the [serve] extra (uvicorn) is not installed")


def chromium_binary() -> str | None:
    env = os.environ.get("LATENTREC_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = chromium_binary()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary found (apt-get install chromium), "
                                                         "or set LATENTREC_CHROMIUM")


# ---------------------------------------------------------------- a minimal CDP client
class CDP:
    """Chrome DevTools Protocol over one websocket (RFC 6455 client, text frames only)."""

    def __init__(self, ws_url: str, timeout: float = 30.0):
        assert ws_url.startswith("ws://")
        hostport, path = ws_url[5:].split("/", 1)
        host, port = hostport.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket handshake refused: {head[:200]!r}")
        self.next_id = 0
        self.events: list[dict] = []

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("websocket closed")
            buf += chunk
        return buf

    def _send(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _message(self) -> dict:
        parts = []
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("the browser closed the websocket")
            parts.append(payload)
            if b0 & 0x80:
                return json.loads(b"".join(parts))

    def call(self, method: str, **params):
        self.next_id += 1
        self._send(0x1, json.dumps({"id": self.next_id, "method": method, "params": params}).encode())
        while True:
            msg = self._message()
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def js(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait(self, expression: str, timeout: float = 20.0, what: str = ""):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what or expression}")

    def key(self, key: str, code: int, text: str = "") -> None:
        down = {"type": "keyDown", "key": key, "code": key, "windowsVirtualKeyCode": code}
        if text:
            down["text"] = text
        self.call("Input.dispatchKeyEvent", **down)
        self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=key, windowsVirtualKeyCode=code)

    def click(self, selector: str) -> None:
        """A real mouse click at the centre of the element (scrolled into view first)."""
        box = self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                      "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
                      "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        x, y = box
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        self.call("Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, button="left", clickCount=1)
        self.call("Input.dispatchMouseEvent", type="mouseReleased", x=x, y=y, button="left", clickCount=1)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- fixtures
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    given = os.environ.get("LATENTREC_E2E_MODEL")
    if given:
        return Path(given)
    from test_serve_api import factor_model, movie_data

    path = tmp_path_factory.mktemp("e2e") / "model"
    factor_model().fit(movie_data()).save(path)
    return path


@pytest.fixture(scope="module")
def server(model_dir):
    port = free_port()
    code = ("import sys; from latentrec.serve import run; "
            "run(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]), log_level='warning', tmdb_api_key='')")
    proc = subprocess.Popen([sys.executable, "-c", code, str(model_dir), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {proc.stdout.read().decode(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/api/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture()
def browser(tmp_path):
    profile = tempfile.mkdtemp(prefix="latentrec-chromium-")
    proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--disable-background-networking", "--disable-extensions", "--no-first-run",
                             "--no-default-browser-check", "--hide-scrollbars", "--mute-audio",
                             f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1",
                             "--remote-debugging-port=0", "--window-size=1280,1000", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cdp = None
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Chromium did not start (no DevToolsActivePort)")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/json/list")
        pages = [t for t in json.loads(conn.getresponse().read()) if t["type"] == "page"]
        cdp = CDP(pages[0]["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            cdp.call(f"{domain}.enable")
        cdp.call("Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False)
        yield cdp
    finally:
        if cdp is not None:
            cdp.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


def small_png(png: bytes) -> bytes:
    """The PNG reduced to a 256-colour palette when Pillow is there (else unchanged)."""
    try:
        import io

        from PIL import Image
    except ImportError:
        return png
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(
        out, format="PNG", optimize=True)
    return out.getvalue()


def featured(cdp: CDP) -> str | None:
    return cdp.js("(() => { const h = document.querySelector('#featured-title'); return h && h.textContent; })()")


# ---------------------------------------------------------------- the test
def test_search_click_and_screenshot(server, browser, tmp_path):
    cdp = browser
    cdp.call("Page.navigate", url=server + "/")
    cdp.wait("document.body && document.body.dataset.ready === 'true'", what="the page to initialise")
    assert "items" in cdp.js("document.querySelector('#model-info').textContent")

    # search with the keyboard: type, press Enter
    cdp.js("document.querySelector('#search-input').focus()")
    cdp.call("Input.insertText", text="Toy Story")
    cdp.key("Enter", 13, "\r")
    cdp.wait("document.querySelector('#featured-title')?.textContent === 'Toy Story'", what="Toy Story to show")
    cdp.wait("document.querySelectorAll('#similar-grid button.card').length === 10", what="10 similar cards")
    cdp.wait("document.querySelector('#similar-heading').textContent.includes('Toy Story')")

    # click the first similar movie: it becomes the selected one, with its own 10 neighbours
    first = cdp.js("document.querySelector('#similar-grid button.card').dataset.id")
    name = cdp.js("document.querySelector('#similar-grid button.card .card-title').textContent")
    cdp.click("#similar-grid li:first-child button.card")
    cdp.wait(f"location.hash === '#item={first}'", what="the click to navigate")
    cdp.wait(f"document.querySelector('#featured-title')?.textContent === {json.dumps(name)}", what=name)
    cdp.wait("document.querySelectorAll('#similar-grid button.card').length === 10")
    ids = cdp.js("[...document.querySelectorAll('#similar-grid button.card')].map(b => b.dataset.id)")
    assert first not in ids  # never similar to itself
    assert cdp.js("document.activeElement.id") == "featured-title"  # focus follows the click, not lost

    # keyboard: focus a card and press Enter
    second, second_name = cdp.js("(() => { const b = document.querySelectorAll('#similar-grid button.card')[1]; "
                                 "b.focus(); return [b.dataset.id, b.querySelector('.card-title').textContent]; })()")
    assert cdp.js("document.activeElement.classList.contains('card')")
    cdp.key("Enter", 13, "\r")
    cdp.wait(f"document.querySelector('#featured-title')?.textContent === {json.dumps(second_name)}",
             what="Enter on a focused card to open it")
    assert cdp.js("location.hash") == f"#item={second}"

    # accessibility basics: every image has alt text, every form control a label
    assert cdp.js("[...document.images].every(i => i.hasAttribute('alt'))")
    assert cdp.js("[...document.querySelectorAll('#similar-grid img')].every(i => i.alt.startsWith('Poster of '))")
    assert cdp.js("[...document.querySelectorAll('input, select')].every(e => e.labels.length > 0 || "
                  "e.getAttribute('aria-label'))")

    # back to the first clicked movie for the screenshot, every poster loaded
    cdp.call("Page.navigate", url=f"{server}/#item={first}")
    cdp.wait("document.body && document.body.dataset.ready === 'true'")
    cdp.wait("document.querySelectorAll('#similar-grid button.card').length === 10")
    cdp.wait("[...document.querySelectorAll('#panel-similar img')].every(i => i.complete && i.naturalWidth > 0)",
             what="every poster to load")
    cdp.js("window.scrollTo(0, 0)")
    time.sleep(0.3)
    shot = base64.b64decode(cdp.call("Page.captureScreenshot", format="png")["data"])
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
    (tmp_path / "screenshot.png").write_bytes(shot)
    copy_to = os.environ.get("LATENTREC_SCREENSHOT")
    if copy_to:  # the whole page, scaled down and palette-reduced to stay small for the README
        height = cdp.js("document.documentElement.scrollHeight")
        full = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": 1280, "height": height, "scale": 0.75})["data"]
        Path(copy_to).write_bytes(small_png(base64.b64decode(full)))

    errors = [e for e in cdp.events
              if e["method"] == "Runtime.exceptionThrown"
              or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert not errors, json.dumps(errors)  # no script error, no CSP violation, no failed request


def test_user_and_visitor_views(server, browser):
    cdp = browser
    cdp.call("Page.navigate", url=server + "/#user")
    cdp.wait("document.body && document.body.dataset.ready === 'true'")
    assert cdp.js("document.querySelector('#panel-user').hidden") is False
    cdp.click("#random-user")
    cdp.wait("document.querySelectorAll('#user-recs button.card').length === 20", what="20 recommendations")
    cdp.wait("document.querySelectorAll('#user-history li').length > 0", what="the user's history")
    recs = set(cdp.js("[...document.querySelectorAll('#user-recs button.card')].map(b => b.dataset.id)"))
    user = cdp.js("location.hash.slice('#user='.length)")
    with urllib.request.urlopen(f"{server}/api/users/{user}/history?limit=1000") as resp:
        seen = {str(it["id"]) for it in json.loads(resp.read())["items"]}
    assert seen and not recs & seen  # rated movies are not recommended again

    # an unknown user shows an error instead of stale results
    cdp.js("document.querySelector('#user-input').value = 'nobody-like-this'")
    cdp.click("#user-form button[type=submit]")
    cdp.wait("document.querySelector('#user-recs .empty')?.textContent.includes('not known')", what="a 404 message")

    # visitor: rate two movies with the keyboard-accessible star radios, then ask
    cdp.click("#tab-rate")
    cdp.wait("!document.querySelector('#panel-rate').hidden && "
             "document.querySelectorAll('#rate-candidates fieldset').length >= 2")
    cdp.click("#rate-candidates li:nth-child(1) label:last-of-type")
    cdp.click("#rate-candidates li:nth-child(2) label:first-of-type")
    cdp.wait("!document.querySelector('#rate-go').disabled")
    assert "2 movies" in cdp.js("document.querySelector('#rated-summary').textContent")
    cdp.click("#rate-go")
    cdp.wait("document.querySelectorAll('#rate-recs button.card').length === 12", what="12 visitor recommendations")
    rated = cdp.js("[...document.querySelectorAll('#rate-candidates li:nth-child(-n+2) .card')]"
                   ".map(c => c.querySelector('input').name.slice(5))")
    got = cdp.js("[...document.querySelectorAll('#rate-recs button.card')].map(b => b.dataset.id)")
    assert not set(rated) & set(got)
    errors = [e for e in cdp.events if e["method"] == "Runtime.exceptionThrown"]
    assert not errors, errors
