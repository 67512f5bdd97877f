"""Issue 16 (part B), command line: every failure is one line on stderr and a non-zero exit.

Output paths are checked before any work starts (the ``compare`` cases would
otherwise fit every model first). Each case asserts the exit status, that stderr
is exactly one line with no traceback, and the key words of the message.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import latentrec as lr
from latentrec.cli import check_output, main
from latentrec.errors import DataError


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = lr.synthetic_ratings(60, 30, 600, random_state=1)
    data.to_frame().to_csv(root / "s.csv", index=False)
    (root / "afile").write_text("x")
    (root / "folder").mkdir()
    (root / "bad.csv").write_text("user,item,rating\n1,2,x\n")
    (root / "notparquet.parquet").write_text("hello")
    model = lr.Biases().fit(data)
    model.save(root / "model")
    return root


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("LATENTREC_QUIET", "1")
    monkeypatch.delenv("LATENTREC_DEBUG", raising=False)


def run(capsys, root, argv):
    argv = [a.replace("{root}", str(root)) for a in argv.split()]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


CASES = [
    # ---- defects of issue 16 (tracebacks, or a whole run before failing, or a silent full grid)
    ("train-unknown-param", "train biases {root}/s.csv -o {root}/m1 --params foo=1", 1,
     r"--params 'foo' is not a hyper-parameter of biases; expected one of"),
    ("compare-output-folder", "compare {root}/s.csv -o {root}/folder --models biases", 1,
     r"--output .*folder is an existing folder; expected a file name"),
    ("compare-output-under-file", "compare {root}/s.csv -o {root}/afile/x.json --models biases", 1,
     r"afile is a file, so nothing can be written under it"),
    ("compare-report-file", "compare {root}/s.csv --report {root}/afile --models biases", 1,
     r"--report .*afile is an existing file; expected a folder"),
    ("serve-port-99999", "serve {root}/model --port 99999", 2, r"argument --port: 99999 is not a port number; expected 0-65535"),
    ("tune-random-0", "tune biases {root}/s.csv --grid n_epochs=1,2 --random 0", 2,
     r"argument --random: 0 is too small; expected a number of settings >= 1"),
    # ---- output paths
    ("compare-report-under-file", "compare {root}/s.csv --report {root}/afile/r --models biases", 1, r"is a file, so nothing"),
    ("explore-report-file", "explore {root}/s.csv --report {root}/afile", 1, r"--report .*is an existing file"),
    ("tune-output-file", "tune biases {root}/s.csv --grid n_epochs=1,2 -o {root}/afile", 1, r"--output .*is an existing file"),
    ("tune-report-file", "tune biases {root}/s.csv --grid n_epochs=1,2 --report {root}/afile", 1, r"--report .*existing file"),
    ("train-output-file", "train biases {root}/s.csv -o {root}/afile", 1, r"--output .*afile is an existing file"),
    ("train-output-under-file", "train biases {root}/s.csv -o {root}/afile/m", 1, r"is a file, so nothing"),
    # ---- numbers
    ("serve-port-negative", "serve {root}/model --port -1", 2, r"-1 is not a port number"),
    ("serve-port-text", "serve {root}/model --port http", 2, r"'http' is not a port number"),
    ("tune-random-negative", "tune biases {root}/s.csv --grid n_epochs=1,2 --random -3", 2, r"-3 is too small"),
    ("tune-random-text", "tune biases {root}/s.csv --grid n_epochs=1,2 --random all", 2, r"'all' is not an integer"),
    ("tune-cv-0", "tune biases {root}/s.csv --grid n_epochs=1,2 --cv 0", 2, r"--cv: 0 is too small; expected a number of folds"),
    ("tune-k-0", "tune biases {root}/s.csv --grid n_epochs=1,2 -k 0", 2, r"-k: 0 is too small; expected a cut-off"),
    ("tune-n-jobs-0", "tune biases {root}/s.csv --grid n_epochs=1,2 --n-jobs 0", 2, r"--n-jobs: 0 is not a number of processes"),
    ("compare-k-0", "compare {root}/s.csv -k 0", 2, r"-k: 0 is too small"),
    ("compare-n-jobs--2", "compare {root}/s.csv --n-jobs -2", 2, r"--n-jobs: -2 is not a number of processes"),
    ("recommend-n-0", "recommend {root}/model --user 1 -n 0", 2, r"-n: 0 is too small; expected a number of items"),
    ("recommend-n-text", "recommend {root}/model --user 1 -n ten", 2, r"'ten' is not an integer"),
    ("similar-n-negative", "similar {root}/model --item 1 -n -5", 2, r"-n: -5 is too small"),
    ("evaluate-k-0", "evaluate {root}/model {root}/s.csv -k 0", 2, r"-k: 0 is too small"),
    ("bad-seed", "train biases {root}/s.csv -o {root}/m7 --seed abc", 2, r"argument --seed: invalid int value"),
    ("unknown-command", "fly", 2, r"invalid choice: 'fly'"),
    ("missing-argument", "train biases", 2, r"required"),
    # ---- hyper-parameters
    ("params-no-equals", "train biases {root}/s.csv -o {root}/m2 --params n_epochs", 1, r"must look like name=value"),
    ("params-bad-value", "train biases {root}/s.csv -o {root}/m3 --params n_epochs=-1", 1, r"n_epochs"),
    ("params-wrong-type", "train biases {root}/s.csv -o {root}/m4 --params n_epochs=abc", 1, r"n_epochs"),
    ("unknown-model", "train nosuch {root}/s.csv -o {root}/m5", 2, r"argument MODEL: unknown model 'nosuch'"),
    ("master-on-local-model", "train biases {root}/s.csv -o {root}/m6 --master local[1]", 1, r"--master applies to models"),
    ("tune-bad-grid", "tune biases {root}/s.csv --grid nonsense", 1, r"grid|nonsense"),
    ("tune-unknown-grid-param", "tune biases {root}/s.csv --grid foo=1,2", 1, r"foo"),
    # ---- data and models
    ("info-missing-file", "info {root}/nope.csv", 1, r"file not found"),
    ("info-bad-value", "info {root}/bad.csv", 1, r"bad\.csv, line 2: column 'rating' is 'x'"),
    ("info-not-parquet", "info {root}/notparquet.parquet", 1, r"is not a readable Parquet file"),
    ("info-unknown-dataset", "info ml-999", 1, r"unknown dataset 'ml-999'"),
    ("info-folder-without-movielens", "info {root}/folder", 1, r"no MovieLens ratings file"),
    ("recommend-missing-model", "recommend {root}/nomodel --user 1", 1, r"nomodel"),
    ("recommend-not-a-model", "recommend {root}/folder --user 1", 1, r"folder"),
    ("recommend-unknown-user", "recommend {root}/model --user 999999", 1, r"999999"),
    ("recommend-text-user", "recommend {root}/model --user abc", 1, r"'abc' is not an id of this model"),
    ("similar-unknown-item", "similar {root}/model --item zzzzqqq", 1, r"zzzzqqq"),
    ("evaluate-missing-data", "evaluate {root}/model {root}/nope.csv", 1, r"file not found"),
]


@pytest.mark.parametrize("argv,status,pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_failure_is_one_line(files, capsys, argv, status, pattern):
    import re

    code, out, err = run(capsys, files, argv)
    assert code == status, (code, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("latentrec"), err
    assert re.search(pattern, lines[0]), lines[0]


def test_output_checked_before_any_work(files, capsys, monkeypatch):
    # issue 16: compare -o <folder> failed with IsADirectoryError after the whole run
    import latentrec.evaluate as ev

    def boom(*a, **k):  # pragma: no cover - reached only if the check comes too late
        raise AssertionError("evaluate ran before the output path was checked")

    monkeypatch.setattr(ev, "evaluate", boom)
    code, _, err = run(capsys, files, "compare {root}/s.csv -o {root}/folder --models biases")
    assert code == 1 and "existing folder" in err


def test_unexpected_error_is_one_line_with_its_type(files, capsys, monkeypatch):
    import latentrec.cli as cli

    monkeypatch.setattr(cli, "cmd_info", lambda args: (_ for _ in ()).throw(RuntimeError("boom\nsecond line")))
    parser = cli.build_parser

    def patched():
        p = parser()
        p._subparsers._group_actions[0].choices["info"].set_defaults(func=cli.cmd_info)
        return p

    monkeypatch.setattr(cli, "build_parser", patched)
    code, _, err = run(capsys, files, "info {root}/s.csv")
    assert code == 1
    assert err.strip() == ("latentrec info: error: RuntimeError: boom second line "
                           "(set LATENTREC_DEBUG=1 for the traceback)")


@pytest.mark.parametrize("kind,make,pattern", [
    ("file", lambda p: p.mkdir(), "existing folder"),
    ("dir", lambda p: p.write_text("x"), "existing file"),
])
def test_check_output(tmp_path, kind, make, pattern):
    make(tmp_path / "x")
    with pytest.raises(DataError, match=pattern):
        check_output(tmp_path / "x", kind, "--output")
    assert check_output(tmp_path / "new" / "deeper" / "y", kind, "--output") == tmp_path / "new" / "deeper" / "y"


def test_subprocess_has_no_traceback(files):
    proc = subprocess.run([sys.executable, "-m", "latentrec", "serve", str(files / "model"), "--port", "99999"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "latentrec serve: error: argument --port: 99999 is not a port number; expected 0-65535; "
        "see latentrec serve --help"]
