"""Issue 16 (part B), serving: bad requests, awkward ids, concurrency and idle connections.

The load and slow-loris tests run a real uvicorn server (the configuration
:func:`latentrec.serve.run` uses) on 127.0.0.1 in a thread; each is bounded
(well under 30 s) and stops its server itself.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import threading
import time

import numpy as np
import pandas as pd
import pytest

import latentrec

pytest.importorskip("fastapi", reason="the [serve] extra (fastapi) is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the [serve] extra (uvicorn) is not installed")
if importlib.util.find_spec("httpx2") is None and importlib.util.find_spec("httpx") is None:
    pytest.skip("FastAPI's test client needs httpx2 (or httpx)", allow_module_level=True)
from fastapi.testclient import TestClient  # noqa: E402

from latentrec.serve import create_app, server_config  # noqa: E402
from latentrec.serve.service import ModelService, url_id  # noqa: E402

AWKWARD = ["a/b", "c?d", "e#f", "g%h", "sp ace", "semi;colon", "..", "x/../y", "plus+sign", "é/ü"]


@pytest.fixture(scope="module")
def int_model():
    data = latentrec.synthetic_ratings(n_users=80, n_items=40, n_ratings=1200, random_state=3)
    return latentrec.BiasedMF(n_factors=4, n_epochs=3, random_state=0, n_threads=0).fit(data)


@pytest.fixture(scope="module")
def client(int_model):
    with TestClient(create_app(int_model)) as c:
        yield c


@pytest.fixture(scope="module")
def awkward_client():
    rng = np.random.default_rng(0)
    items = AWKWARD + [f"m{k}" for k in range(20)]
    frame = pd.DataFrame({"user": [f"u{k % 15}" for k in range(300)],
                          "item": [items[k % len(items)] for k in range(300)],
                          "rating": rng.integers(1, 6, 300).astype(float)}).drop_duplicates(["user", "item"])
    data = latentrec.Interactions.from_frame(frame, rating_scale=(1, 5))
    model = latentrec.BiasedMF(n_factors=4, n_epochs=3, random_state=0).fit(data)
    with TestClient(create_app(model)) as c:
        yield c


# ---------------------------------------------------------------------------- bad requests
BAD = [
    # (case, method, path, body, status, words of the error)
    ("unknown-int-user", "GET", "/api/users/999999/recommendations", None, 404, "user 999999 is not known to the model"),
    ("text-user-int-model", "GET", "/api/users/abc/recommendations", None, 404, "user 'abc' is not known"),
    ("long-user", "GET", "/api/users/" + "9" * 500 + "/history", None, 404, "is not known"),
    ("huge-int-user", "GET", "/api/users/99999999999999999999/history", None, 404, "is not known"),
    ("unknown-item", "GET", "/api/items/999999", None, 404, "item 999999 is not known to the model"),
    ("unknown-item-similar", "GET", "/api/items/999999/similar", None, 404, "item 999999 is not known"),
    ("unknown-item-poster", "GET", "/api/items/999999/poster", None, 404, "item 999999 is not known"),
    ("item-with-slash-int-model", "GET", "/api/items/1%2F2", None, 404, "item '1/2' is not known"),
    ("n-0", "GET", "/api/users/1/recommendations?n=0", None, 422, "n"),
    ("n-1001", "GET", "/api/users/1/recommendations?n=1001", None, 422, "n"),
    ("n-text", "GET", "/api/items/1/similar?n=ten", None, 422, "n"),
    ("n-float", "GET", "/api/items/1/similar?n=2.5", None, 422, "n"),
    ("exclude-seen-maybe", "GET", "/api/users/1/recommendations?exclude_seen=maybe", None, 422, "exclude_seen"),
    ("limit-0", "GET", "/api/items?limit=0", None, 422, "limit"),
    ("limit-101", "GET", "/api/items?limit=101", None, 422, "limit"),
    ("offset-negative", "GET", "/api/users?offset=-1", None, 422, "offset"),
    ("q-too-long", "GET", "/api/items?q=" + "a" * 201, None, 422, "q"),
    ("history-limit-0", "GET", "/api/users/1/history?limit=0", None, 422, "limit"),
    ("empty-ratings", "POST", "/api/recommendations", {"ratings": []}, 422, "ratings"),
    ("no-body", "POST", "/api/recommendations", None, 422, "body"),
    ("unknown-visitor-item", "POST", "/api/recommendations", {"ratings": [{"item": 999999, "rating": 3}]}, 404,
     "item 999999 is not known"),
    ("rating-outside-scale", "POST", "/api/recommendations", {"ratings": [{"item": 1, "rating": 50}]}, 422,
     "outside the model's rating scale"),
    ("item-rated-twice", "POST", "/api/recommendations",
     {"ratings": [{"item": 1, "rating": 3}, {"item": 1, "rating": 4}]}, 422, "each item may be rated once"),
    ("bool-item", "POST", "/api/recommendations", {"ratings": [{"item": True, "rating": 3}]}, 422, "item"),
    ("list-item", "POST", "/api/recommendations", {"ratings": [{"item": [1], "rating": 3}]}, 422, "item"),
    ("text-rating", "POST", "/api/recommendations", {"ratings": [{"item": 1, "rating": "five"}]}, 422, "rating"),
    ("missing-rating", "POST", "/api/recommendations", {"ratings": [{"item": 1}]}, 422, "rating"),
    ("too-many-ratings", "POST", "/api/recommendations",
     {"ratings": [{"item": k, "rating": 3} for k in range(1001)]}, 422, "ratings"),
    ("visitor-n-0", "POST", "/api/recommendations", {"ratings": [{"item": 1, "rating": 3}], "n": 0}, 422, "n"),
    ("unknown-route", "GET", "/api/nothing", None, 404, "Not Found"),
    ("wrong-method", "DELETE", "/api/health", None, 405, "Method Not Allowed"),
]


@pytest.mark.parametrize("method,path,body,status,words", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_request(client, method, path, body, status, words):
    r = client.request(method, path, json=body) if body is not None else client.request(method, path)
    assert r.status_code == status, r.text
    doc = r.json()
    assert doc["status"] == status and words in doc["error"], doc
    assert "np.int" not in doc["error"] and "Traceback" not in r.text


def test_malformed_json(client):
    r = client.post("/api/recommendations", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "json" in r.json()["error"].lower()


def test_oversized_body(client):
    r = client.post("/api/recommendations", content=b"x" * 70_000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["error"]


def test_404_shows_a_plain_id(client):
    # issue 16: the message read "user np.int32(999999) is not known"
    assert client.get("/api/users/999999/history").json()["error"].startswith("user 999999 is not known")


# ---------------------------------------------------------------------------- ids with URL characters
@pytest.mark.parametrize("item", AWKWARD)
def test_awkward_ids_reach_every_item_route(awkward_client, item):
    # issue 16: poster links were not URL-encoded and an id with "/" reached no /api/items/{id} route
    enc = url_id(item)
    assert "/" not in enc and "?" not in enc and "#" not in enc and enc not in (".", "..")
    card = awkward_client.get(f"/api/items/{enc}").json()
    assert card["id"] == item
    assert card["poster_url"] == f"/api/items/{enc}/poster"
    assert awkward_client.get(card["poster_url"]).headers["content-type"].startswith("image/svg+xml")
    similar = awkward_client.get(f"/api/items/{enc}/similar?n=3").json()
    assert similar["item"]["id"] == item and len(similar["similar"]) == 3
    for other in similar["similar"]:
        assert other["poster_url"] == f"/api/items/{url_id(other['id'])}/poster"


# ---------------------------------------------------------------------------- threads and the caller's model
def test_service_does_not_mutate_the_model(int_model):
    # issue 16: ModelService rewrote the caller's model.n_threads
    assert int_model.n_threads == 0
    service = ModelService(int_model, threads=1)
    assert int_model.n_threads == 0 and service.model.n_threads == 1
    assert service.model.item_factors_ is int_model.item_factors_  # a shallow copy: no arrays duplicated


def test_bad_thread_count(int_model):
    with pytest.raises(latentrec.errors.DataError, match="threads must be an integer >= 1"):
        ModelService(int_model, threads=0)


def _blas_threads() -> set:
    from threadpoolctl import threadpool_info

    return {lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"}


def test_blas_limit_is_set_once_and_kept(int_model):
    # issue 16: every request raised and restored the process-wide BLAS limit
    from latentrec.serve.app import load_service

    service = load_service(int_model, warm_up=False)
    try:
        assert _blas_threads() == {1}
        service.recommend(0, 5, True)
        assert _blas_threads() == {1}  # between requests too, not only inside a model call
    finally:
        service._blas_limit.restore_original_limits()


# ---------------------------------------------------------------------------- a real server
class _Server:
    """uvicorn on 127.0.0.1 (a free port) in a thread, with run()'s configuration."""

    def __init__(self, app):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = server_config(app, "127.0.0.1", self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    def get(self, path, timeout=10.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            t0 = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, body, time.perf_counter() - t0
        finally:
            conn.close()

    def post(self, path, payload, timeout=30.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("POST", path, body=json.dumps(payload), headers={"content-type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


SLOW_S = 1.5


@pytest.fixture()
def slow_app(int_model, monkeypatch):
    """The app with a fold-in that takes SLOW_S seconds (CPU-bound work is simulated by a sleep
    holding the model lock, exactly where a 1000-item fold-in would hold it)."""
    app = create_app(int_model, warm_up=False)
    service = app.state.service
    original = service.model.recommend_for_interactions

    def slow(*args, **kwargs):
        time.sleep(SLOW_S)
        return original(*args, **kwargs)

    monkeypatch.setattr(service.model, "recommend_for_interactions", slow, raising=False)
    yield app
    service._blas_limit.restore_original_limits()


def test_health_answers_while_a_slow_request_runs(slow_app):
    # issue 16: async model endpoints ran on the event loop, so one heavy fold-in stalled /api/health
    errors, health_ms, done = [], [], []
    with _Server(slow_app) as srv:
        srv.get("/api/health")  # first connection out of the way
        slow = threading.Thread(target=lambda: done.append(srv.post("/api/recommendations",
                                                                     {"ratings": [{"item": 1, "rating": 4}]})))
        slow.start()
        time.sleep(0.3)  # the slow request holds the model now

        def client(k):
            for j in range(15):
                path = "/api/health" if j % 3 == 0 else ("/" if j % 3 == 1 else "/static/app.js")
                status, _, elapsed = srv.get(path)
                if status != 200:
                    errors.append((path, status))
                if path == "/api/health":
                    health_ms.append(elapsed * 1e3)

        workers = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(20)
        in_flight = slow.is_alive()
        slow.join(20)
    assert not errors
    assert in_flight or len(health_ms) == 40
    assert done and done[0][0] == 200
    assert max(health_ms) < 100, f"/api/health took up to {max(health_ms):.0f} ms while a slow request ran"


def test_idle_connections_do_not_starve_other_clients(int_model):
    # issue 16: 64 idle TCP connections made every other client get 503 (uvicorn's limit_concurrency)
    app = create_app(int_model, warm_up=False)
    idle = []
    try:
        with _Server(app) as srv:
            for _ in range(100):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                idle.append(s)
            half = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            half.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")  # slow loris: headers never finished
            idle.append(half)
            time.sleep(0.2)
            results = [srv.get(p) for p in ["/api/health", "/api/users/1/recommendations?n=5", "/"] * 5]
    finally:
        for s in idle:
            s.close()
        app.state.service._blas_limit.restore_original_limits()
    assert [status for status, _, _ in results] == [200] * 15


def test_requests_in_flight_are_capped_with_503():
    import asyncio

    from latentrec.serve.middleware import GuardMiddleware

    gate = asyncio.Event()

    async def app(scope, receive, send):
        await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guard = GuardMiddleware(app, max_in_flight=2)

    async def main():
        sent = []

        async def call():
            out = []

            async def send(message):
                out.append(message)
            await guard({"type": "http", "method": "GET", "headers": []}, None, send)
            sent.append(out[0]["status"])
        tasks = [asyncio.create_task(call()) for _ in range(3)]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(*tasks)
        return sorted(sent)

    assert asyncio.run(main()) == [200, 200, 503]
