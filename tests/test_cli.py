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


def test_compare_runs_a_process_per_core_with_one_thread_per_model(csv, tmp_path, capsys):
    # issue 17: `--models all` took 5 min 9 s in one process, where torch's and numba's threads on 2 cores
    # were slower than one thread each in 2 processes (1 min 57 s); --n-jobs 1 keeps the old way
    for jobs, threads in ((None, 1), ("1", 0)):
        out_json = tmp_path / f"{jobs}.json"
        extra = [] if jobs is None else ["--n-jobs", jobs]
        assert run(capsys, "compare", csv, "--protocol", "holdout", "--models", "biased-mf", "--no-curves",
                   "-o", out_json, *extra)[0] == 0
        doc = json.loads(out_json.read_text())
        assert doc["n_jobs"] == (-1 if jobs is None else 1)
        assert doc["models"]["biased-mf"]["params"]["n_threads"] == threads


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
    (["compare", "{csv}", "--models", "biases", "--params", "biased-mf.n_factors=8"], "not among the compared"),
    (["compare", "{csv}", "--models", "biases", "--params", "biases.n_factors=8"], "not a hyper-parameter of biases"),
    (["compare", "{csv}", "--models", "biases", "--params", "n_factors=8"], "must look like model.name=value"),
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


@pytest.mark.parametrize("argv, message", [
    (["compare", "ml-100k", "--protocol", "5-fold"], "unknown protocol '5-fold' (did you mean '5fold'?)"),
    (["compare", "ml-100k", "--protocol", "10_folds"], "(did you mean '10fold'?)"),
    (["compare", "ml-100k", "--protocol", "sideways"], "unknown protocol 'sideways'; choose one of 5fold"),
    (["compare", "ml-100k", "--protocol", "holdot"], "(did you mean 'holdout'?)"),
    (["train", "biased_mf", "ml-100k", "-o", "m"], "unknown model 'biased_mf' (did you mean 'biased-mf'?)"),
    (["tune", "svd++", "ml-100k", "--grid", "x=1"], "(did you mean 'svdpp'?)"),
    (["tune", "biases", "ml-100k", "--grid", "x=1", "--metric", "auc"], "invalid choice: 'auc'"),
    (["recommend", "m", "--user", "1", "--seed", "3"], "unrecognized arguments: --seed 3"),
    (["serve", "m", "--data-home", "x"], "unrecognized arguments: --data-home x"),
])
def test_choices_are_checked_before_any_work_with_a_suggestion(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_did_you_mean_for_datasets():
    with pytest.raises(lr.DataError, match=r"unknown dataset 'ml-100l' \(did you mean 'ml-100k'\?\)"):
        lr.load_movielens("ml-100l")


def test_every_argument_has_help_text():
    import argparse

    from latentrec.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subs.choices) >= {"models", "datasets", "compare", "tune", "train", "evaluate", "serve"}
    for name, sub in [("latentrec", parser), *subs.choices.items()]:
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, f"{name} {action.option_strings or action.dest}"
    assert "``" not in parser.description  # plain text, not RST


@pytest.mark.parametrize("argv", [["--quiet", "info", "{csv}"], ["info", "{csv}", "-q"], ["-v", "info", "{csv}"]])
def test_verbosity_before_or_after_the_command(csv, capsys, monkeypatch, argv):
    monkeypatch.delenv("LATENTREC_QUIET", raising=False)
    monkeypatch.delenv("LATENTREC_VERBOSE", raising=False)
    code, out, _ = run(capsys, *[a.format(csv=csv) for a in argv])
    assert code == 0 and "interactions" in out
    import os

    assert bool(os.environ.get("LATENTREC_QUIET")) == ("-q" in argv or "--quiet" in argv)
    assert bool(os.environ.get("LATENTREC_VERBOSE")) == ("-v" in argv)


def test_models_lists_every_registered_model_with_its_extra(capsys):
    from latentrec import registry

    code, out, _ = run(capsys, "models")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip() and not line.startswith("use ")}
    assert set(lines) == set(registry.names())
    assert "[neural]" in lines["neumf"] and "[spark]" in lines["spark-als"] and "Biased matrix factor" in lines["biased-mf"]
    assert all("``" not in line and "module docstring" not in line for line in lines.values())
    code, out, _ = run(capsys, "models", "--task", "implicit")
    assert "ease" in out and "biased-mf" not in out


def test_models_says_which_extra_is_missing(capsys, monkeypatch):
    from latentrec import registry

    monkeypatch.setattr(registry, "missing_packages", lambda name: ["torch"] if registry.get(name).extra == "neural" else [])
    _, out, _ = run(capsys, "models")
    line = next(x for x in out.splitlines() if x.startswith("mlp "))
    assert "needs pip install 'latentrec[neural]'" in line


def test_train_refuses_to_overwrite_a_saved_model_without_force(csv, tmp_path, capsys):
    assert run(capsys, "train", "biases", csv, "-o", tmp_path / "m")[0] == 0
    stamp = (tmp_path / "m" / "manifest.json").stat().st_mtime_ns
    code, _, err = run(capsys, "train", "biases", csv, "-o", tmp_path / "m")
    assert code == 1 and "already holds a saved model; pass --force" in err
    assert (tmp_path / "m" / "manifest.json").stat().st_mtime_ns == stamp
    assert run(capsys, "train", "biases", csv, "-o", tmp_path / "m", "--force")[0] == 0


def test_compare_params_reach_the_model_and_the_results_name_has_the_engine(csv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "compare", csv, "--models", "biased-mf", "--protocol", "holdout", "--no-curves",
                       "--params", "biased-mf.n_factors=3", "biased-mf.n_epochs=2")
    assert code == 0
    doc = json.loads((tmp_path / "latentrec-compare-ratings.csv-holdout-latentrec.json").read_text())
    params = doc["models"]["biased-mf"]["params"]
    assert params["n_factors"] == 3 and params["n_epochs"] == 2


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


def test_recommend_prints_predicted_ratings_clipped_to_the_scale(csv, tmp_path, capsys):
    # issue 17: `latentrec recommend` printed 5.4956 on a 0.5-5 scale
    run(capsys, "train", "biased-mf", csv, "-o", tmp_path / "m", "--params", "n_epochs=60", "regularization=0")
    model = lr.load_model(tmp_path / "m")
    top = model.recommend(model.users_.ids, n=1, raw_scores=True)[1][:, 0]
    user = model.users_.ids[int(np.argmax(top))]
    raw = model.recommend(user, n=5, raw_scores=True)[1]
    assert raw.max() > model.rating_scale_[1]  # unregularised: top predictions leave the scale
    code, out, _ = run(capsys, "recommend", tmp_path / "m", "--user", user, "-n", 5)
    assert code == 0 and "scores: predicted ratings on 1-5" in out
    printed = [float(line.split()[2]) for line in out.splitlines()[1:]]
    np.testing.assert_allclose(printed, np.minimum(raw, 5.0), atol=1e-4)
    code, out, _ = run(capsys, "recommend", tmp_path / "m", "--user", user, "-n", 5, "--raw-scores")
    assert "raw model scores" in out and max(float(x.split()[2]) for x in out.splitlines()[1:]) > 5


def test_report_without_matplotlib_fails_before_any_work(csv, tmp_path, capsys, monkeypatch):
    # issue 17: compare --report without matplotlib computed everything, then exited 1
    import importlib.util

    import latentrec.evaluate as ev

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    monkeypatch.setattr(ev, "evaluate", lambda *a, **k: pytest.fail("the comparison ran"))
    code, _, err = run(capsys, "compare", csv, "--models", "biases", "--report", tmp_path / "r")
    assert code == 1 and "pip install 'latentrec[plots]'" in err and not (tmp_path / "r").exists()


def test_readme_command_lines_parse():
    """Every `latentrec ...` line of the README's Command line section is valid syntax for this CLI."""
    import re
    import shlex
    from pathlib import Path

    from latentrec.cli import build_parser

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    lines = [ln.split("  #")[0].strip() for ln in section.splitlines() if ln.startswith("    latentrec ")]
    assert len(lines) >= 10
    parser = build_parser()
    for line in lines:
        argv = shlex.split(line)[1:]
        args = parser.parse_args(argv)  # exits 2 (fails the test) on a bad line
        assert args.command == argv[0], line
    assert 'pip install ".[all]"' in section and "latentrec models" in section
    assert re.search(r"serve .*\[serve\]", section) and re.search(r"explore .*\[plots\]", section)
