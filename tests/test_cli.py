"""The latentrec command line, in-process (main([...])) and once as a subprocess."""

import json
import subprocess
import sys
import types

import numpy as np
import pandas as pd
import pytest

import latentrec as lr
from latentrec.cli import find_item, main


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    data = lr.synthetic_ratings(120, 60, 2400, random_state=4)
    path = tmp_path_factory.mktemp("data") / "ratings.csv"
    data.to_frame().to_csv(path, index=False)
    return path


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("LATENTREC_QUIET", "1")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_info(csv, capsys):
    code, out, _ = run(capsys, "info", csv)
    assert code == 0
    assert "2,400 interactions, 120 users, 60 items" in out
    assert "rating histogram:" in out and "#" in out


def test_datasets(tmp_path, capsys):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("1\t1\t5\t0\n")
    code, out, _ = run(capsys, "datasets", "--data-home", tmp_path)
    assert code == 0
    assert "[x] ml-100k" in out and "[ ] ml-1m" in out


def test_compare_prints_and_writes_json(csv, tmp_path, capsys):
    out_json = tmp_path / "res.json"
    code, out, _ = run(capsys, "compare", csv, "--protocol", "3fold", "--models", "biases,item-mean,popularity",
                       "-o", out_json, "--no-curves")
    assert code == 0
    assert "RMSE" in out and "MAE" in out and "fit s" in out and "NDCG@10" in out
    doc = json.loads(out_json.read_text())
    assert doc["protocol"] == "3fold" and {r["model"] for r in doc["summary"]} == {"biases", "item-mean",
                                                                                    "popularity"}
    assert doc["dataset"]["rows"] == 2400


def test_compare_same_seed_same_table(csv, tmp_path, capsys):
    tables = []
    for name in ("a", "b"):
        run(capsys, "compare", csv, "--protocol", "holdout", "--models", "biases,user-mean,popularity", "--seed", 3,
            "-o", tmp_path / f"{name}.json")
        doc = json.loads((tmp_path / f"{name}.json").read_text())
        tables.append(pd.DataFrame(doc["results"])[["model", "metric", "value"]])
    pd.testing.assert_frame_equal(*tables)


def test_compare_report(csv, tmp_path, capsys):
    code, out, _ = run(capsys, "compare", csv, "--protocol", "holdout", "--models", "biases",
                       "--report", tmp_path / "rep")
    assert code == 0
    for name in ("report.html", "results.csv", "run.json", "results.json", "compare_explicit_rmse.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 0, name


def test_explore(csv, tmp_path, capsys):
    code, out, _ = run(capsys, "explore", csv, "--report", tmp_path / "eda")
    assert code == 0 and (tmp_path / "eda" / "eda_long_tail.png").stat().st_size > 0


def test_tune(csv, tmp_path, capsys):
    code, out, _ = run(capsys, "tune", "biases", csv, "--grid", "user_damping=0,10 item_damping=1,25", "--cv", 2,
                       "--report", tmp_path / "tune", "-o", tmp_path / "best")
    assert code == 0
    assert "best {" in out and "test rmse" in out
    assert (tmp_path / "tune" / "tune_heatmap.png").stat().st_size > 0
    assert lr.load_model(tmp_path / "best").get_params()["user_damping"] in (0, 10)


def test_train_recommend_similar_evaluate(csv, tmp_path, capsys):
    model_dir = tmp_path / "model"
    code, out, _ = run(capsys, "train", "biases", csv, "-o", model_dir, "--params", "user_damping=5")
    assert code == 0 and "saved to" in out
    assert lr.load_model(model_dir).user_damping == 5
    code, out, _ = run(capsys, "recommend", model_dir, "--user", 3, "-n", 4)
    assert code == 0 and out.count("\n") == 5 and "top 4 for user 3" in out
    code, out, _ = run(capsys, "similar", model_dir, "--item", 7, "-n", 3)
    assert code == 0 and "most similar to 7" in out
    code, out, _ = run(capsys, "evaluate", model_dir, csv)
    assert code == 0 and "RMSE" in out and "training data" in out


def test_find_item_by_title_words():
    data = lr.synthetic_ratings(50, 30, 600, random_state=0)
    data.item_metadata = pd.DataFrame({"title": [f"Movie {i}" for i in range(29)] + ["Toy Story (1995)"]},
                                      index=np.arange(30))
    model = lr.models.Biases().fit(data)
    assert find_item(model, "toy story") == 29
    assert find_item(model, "4") == 4
    with pytest.raises(lr.DataError, match="no item id or title matches"):
        find_item(model, "casablanca")


@pytest.mark.parametrize("argv, message", [
    (["info", "missing.csv"], "file not found"),
    (["info", "ml-nope"], "unknown dataset"),
    (["compare", "{csv}", "--models", "magic"], "unknown model 'magic'"),
    (["compare", "{csv}", "--protocol", "sideways"], "unknown protocol"),
    (["train", "biases", "{csv}", "-o", "{tmp}/m", "--params", "user_damping=-1"], "user_damping must be"),
    (["tune", "biases", "{csv}", "--grid", "n_factors=1,2"], "has no parameter"),
    (["recommend", "{tmp}/nothing", "--user", "1"], "manifest.json is missing"),
    (["train", "biases", "{csv}", "-o", "{tmp}/m", "--master", "local[2]"], "--master applies to models trained on Spark"),
    (["compare", "{csv}", "--models", "biases", "--master", "local[2]"], "add --engine spark"),
])
def test_bad_input_exits_nonzero_with_a_message(csv, tmp_path, capsys, argv, message):
    argv = [a.format(csv=csv, tmp=tmp_path) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert message in err and "Traceback" not in err


def test_unknown_user_and_bad_csv(csv, tmp_path, capsys):
    run(capsys, "train", "biases", csv, "-o", tmp_path / "m")
    code, _, err = run(capsys, "recommend", tmp_path / "m", "--user", 99999)
    assert code == 1 and "99999" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating\n1,2,4\n1,3,oops\n")
    code, _, err = run(capsys, "info", bad)
    assert code == 1 and "oops" in err


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare"])
    assert exc.value.code == 2


def test_serve_calls_the_server_lazily(tmp_path, capsys, monkeypatch):
    calls = []
    fake = types.ModuleType("latentrec.serve")
    fake.run = lambda model_path, host, port: calls.append((model_path, host, port))
    monkeypatch.setitem(sys.modules, "latentrec.serve", fake)
    code, _, _ = run(capsys, "serve", tmp_path / "m", "--port", 9001)
    assert code == 0 and calls == [(str(tmp_path / "m"), "127.0.0.1", 9001)]


def test_python_dash_m_subprocess(csv):
    proc = subprocess.run([sys.executable, "-m", "latentrec", "info", str(csv), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "120 users" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "latentrec", "info", "no/such/file.csv"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "file not found" in proc.stderr and "Traceback" not in proc.stderr
