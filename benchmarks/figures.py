"""The README's accuracy figures: measured by the benchmarks, pinned, and rendered into README.md.

Every accuracy table of the README is generated from ``benchmarks/expected_figures.json``,
which holds the figures of the last full measurement and the command that measured each set:

    python benchmarks/figures.py measure [--only rating,ranking]  # run the benchmarks -> benchmarks/results/figures.json
    python benchmarks/figures.py check                            # measured vs expected, within the tolerances below
    python benchmarks/figures.py accept [--only ranking]          # take the measured figures as the expected ones
    python benchmarks/figures.py readme                           # rewrite the README tables from the expected figures

``tests/test_figures.py`` checks that the README tables are exactly what ``readme``
renders, and compares a measured ``figures.json`` (when one exists) with the expected
figures; the real-data tests recompute the cheaper figures in CI and assert them to
the same tolerances (``tests/integration``). Timings are not pinned: they are ratios
against a peer measured in the same run and live beside the tables, with their commands.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected_figures.json"
MEASURED = HERE / "results" / "figures.json"
README = HERE.parent / "README.md"

#: how far a re-measured figure may move before the check fails (absolute)
TOLERANCE = {"rmse": 0.002, "mae": 0.002, "ndcg": 0.005, "precision": 0.005, "recall": 0.005, "map": 0.005}

#: figure set -> the benchmark that measures it (each writes its set with ``--figures PATH``)
SOURCES = {
    "rating": ["explicit.py", "--models", "biases,biased-mf,als,svdpp,truncated-svd,user-knn,item-knn", "--blend",
               "--peers", "--protocols", "5fold,u1-u5,80/20"],
    "ranking": ["implicit_feedback.py", "--datasets", "ml-100k", "--peers", "--no-speed", "--models",
                "EASE,EDLAE,DLAE,SparseEASE,PureSVD,RP3beta,ImplicitALS,BPR,ImplicitItemKNN,Popularity,Ensemble",
                "--lenskit-models", "ease"],
    "neural": ["neural.py", "--only", "accuracy"],
    "bayesian": ["bayesian.py", "--protocols", "5fold", "u1-u5", "80/20", "--features", "sessions", "side", "plain"],
}

#: README block -> (figure set, table, [(column key, heading)], metric, sort column)
BLOCKS = {
    "rating-ml100k": (("rating", "bayesian"), "ml-100k", [("5fold", "5-fold"), ("u1-u5", "u1–u5")], "rmse", "5fold"),
    "rating-ml-latest-small": (("rating", "bayesian"), "ml-latest-small", [("80/20", "80/20")], "rmse", "80/20"),
    "neural": ("neural", None, [("80/20", "ml-latest-small 80/20"), ("5fold", "ml-100k 5-fold")], "rmse", "5fold"),
    "ranking-ml100k": ("ranking", "ml-100k", [("precision@10", "P@10"), ("recall@10", "R@10"),
                                               ("ndcg@10", "NDCG@10"), ("map@10", "MAP@10"), ("recall@20", "R@20"),
                                               ("recall@50", "R@50"), ("ndcg@100", "NDCG@100")], None, "ndcg@10"),
    "ranking-ml-latest-small": ("ranking", "ml-latest-small", [("precision@10", "P@10"), ("recall@10", "R@10"),
                                                               ("ndcg@10", "NDCG@10"), ("map@10", "MAP@10")],
                                None, "ndcg@10"),
}


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def metric_of(fig: dict) -> str:
    return fig["metric"].split("@")[0]


def _key(fig: dict) -> tuple:
    return fig["table"], fig["library"], fig["model"], fig["column"], fig["metric"]


def compare(measured: dict, expected: dict, only=None) -> list[str]:
    """Differences beyond :data:`TOLERANCE` (and figures missing on either side) as lines."""
    problems = []
    for name, exp in expected.items():
        if only and name not in only:
            continue
        if name not in measured:
            problems.append(f"{name}: not measured")
            continue
        got = {_key(f): f["value"] for f in measured[name]["figures"]}
        for f in exp["figures"]:
            tol = TOLERANCE.get(metric_of(f))
            if tol is None:
                continue
            value = got.get(_key(f))
            if value is None:
                problems.append(f"{name}: {' / '.join(map(str, _key(f)))} missing from the measurement")
            elif abs(value - f["value"]) > tol:
                problems.append(f"{name}: {' / '.join(map(str, _key(f)))} is {value:.4f}, expected "
                                f"{f['value']:.4f} ± {tol}")
    return problems


def render(block: str, expected: dict) -> str:
    """The markdown table of one README block."""
    set_names, table, columns, metric, sort = BLOCKS[block]
    set_names = (set_names,) if isinstance(set_names, str) else set_names
    set_names = tuple(n for n in set_names if n in expected)
    figures = [f for n in set_names for f in expected[n]["figures"] if table in (None, f["table"]) and
               metric in (None, f["metric"])]
    rows: dict = {}
    for f in figures:
        col = f["column"] if metric is not None else f["metric"]
        rows.setdefault((f["library"], f["model"]), {})[col] = f["value"]
    lower = metric in ("rmse", "mae")
    order = sorted(rows.items(), key=lambda kv: (kv[0][0] != "latentrec",
                                                 kv[1].get(sort, float("inf")) * (1 if lower else -1)))
    best = {c: (min if lower else max)(r[c] for _, r in order if c in r) for c, _ in columns
            if any(c in r for _, r in order)}
    lines = ["| library | model | " + " | ".join(h for _, h in columns) + " |",
             "|---|---|" + "---:|" * len(columns)]
    for (library, model), vals in order:
        cells = []
        for c, _ in columns:
            v = vals.get(c)
            cells.append("" if v is None else (f"**{v:.4f}**" if v == best.get(c) else f"{v:.4f}"))
        lines.append(f"| {library} | {model} | " + " | ".join(cells) + " |")
    commands = " and ".join(f"`python benchmarks/{' '.join(SOURCES[n])}`" for n in set_names)
    return "\n".join(lines) + (f"\n\n<sub>{commands} (or `python benchmarks/figures.py measure --only "
                                f"{','.join(set_names)}`); pinned in benchmarks/expected_figures.json</sub>")


def rewrite_readme(text: str, expected: dict) -> str:
    """``text`` with every ``<!-- figures:NAME -->`` ... ``<!-- /figures -->`` block re-rendered."""
    out, pos = [], 0
    while True:
        start = text.find("<!-- figures:", pos)
        if start < 0:
            out.append(text[pos:])
            return "".join(out)
        head_end = text.index("-->", start) + 3
        name = text[start + len("<!-- figures:"):head_end - 3].strip()
        end = text.index("<!-- /figures -->", head_end)
        out.append(text[pos:head_end] + "\n" + render(name, expected) + "\n")
        pos = end


def measure(only, out: Path) -> None:
    for name, argv in SOURCES.items():
        if only and name not in only:
            continue
        cmd = [sys.executable, str(HERE / argv[0]), *argv[1:], "--figures", str(out)]
        print("#", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, env=os.environ.copy())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["measure", "check", "accept", "readme"])
    ap.add_argument("--only", help="comma-separated figure sets (" + ", ".join(SOURCES) + ")")
    ap.add_argument("--results", default=str(MEASURED), help="the measured figures (default %(default)s)")
    args = ap.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    results = Path(args.results)
    if args.action == "measure":
        measure(only, results)
        return 0
    if args.action == "check":
        problems = compare(load(results), load(EXPECTED), only)
        print("\n".join(problems) if problems else "every measured figure is within tolerance of the expected one")
        return 1 if problems else 0
    if args.action == "accept":
        expected, measured = load(EXPECTED), load(results)
        for name in (only or measured):
            expected[name] = measured[name]
        EXPECTED.write_text(json.dumps(expected, indent=1) + "\n")
        print(f"{EXPECTED}: {', '.join(sorted(only or measured))} taken from {results}")
        return 0
    README.write_text(rewrite_readme(README.read_text(), load(EXPECTED)))
    print(f"{README}: tables re-rendered from {EXPECTED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
