"""The serve JSON API through FastAPI's test client: every endpoint and every error case."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import latentrec
from latentrec.errors import MissingDependencyError, PersistError

pytest.importorskip("fastapi", reason="the [serve] extra (fastapi) is not installed")
if importlib.util.find_spec("httpx2") is None and importlib.util.find_spec("httpx") is None:
    pytest.skip("FastAPI's test client needs httpx2 (or httpx)", allow_module_level=True)
from fastapi.testclient import TestClient  # noqa: E402

from latentrec.serve import create_app  # noqa: E402
from latentrec.serve.posters import PosterStore, generated_svg  # noqa: E402
from latentrec.serve.service import display_title, normalize, parse_id  # noqa: E402

TITLES = ["Toy Story (1995)", "Jumanji (1995)", "Shawshank Redemption, The (1994)", "Toy Story 2 (1999)",
          "Café <Noir> & Co (2001)", "Story of Toys, A (2010)"]


def factor_model():
    """A factor model when one exists (BiasedMF is being written), else TruncatedSVD."""
    try:
        from latentrec.models import BiasedMF

        return BiasedMF(n_factors=8, n_epochs=10, random_state=0)
    except ImportError:
        from latentrec.models import TruncatedSVD

        return TruncatedSVD(n_factors=8, random_state=0)


def movie_data(string_ids: bool = False, metadata: bool = True):
    data = latentrec.synthetic_ratings(n_users=150, n_items=80, n_ratings=3000, random_state=1)
    if string_ids:
        frame = pd.DataFrame({"user": [f"u{u}" for u in data.users.take(data.user_codes)],
                              "item": [f"m{i}" for i in data.items.take(data.item_codes)],
                              "rating": data.values})
        data = latentrec.Interactions.from_frame(frame, rating_scale=(1, 5))
    if metadata:
        ids = data.items.ids
        titles = TITLES + [f"Movie {k} ({1950 + k})" for k in range(len(TITLES), len(ids))]
        genres = ["Animation|Children|Comedy", "Adventure|Fantasy", "Crime|Drama", "Animation|Children",
                  "Comedy", "(no genres listed)"] + ["Drama|Romance"] * (len(ids) - len(TITLES))
        meta = pd.DataFrame({"title": titles, "genres": genres, "year": [None] * len(ids)},
                            index=pd.Index(ids, name="item"))
        meta["tmdb_id"] = pd.array([862] + [None] * (len(ids) - 1), dtype="Int64")
        meta["imdb_id"] = ["tt0114709"] + [None] * (len(ids) - 1)
        data.item_metadata = meta
    return data


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "model"
    factor_model().fit(movie_data()).save(path)
    return path


@pytest.fixture(scope="module")
def model(model_dir):
    return latentrec.load_model(model_dir)


@pytest.fixture(scope="module")
def client(model_dir, tmp_path_factory):
    app = create_app(model_dir, tmdb_api_key="", poster_cache=tmp_path_factory.mktemp("posters"))
    with TestClient(app) as c:
        yield c


def assert_error(resp, status: int, *words):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status"] == status and isinstance(body["error"], str)
    for w in words:
        assert w in body["error"]
    return body


# ---------------------------------------------------------------- meta, page, schema
def test_health(client, model):
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["model"] == type(model).__name__
    assert body["n_items"] == len(model.items_) and body["n_users"] == len(model.users_)
    assert body["n_interactions"] == model.seen_.nnz and body["rating_scale"] == [1.0, 5.0]
    assert body["posters"] == "generated" and body["has_metadata"] is True


def test_page_and_assets_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert 'id="search-input"' in page.text and "/static/app.js" in page.text
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and "/api/items" in js.text
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("path", ["/static/../app.py", "/static/app.py", "/static/%2e%2e/service.py",
                                  "/static/index.html", "/api/nothing", "/docs"])
def test_no_file_is_reachable_by_name(client, path):
    assert_error(client.get(path), 404)


def test_openapi_schema_lists_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    for p in ["/api/health", "/api/items", "/api/items/{item_id}", "/api/items/{item_id}/similar",
              "/api/users/{user_id}/recommendations", "/api/users/{user_id}/history", "/api/recommendations"]:
        assert p in paths
    assert "post" in paths["/api/recommendations"]


def test_cors_is_off_by_default_and_on_when_asked(client, model_dir):
    resp = client.get("/api/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in resp.headers
    with TestClient(create_app(model_dir, cors_origins=["https://ok.example"], warm_up=False)) as c:
        ok = c.get("/api/health", headers={"Origin": "https://ok.example"})
        assert ok.headers["access-control-allow-origin"] == "https://ok.example"
        bad = c.get("/api/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in bad.headers


# ---------------------------------------------------------------- items
def test_search_is_case_and_order_insensitive(client):
    names = [it["title"] for it in client.get("/api/items", params={"q": "toy story"}).json()["items"]]
    assert names[:2] == ["Toy Story (1995)", "Toy Story 2 (1999)"]  # exact title first, then prefix
    assert names[2] == "A Story of Toys (2010)" or names[2] == "Story of Toys, A (2010)"  # words are substrings
    assert [it["title"] for it in client.get("/api/items?q=STORY+toy").json()["items"]][:2] == names[:2]
    assert [it["id"] for it in client.get("/api/items?q=cafe noir").json()["items"]] == [4]  # accents ignored


def test_search_limit_and_empty_query(client, model):
    assert len(client.get("/api/items?q=movie&limit=3").json()["items"]) == 3
    popular = [it["id"] for it in client.get("/api/items?limit=5").json()["items"]]
    expected = np.asarray(model.items_.ids)[np.argsort(-model.item_popularity_, kind="stable")[:5]]
    assert popular == expected.tolist()
    assert client.get("/api/items?q=zzzz").json() == {"items": []}


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "q=" + "a" * 201])
def test_search_rejects_bad_parameters(client, query):
    assert_error(client.get(f"/api/items?{query}"), 422)


def test_item_card(client):
    it = client.get("/api/items/2").json()
    assert it["title"] == "Shawshank Redemption, The (1994)" and it["name"] == "The Shawshank Redemption"
    assert it["year"] == 1994 and it["genres"] == ["Crime", "Drama"] and it["poster_url"] == "/api/items/2/poster"
    toy = client.get("/api/items/0").json()
    assert toy["tmdb_id"] == 862 and toy["imdb_id"] == "tt0114709"
    assert client.get("/api/items/5").json()["genres"] == []


@pytest.mark.parametrize("raw", ["999999", "abc", "1.5", "-1", "99999999999999999999999", "0x1", " "])
def test_unknown_item_is_404_json(client, raw):
    assert_error(client.get(f"/api/items/{raw}"), 404, "item")
    assert_error(client.get(f"/api/items/{raw}/similar"), 404)


def test_similar_items_match_the_model(client, model):
    body = client.get("/api/items/0/similar?n=10").json()
    ids, scores = model.similar_items(0, n=10)
    assert body["item"]["id"] == 0
    assert [it["id"] for it in body["similar"]] == ids.tolist()
    np.testing.assert_allclose([it["score"] for it in body["similar"]], scores, rtol=1e-5)
    assert 0 not in [it["id"] for it in body["similar"]]
    assert len(client.get("/api/items/0/similar").json()["similar"]) == 10  # default n


@pytest.mark.parametrize("n", ["0", "1001", "-3", "ten", "2.5"])
def test_n_out_of_range_is_422(client, n):
    assert_error(client.get(f"/api/items/0/similar?n={n}"), 422, "n")
    assert_error(client.get(f"/api/users/1/recommendations?n={n}"), 422, "n")


def test_n_bounds_are_inclusive(client, model):
    assert len(client.get("/api/items/0/similar?n=1").json()["similar"]) == 1
    assert len(client.get("/api/items/0/similar?n=1000").json()["similar"]) == len(model.items_) - 1


# ---------------------------------------------------------------- posters
def test_generated_poster_escapes_the_title(client):
    resp = client.get("/api/items/4/poster")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("image/svg+xml")
    assert "Café &lt;Noir&gt; &amp; Co" in resp.text and "<Noir>" not in resp.text
    assert "2001" in resp.text and "Comedy" in resp.text
    assert_error(client.get("/api/items/nope/poster"), 404)


def test_poster_store_fetches_once_then_serves_from_disk(tmp_path):
    calls = []
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg"

    def fake_fetch(url, timeout):
        calls.append(url)
        if url.startswith("https://api.themoviedb.org/3/movie/862?"):
            return json.dumps({"poster_path": "/abc.jpg"}).encode()
        assert url == "https://image.tmdb.org/t/p/w342/abc.jpg"
        return jpeg

    store = PosterStore("KEY", tmp_path, fetch=fake_fetch)
    assert store.get(862) == jpeg and len(calls) == 2
    assert (tmp_path / "862.jpg").read_bytes() == jpeg
    assert PosterStore("KEY", tmp_path, fetch=fake_fetch).get(862) == jpeg and len(calls) == 2  # cached
    assert store.get(None) is None and store.get(0) is None


def test_poster_store_failures_and_no_key_never_fetch(tmp_path):
    def refuse(url, timeout):
        raise AssertionError("no network without a key")

    assert PosterStore(None, tmp_path, fetch=refuse).get(862) is None
    calls = []

    def broken(url, timeout):
        calls.append(url)
        return json.dumps({"poster_path": "/../../etc/passwd"}).encode()

    store = PosterStore("KEY", tmp_path, fetch=broken)
    assert store.get(7) is None and store.get(7) is None and len(calls) == 1  # failure remembered
    assert list(tmp_path.iterdir()) == []


def test_poster_endpoint_serves_cached_tmdb_image(model_dir, tmp_path):
    (tmp_path / "862.jpg").write_bytes(b"\xff\xd8cached")
    with TestClient(create_app(model_dir, tmdb_api_key="", poster_cache=tmp_path, warm_up=False)) as c:
        resp = c.get("/api/items/0/poster")
        assert resp.headers["content-type"] == "image/jpeg" and resp.content == b"\xff\xd8cached"
        assert c.get("/api/items/1/poster").headers["content-type"].startswith("image/svg+xml")


def test_generated_svg_is_well_formed():
    import xml.etree.ElementTree as ET

    root = ET.fromstring(generated_svg("A very long title that needs wrapping over several lines indeed", 1999,
                                       ["Sci-Fi", "War"]))
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "1999" in texts and any("Sci-Fi" in (t or "") for t in texts) and len(texts) >= 4


# ---------------------------------------------------------------- users
def test_recommendations_match_the_model_and_exclude_seen(client, model):
    user = int(model.users_.ids[3])
    body = client.get(f"/api/users/{user}/recommendations?n=15").json()
    ids, scores = model.recommend(user, n=15)
    assert body["user"] == user and [it["id"] for it in body["items"]] == ids.tolist()
    np.testing.assert_allclose([it["score"] for it in body["items"]], scores, rtol=1e-5)
    assert body["score_kind"] == model.score_kind() == "rating"  # predicted ratings, within the scale
    assert max(it["score"] for it in body["items"]) <= model.rating_scale_[1]
    seen = set(model.items_.ids[model.seen_[3].indices].tolist())
    assert not seen & {it["id"] for it in body["items"]}
    everything = client.get(f"/api/users/{user}/recommendations?n=1000&exclude_seen=false").json()["items"]
    assert len(everything) == len(model.items_) and seen <= {it["id"] for it in everything}


def test_unknown_user_is_404(client):
    for raw in ["99999", "someone", "-1"]:
        assert_error(client.get(f"/api/users/{raw}/recommendations"), 404, "user")
        assert_error(client.get(f"/api/users/{raw}/history"), 404, "user")


def test_history_is_the_training_row_best_first(client, model):
    user = int(model.users_.ids[7])
    row = model.seen_[7]
    body = client.get(f"/api/users/{user}/history").json()
    assert body["count"] == row.nnz and len(body["items"]) == row.nnz
    assert {it["id"]: it["rating"] for it in body["items"]} == dict(
        zip(model.items_.ids[row.indices].tolist(), row.data.tolist()))
    ratings = [it["rating"] for it in body["items"]]
    assert ratings == sorted(ratings, reverse=True)
    assert len(client.get(f"/api/users/{user}/history?limit=2").json()["items"]) == 2
    assert_error(client.get(f"/api/users/{user}/history?limit=0"), 422)


def test_user_listing(client, model):
    body = client.get("/api/users?offset=2&limit=3").json()
    assert body["count"] == len(model.users_)
    assert [u["id"] for u in body["users"]] == model.users_.ids[2:5].tolist()
    assert body["users"][0]["count"] == model.seen_[2].nnz
    assert_error(client.get("/api/users?offset=-1"), 422)


# ---------------------------------------------------------------- visitors (fold-in)
def test_visitor_recommendations_match_fold_in(client, model):
    ratings = [{"item": 0, "rating": 5}, {"item": "3", "rating": 4.5}, {"item": 2, "rating": 1}]
    body = client.post("/api/recommendations", json={"ratings": ratings, "n": 7}).json()
    assert body["score_kind"] == model.score_kind(fold_in=True)
    ids, scores = model.recommend_for_interactions([0, 3, 2], [5, 4.5, 1], n=7)
    assert body["user"] is None and [it["id"] for it in body["items"]] == ids.tolist()
    np.testing.assert_allclose([it["score"] for it in body["items"]], scores, rtol=1e-4)
    assert not {0, 2, 3} & {it["id"] for it in body["items"]}
    default = client.post("/api/recommendations", json={"ratings": ratings}).json()
    assert len(default["items"]) == 10


@pytest.mark.parametrize("payload, status, word", [
    ({"ratings": [{"item": 424242, "rating": 4}]}, 404, "424242"),
    ({"ratings": [{"item": "m1", "rating": 4}]}, 404, "item"),
    ({"ratings": [{"item": 0, "rating": 9}]}, 422, "scale"),
    ({"ratings": [{"item": 0, "rating": 4}, {"item": 0, "rating": 2}]}, 422, "once"),
    ({"ratings": []}, 422, "ratings"),
    ({"ratings": [{"item": 0}]}, 422, "rating"),
    ({"ratings": [{"item": 0, "rating": "good"}]}, 422, "rating"),
    ({"ratings": [{"item": 0, "rating": 4}], "n": 0}, 422, "n"),
    ({"ratings": [{"item": 0, "rating": 4}], "n": 1001}, 422, "n"),
    ({"ratings": [{"item": k, "rating": 4} for k in range(1001)]}, 422, "ratings"),
    ({"ratings": [{"item": True, "rating": 4}]}, 422, "item"),
    ({"ratings": [{"item": 1.5, "rating": 4}]}, 422, "item"),
    ([1, 2], 422, "body"),
])
def test_visitor_errors(client, payload, status, word):
    assert_error(client.post("/api/recommendations", json=payload), status, word)


def test_visitor_rejects_nan_and_malformed_json(client):
    nan = b'{"ratings": [{"item": 0, "rating": NaN}]}'
    assert_error(client.post("/api/recommendations", content=nan, headers={"content-type": "application/json"}), 422)
    assert_error(client.post("/api/recommendations", content=b"{not json",
                             headers={"content-type": "application/json"}), 422)


def test_oversized_bodies_are_refused(client):
    big = json.dumps({"ratings": [{"item": 0, "rating": 4}], "pad": "x" * 70_000}).encode()
    assert_error(client.post("/api/recommendations", content=big, headers={"content-type": "application/json"}),
                 413, "too large")

    def chunks():  # no Content-Length: the limit must hold while streaming too
        for _ in range(20):
            yield b" " * 8192

    assert_error(client.post("/api/recommendations", content=chunks(), headers={"content-type": "application/json"}),
                 413)


# ---------------------------------------------------------------- other models and ids
def test_string_ids_and_a_model_without_factors_or_metadata(tmp_path):
    from latentrec.models import Biases

    data = movie_data(string_ids=True, metadata=False)
    Biases().fit(data).save(tmp_path / "m")
    with TestClient(create_app(tmp_path / "m", warm_up=True)) as c:
        item = c.get("/api/items/m5").json()
        assert item["id"] == "m5" and item["title"] == "Item m5" and item["year"] is None
        assert c.get("/api/items?q=item m5").json()["items"][0]["id"] == "m5"
        assert len(c.get("/api/items/m5/similar?n=4").json()["similar"]) == 4
        assert_error(c.get("/api/items/5"), 404)
        assert c.get("/api/users/u3/recommendations?n=3").json()["user"] == "u3"
        body = c.post("/api/recommendations", json={"ratings": [{"item": "m1", "rating": 5}], "n": 3}).json()
        assert len(body["items"]) == 3
        assert_error(c.post("/api/recommendations", json={"ratings": [{"item": 1, "rating": 5}]}), 404)


def test_parse_id_and_title_helpers():
    ints = np.array([1, 2], dtype=np.int64)
    assert parse_id("2", ints) == 2 and isinstance(parse_id("2", ints), np.int64)
    for bad in ["2.0", "abc", "1e3", str(2**70), None, True]:
        with pytest.raises(latentrec.UnknownIdError):
            parse_id(bad, ints)
    strs = np.array(["a", "10"])
    assert parse_id(10, strs) == "10" and parse_id("a", strs) == "a"
    with pytest.raises(latentrec.UnknownIdError):
        parse_id("x" * 500, strs)
    assert display_title("Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)").startswith("Amelie")
    assert display_title("Graduate, The (1967)") == "The Graduate"
    assert display_title("City of Lost Children, The (Cité des enfants perdus, La) (1995)") == \
        "The City of Lost Children (Cité des enfants perdus, La)"
    assert display_title("Trial, The (Procès, Le) (1962)") == "The Trial (Procès, Le)"
    assert display_title("Toy Story (1995)") == "Toy Story" and display_title("Se7en") == "Se7en"
    assert normalize("  Café, Noir!! ") == "cafe noir"


# ---------------------------------------------------------------- factory and imports
def test_factory_errors_name_the_path(tmp_path):
    with pytest.raises(PersistError, match="manifest.json"):
        create_app(tmp_path)


def test_import_loads_neither_fastapi_nor_a_model():
    code = ("import sys, latentrec, latentrec.serve; "
            "assert 'fastapi' not in sys.modules and 'uvicorn' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_fastapi_names_the_extra(monkeypatch, model_dir):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(MissingDependencyError, match=r"latentrec\[serve\]"):
        create_app(model_dir)


def test_a_model_saved_without_its_training_matrix_is_refused_with_the_reason(tmp_path):
    # issue 13: save(seen=False) drops the history the page shows and excludes
    model = factor_model().fit(movie_data())
    model.save(tmp_path / "light", seen=False)
    with pytest.raises(latentrec.ModelError, match=r"saved without its training matrix .* serve a model saved with it"):
        create_app(tmp_path / "light", warm_up=False)
