"""SparkALS on a local[2] Spark: one shared session for the whole module (JVM start-up is slow)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

import latentrec as lr
from latentrec.split import random_split

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (extra [spark])")
if shutil.which("java") is None:
    pytest.skip("Spark needs a Java runtime and none is installed", allow_module_level=True)

from latentrec.spark import SparkALS, get_spark  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(scope="module")
def spark():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = get_spark("local[2]", driver_memory="1g")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def data():
    return lr.synthetic_ratings(n_users=200, n_items=120, n_ratings=6000, random_state=1)


@pytest.fixture(scope="module")
def fitted(spark, data):
    train, test = random_split(data, 0.2, random_state=0)
    model = SparkALS(master="local[2]", n_factors=5, n_epochs=8, regularization=0.05).fit(train)
    return model, train, test


def test_fit_collects_factors_and_beats_biases(fitted):
    model, train, test = fitted
    assert model.user_factors_.shape == (len(model.users_), 5)
    assert model.item_factors_.dtype == np.float32
    rmse = lr.metrics.rmse(test.values, model.predict(test))
    biases = lr.metrics.rmse(test.values, lr.models.Biases().fit(train).predict(test))
    assert rmse < biases, (rmse, biases)


def test_latentrec_api_works_on_the_result(fitted, tmp_path):
    model, train, test = fitted
    ids, scores = model.recommend(model.users_.ids[:3], n=5)
    assert ids.shape == (3, 5) and np.all(np.diff(scores, axis=1) <= 1e-6)
    sim, _ = model.similar_items(model.items_.ids[0], n=4)
    assert len(sim) == 4
    model.save(tmp_path / "spark-model")
    loaded = lr.load_model(tmp_path / "spark-model")
    np.testing.assert_allclose(loaded.predict(test), model.predict(test), rtol=1e-6)


def test_spark_dataframe_with_string_ids_and_parquet_scoring(spark, data, tmp_path):
    frame = data.to_frame()[["user", "item", "rating"]]
    frame["user"] = "u" + frame["user"].astype(str)
    sdf = spark.createDataFrame(frame)
    model = SparkALS(master="local[2]", n_factors=4, n_epochs=5).fit(sdf)
    assert "u1" in model.users_ and len(model.users_) == frame["user"].nunique()
    out = model.recommend_all_to_parquet(str(tmp_path / "recs.parquet"), n=3, exclude_seen=False)
    recs = pd.read_parquet(out)
    assert len(recs) == 3 * len(model.users_)
    one = recs[recs.user == "u1"].sort_values("rank")
    local_ids, local_scores = model.recommend("u1", n=3, exclude_seen=False)
    np.testing.assert_array_equal(one["item"].to_numpy(), local_ids)
    np.testing.assert_allclose(one["score"].to_numpy(), local_scores, rtol=1e-4)


def test_checkpointing_does_not_change_the_result(fitted, tmp_path):
    model, train, test = fitted
    ckpt = tmp_path / "ckpt"
    again = SparkALS(master="local[2]", n_factors=5, n_epochs=8, regularization=0.05,
                     checkpoint_dir=str(ckpt), checkpoint_interval=2).fit(train)
    assert ckpt.is_dir() and any(ckpt.iterdir())  # Spark wrote its checkpoints there
    np.testing.assert_allclose(again.predict(test), model.predict(test), rtol=1e-4, atol=1e-4)


def test_implicit_mode(spark):
    data = lr.synthetic_implicit(n_users=200, n_items=120, n_interactions=5000, random_state=2)
    train, test = random_split(data, 0.2, random_state=0)
    model = SparkALS(master="local[2]", implicit=True, alpha=1.0, n_factors=5, n_epochs=10).fit(train)
    assert model.task == "implicit"
    ndcg = model.score(test)
    pop = lr.models.Popularity().fit(train).score(test)
    assert ndcg > pop, (ndcg, pop)


def test_nan_rating_in_spark_frame_is_a_clear_error(spark):
    sdf = spark.createDataFrame(pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [4.0, float("nan")]}))
    with pytest.raises(lr.DataError, match="missing or non-numeric rating"):
        SparkALS(master="local[2]").fit(sdf)


def test_missing_column_is_a_clear_error(spark):
    sdf = spark.createDataFrame(pd.DataFrame({"u": [1], "item": [1], "rating": [4.0]}))
    with pytest.raises(lr.DataError, match="column"):
        SparkALS(master="local[2]").fit(sdf)


def test_bad_master_url_and_params():
    with pytest.raises(lr.ModelError, match="master must be a Spark master URL"):
        get_spark("not a url")
    with pytest.raises(lr.ModelError, match="n_factors must be an integer >= 1"):
        SparkALS(n_factors=0).fit(lr.synthetic_ratings(n_users=20, n_items=10, n_ratings=50))


def test_unreachable_master_is_a_clear_error():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    from latentrec import spark as spark_module

    with pytest.raises(lr.ModelError, match=rf"cannot reach the Spark master 'spark://127.0.0.1:{port}'"):
        spark_module._check_reachable(f"spark://127.0.0.1:{port}", timeout=2)
    spark_module._check_reachable("local[2]")  # nothing to reach


def test_more_ids_than_int32_is_a_clear_error(spark, monkeypatch):
    from latentrec import spark as spark_module

    monkeypatch.setattr(spark_module, "INT32_MAX", 5)  # 2^31 - 1 users do not fit in a test
    sdf = spark.createDataFrame(pd.DataFrame({"user": np.arange(8), "item": 1, "rating": 4.0}))
    with pytest.raises(lr.DataError, match="8 distinct user ids: Spark's ALS needs int32 ids, so at most 5"):
        SparkALS(master="local[2]").fit(sdf)


def test_web_service_serves_a_spark_trained_model(fitted, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from latentrec.serve import create_app

    model, train, _ = fitted
    model.save(tmp_path / "m")
    user = model.users_.ids[0]
    with TestClient(create_app(tmp_path / "m", tmdb_api_key="", warm_up=False)) as client:
        assert client.get("/api/health").json()["model"] == "SparkALS"
        recs = client.get(f"/api/users/{user}/recommendations?n=4").json()
    expected, _ = model.recommend(user, n=4)
    assert [r["id"] for r in recs["items"]] == list(expected)


def test_missing_pyspark_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyspark", None)  # makes `import pyspark` fail
    with pytest.raises(lr.MissingDependencyError, match=r"latentrec\[spark\]"):
        get_spark("local[1]")


def test_missing_java_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    from latentrec import spark as spark_module

    with pytest.raises(lr.ModelError, match="Java runtime"):
        spark_module._check_java()


def test_biases_are_latentrecs_biases_computed_on_spark(spark, data):
    from pyspark.sql import functions as F

    model = SparkALS(master="local[2]", item_damping=3.0, user_damping=7.0, bias_sweeps=4)
    model.global_mean_ = float(data.values.mean())
    sdf = spark.createDataFrame(pd.DataFrame({"user": data.user_codes, "item": data.item_codes,
                                              "rating": data.values.astype(np.float64)}))
    residual, _, ub, ib = model._fit_biases(sdf)
    ref = lr.models.Biases(item_damping=3.0, user_damping=7.0, n_epochs=4).fit(data)
    np.testing.assert_allclose(ub.sort_values("user")["bu"], ref.user_bias_, atol=1e-5)
    np.testing.assert_allclose(ib.sort_values("item")["bi"], ref.item_bias_, atol=1e-5)
    total = residual.agg(F.sum(F.col("rating") ** 2)).collect()[0][0]
    assert np.isclose(total, ((data.values - ref.predict(data)) ** 2).sum(), rtol=1e-4)


def _csv(tmp_path):
    path = tmp_path / "ratings.csv"
    lr.synthetic_ratings(n_users=80, n_items=40, n_ratings=1600, random_state=3).to_frame().to_csv(path, index=False)
    return path


def test_cli_train_with_master_and_compare_on_the_spark_engine(spark, tmp_path, capsys, monkeypatch):
    from latentrec.cli import main

    monkeypatch.setenv("LATENTREC_QUIET", "1")
    csv = _csv(tmp_path)
    assert main(["train", "spark-als", str(csv), "-o", str(tmp_path / "m"), "--master", "local[2]",
                 "--params", "n_factors=3", "n_epochs=3"]) == 0
    assert lr.load_model(tmp_path / "m").get_params()["master"] == "local[2]"
    out_json = tmp_path / "r.json"
    assert main(["compare", str(csv), "--models", "biases,als", "--engine", "spark", "--master", "local[2]",
                 "--protocol", "holdout", "--no-curves", "-o", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "spark-als" in out and "\nals " not in out
    run = __import__("json").loads(out_json.read_text())
    assert run["models"]["spark-als"]["params"]["master"] == "local[2]"
    assert run["n_jobs"] == 1  # Spark uses the cores itself: no worker processes by default


def test_spark_runs_quiet_and_says_where_its_log_is(tmp_path):
    # issue 17: `compare --engine spark` wrote ~118 lines of JVM / Spark warnings on stderr; a fresh
    # process, since this module's session started its JVM long ago
    import os
    import re
    import subprocess
    import sys

    env = {**os.environ, "LATENTREC_QUIET": "1", "TMPDIR": str(tmp_path)}
    env.pop("LATENTREC_SPARK_LOG_LEVEL", None)
    proc = subprocess.run([sys.executable, "-m", "latentrec", "compare", str(_csv(tmp_path)), "--models", "biases,als",
                           "--engine", "spark", "--master", "local[1]", "--protocol", "holdout", "--no-curves",
                           "-o", str(tmp_path / "r.json")], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "LATENTREC_SPARK_LOG_LEVEL=WARN shows them here" in lines[0], lines
    log = tmp_path / re.search(r"go to \S*?(latentrec-spark-\S+\.log)", lines[0]).group(1)
    assert " WARN " in log.read_text()  # the messages are kept, in the file
    assert "spark-als" in proc.stdout


def test_spark_log_level_variable(monkeypatch):
    from latentrec import spark as spark_module

    monkeypatch.setenv("LATENTREC_SPARK_LOG_LEVEL", "warn")
    assert spark_module._log_level() == "WARN"  # output left on stderr, Spark's level set to WARN
    monkeypatch.setenv("LATENTREC_SPARK_LOG_LEVEL", "loud")
    with pytest.raises(lr.ModelError, match="LATENTREC_SPARK_LOG_LEVEL must be a log4j level, one of ALL, .*'loud'"):
        get_spark("local[1]")
    monkeypatch.delenv("LATENTREC_SPARK_LOG_LEVEL")
    assert spark_module._log_level() is None


@pytest.mark.realdata
def test_ml100k_u1_rmse_within_0_005_of_latentrec_als(spark):
    from conftest import require_dataset
    from latentrec.evaluate import make_folds

    folder = require_dataset("ml-100k")
    data = lr.load_movielens(path=folder)
    train, test = make_folds(data, "u1-u5", data_home=folder.parent)[0]
    params = dict(n_factors=20, n_epochs=10, regularization=0.15)  # λ means the same on both engines (ALS-WR)
    ours = lr.metrics.rmse(test.values, lr.models.ALS(random_state=0, **params).fit(train).predict(test))
    theirs = lr.metrics.rmse(test.values, SparkALS(master="local[2]", **params).fit(train).predict(test))
    assert abs(theirs - ours) <= 0.005, (theirs, ours)


def _spy_collects(monkeypatch, sdf):
    """Record the number of rows of every DataFrame brought to the driver with toPandas()."""
    DataFrame = type(sdf)  # pyspark 4: the classic DataFrame class overrides toPandas
    sizes, original = [], DataFrame.toPandas

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        sizes.append(len(out))
        return out

    monkeypatch.setattr(DataFrame, "toPandas", spy)
    return sizes


def test_seen_items_stay_on_the_cluster(spark, data, tmp_path, monkeypatch):
    # issue 16: SparkALS collected every interaction to the driver (toPandas of the seen pairs), and
    # recommend_all_to_parquet did not exclude seen items while recommend does
    frame = data.to_frame()[["user", "item", "rating"]]
    sdf = spark.createDataFrame(frame)
    sizes = _spy_collects(monkeypatch, sdf)
    model = SparkALS(master="local[2]", n_factors=4, n_epochs=4).fit(sdf)
    user = model.users_.ids[0]
    before = dict(vars(model))
    ids, _ = model.recommend(user, n=10)
    assert vars(model) == before  # issue 13: a pure call (it used to swap seen rows in and out)
    out = model.recommend_all_to_parquet(str(tmp_path / "recs.parquet"), n=10)
    assert sizes and max(sizes) < len(frame) / 4, f"collects of {sizes} rows ({len(frame)} interactions)"
    assert "seen_" not in vars(model)
    seen = frame.groupby("user")["item"].apply(set)
    assert not set(ids) & seen[user]  # recommend excluded them with only this user's rows fetched
    recs = pd.read_parquet(out)
    assert not any(i in seen[u] for u, i in zip(recs["user"], recs["item"]))
    one = recs[recs.user == user].sort_values("rank")
    np.testing.assert_array_equal(one["item"].to_numpy(), ids)
    assert (recs.groupby("user")["rank"].max() == 10).all()
    model.save(tmp_path / "light", seen=False)  # issue 13: saved without collecting the interactions
    assert "seen_" not in vars(model) and max(sizes) < len(frame) / 4
    light = lr.load_model(tmp_path / "light")
    np.testing.assert_array_equal(light.recommend(user, n=10, seen=frame)[0], ids)
    # whatever needs the whole matrix on the driver still gets it
    assert model.seen_.nnz == len(frame)
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(lr.load_model(tmp_path / "m").recommend(user, n=10)[0], ids)


def test_recommend_all_to_parquet_excludes_seen_for_a_local_fit(fitted, tmp_path):
    model, train, _ = fitted
    recs = pd.read_parquet(model.recommend_all_to_parquet(str(tmp_path / "r.parquet"), n=5))
    pairs = set(zip(train.users.take(train.user_codes), train.items.take(train.item_codes)))
    assert recs.size and not any((u, i) in pairs for u, i in zip(recs["user"], recs["item"]))
    user = model.users_.ids[1]
    np.testing.assert_array_equal(recs[recs.user == user].sort_values("rank")["item"].to_numpy(),
                                  model.recommend(user, n=5)[0])
    with pytest.raises(lr.errors.ModelError, match="n must be a positive integer"):
        model.recommend_all_to_parquet(str(tmp_path / "x.parquet"), n=0)
    with pytest.raises(lr.errors.ModelError, match="exclude_seen must be True or False"):
        model.recommend_all_to_parquet(str(tmp_path / "x.parquet"), exclude_seen="yes")
