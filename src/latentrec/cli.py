"""The latentrec command line: a thin layer over the public Python API.

Sub-commands: ``models``, ``datasets``, ``info``, ``compare``, ``explore``, ``tune``,
``train``, ``recommend``, ``similar``, ``evaluate``, ``serve`` (``latentrec COMMAND
--help``). DATASET is a catalogue name (``ml-100k`` ...; loaded from the data home,
downloaded once when absent), a MovieLens folder, or a CSV/TSV/PSV/Parquet file
with ``user,item[,rating][,timestamp]`` columns. Every failure prints one line on
stderr and exits with status 1 (2 for bad usage), never a traceback (set
``LATENTREC_DEBUG=1`` to see one); output paths are checked before any work
starts. Progress bars show only on a terminal and never with ``--quiet``;
``--verbose`` shows them on any stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .errors import DataError, LatentrecError, ModelError


# ---------------------------------------------------------------- data
def _peek_columns(path: Path) -> list[str]:
    if path.suffix.lower() in (".parquet", ".pq"):
        return []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            first = fh.readline().strip()
    except OSError:
        return []
    seps = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".psv": "|"}
    sep = seps.get(path.suffix.lower()) or max([",", "\t", "|", ";"], key=first.count)
    return [c.strip().strip('"').lower() for c in first.split(sep)]


def load_dataset(spec: str, data_home=None):
    """A catalogue name, a MovieLens folder or an interactions file -> Interactions."""
    path = Path(spec).expanduser()
    if path.exists():
        if path.is_dir():
            from .data.movielens import load_movielens

            return load_movielens(path=path)
        from .data.readers import read_interactions

        cols = _peek_columns(path)
        kwargs = {}
        if cols and "rating" not in cols:
            kwargs["rating"] = None
        if "timestamp" in cols:
            kwargs["timestamp"] = "timestamp"
        return read_interactions(path, **kwargs)
    if os.sep in spec or spec.endswith((".csv", ".tsv", ".psv", ".parquet")):
        raise DataError(f"file not found: {spec}")
    from .data.movielens import load_movielens

    return load_movielens(spec, data_home=data_home)


def _load_model(path):
    from .persist import load_model

    return load_model(path)


def _parse_id(model_vocab, text: str):
    """The id as the model stores it: an int when its ids are integers, else the string."""
    if model_vocab.ids.dtype.kind in "iu":
        try:
            return int(text)
        except ValueError:
            raise DataError(f"{text!r} is not an id of this model (its ids are integers)") from None
    return text


def _titles(model, ids) -> list[str]:
    meta = getattr(model, "item_metadata_", None)
    if meta is None or "title" not in meta.columns:
        return [""] * len(ids)
    return [str(t) if isinstance(t, str) else "" for t in meta["title"].reindex(list(ids)).to_numpy()]


def _print_items(model, ids, scores, header: str) -> None:
    titles = _titles(model, ids)
    print(header)
    width = max([len(str(i)) for i in ids] + [4])
    for rank, (i, s, t) in enumerate(zip(ids, scores, titles), 1):
        print(f"{rank:>3}. {str(i):<{width}}  {s:8.4f}  {t}")


# ---------------------------------------------------------------- commands
def cmd_datasets(args) -> int:
    from .data.movielens import KNOWN_DATASETS, dataset_status, get_data_home

    print(f"data home: {get_data_home(args.data_home)}")
    for name, present, folder in dataset_status(args.data_home):
        info = KNOWN_DATASETS[name]
        print(f"  {'[x]' if present else '[ ]'} {name:<16} {info.size:>7}  {info.description}")
    print("[x] = present; others download on first use (latentrec info NAME)")
    return 0


def cmd_info(args) -> int:
    data = load_dataset(args.dataset, args.data_home)
    d = data.describe()
    print(f"{d['name']}: {d['rows']:,} interactions, {d['users']:,} users, {d['items']:,} items "
          f"({d['kind']}{', scale ' + str(d['rating_scale']) if d['rating_scale'] else ''})")
    print(f"density {d['density']:.4%} (sparsity {1 - d['density']:.4%}); mean value {d['mean']:.3f}")
    for what, counts in (("user", data.user_counts()), ("item", data.item_counts())):
        print(f"interactions per {what}: min {counts.min()}, median {np.median(counts):g}, max {counts.max()}")
    if "time_range" in d:
        lo, hi = (np.datetime64(t, "s").astype("datetime64[D]") for t in d["time_range"])
        print(f"time range: {lo} to {hi}")
    hist = d.get("histogram")
    if hist:
        print("rating histogram:")
        top = max(hist.values())
        for value, count in hist.items():
            bar = "#" * max(1, round(40 * count / top)) if count else ""
            print(f"  {value:>4g} | {bar:<40} {count:>10,} ({count / d['rows']:.1%})")
    return 0


def _default_output(args) -> Path:
    if args.report:
        return Path(args.report) / "results.json"
    stem = Path(args.dataset).name if Path(args.dataset).exists() else args.dataset
    return Path(f"latentrec-compare-{stem}-{args.protocol}-{args.engine}.json")


def _with_master(name: str, model, master: str | None):
    """Point a Spark model at ``master``; ``--master`` with a model that does not run on Spark is an error."""
    if master is None:
        return model
    if "master" not in model.get_params(deep=False):
        raise ModelError(f"--master applies to models trained on Spark (spark-als, spark-implicit-als); "
                         f"{name!r} runs in this process")
    return model.set_params(master=master)


def _trains_on_spark(model) -> bool:
    """A model trained on a Spark cluster (it takes a ``master``)."""
    return "master" in model.get_params(deep=False)


def _on_engine(models: dict, engine: str, master: str | None) -> dict:
    """``compare --engine spark``: train the ALS models on Spark (``als`` -> ``spark-als``,
    ``implicit-als`` -> ``spark-implicit-als``); ``--master`` goes to every Spark model."""
    from . import registry

    out = {}
    for name, model in models.items():
        if engine == "spark" and name in registry.SPARK_ENGINE:
            name = registry.SPARK_ENGINE[name]
            model = registry.create(name)
        out[name] = model
    if master is not None:
        spark = {n: m for n, m in out.items() if _trains_on_spark(m)}
        if not spark:
            raise ModelError("--master applies to models trained on Spark, and none of the compared models is: "
                             "add --engine spark, or spark-als / spark-implicit-als to --models")
        for model in spark.values():
            model.set_params(master=master)
    return out


def cmd_compare(args) -> int:
    from .evaluate import evaluate, format_summary, resolve_models, summarize

    data = load_dataset(args.dataset, args.data_home)
    skipped: list[str] = []
    models = _on_engine(resolve_models(args.models, "implicit" if data.is_implicit else "explicit", skipped),
                        args.engine, args.master)
    _set_model_params(models, _parse_params(args.params, per_model=True), skipped)
    out = Path(args.output) if args.output else _default_output(args)
    journal = out.with_name(out.name + ".partial.jsonl")
    t0 = time.perf_counter()
    n_jobs = args.n_jobs
    if n_jobs is None:  # a Spark session per worker process would oversubscribe the cores Spark already uses
        n_jobs = 1 if any(_trains_on_spark(m) for m in models.values()) else -1
    evaluation = evaluate(models, data, args.protocol, k=args.k, n_jobs=n_jobs, random_state=args.seed,
                          data_home=args.data_home, verbose=False if args.quiet else None,
                          curves=not args.no_curves, journal=journal, resume=args.resume)
    elapsed = time.perf_counter() - t0
    run = evaluation.run
    run["skipped_models"] = skipped + run["skipped_models"]
    summary = summarize(evaluation.results)
    print(format_summary(summary))
    print(f"\n{data.name}: {args.protocol}, seed {args.seed}, {elapsed:.1f} s")
    cold = evaluation.results.drop_duplicates(["model", "fold"])[["cold_users", "cold_items"]].sum()
    if cold.any():
        print(f"held-out rows with a user / item unseen in training (counted, never dropped): "
              f"{int(cold['cold_users']):,} / {int(cold['cold_items']):,} over all models and folds")
    if run.get("skipped_models"):
        print("not run: " + ", ".join(run["skipped_models"]))
    doc = {**run, "elapsed_s": elapsed,
           "summary": json.loads(summary.to_json(orient="records")),
           "results": json.loads(evaluation.results.to_json(orient="records"))}
    from ._util import atomic_write_text

    atomic_write_text(out, json.dumps(doc, indent=1, default=str))
    out.chmod(0o644)
    journal.unlink(missing_ok=True)  # every result is in the results file now
    print(f"results: {out}")
    if args.report:
        from .report import compare_report

        path = compare_report(evaluation, data, args.report)
        print(f"report: {path}")
    return 0


def cmd_explore(args) -> int:
    from .report import explore_report

    data = load_dataset(args.dataset, args.data_home)
    print(f"report: {explore_report(data, args.report)}")
    return 0


def cmd_tune(args) -> int:
    from . import registry, split
    from .tuning import grid_search, held_out_score, nested_cv, parse_grid, random_search

    _check_replace(args.output, args.force)
    data = load_dataset(args.dataset, args.data_home)
    model = _with_master(args.model, registry.create(args.model), args.master)
    task = model.task
    if task == "implicit" and not data.is_implicit:
        data = data.to_implicit()
    train, test = (split.user_holdout(data, 0.2, 5, random_state=args.seed) if task == "implicit"
                   else split.random_split(data, 0.2, random_state=args.seed))
    grid = parse_grid(args.grid)
    kw = dict(cv=args.cv, k=args.k, n_jobs=args.n_jobs, random_state=args.seed, metric=args.metric,
              verbose=False if args.quiet else None)
    if args.outer_cv:
        t0 = time.perf_counter()
        table = nested_cv(model, data, grid, outer=args.outer_cv, **kw)
        print(table.to_string(index=False))
        metric = table["metric"].iloc[0]
        print(f"\nnested CV, {args.outer_cv} outer folds: test {metric} {table['test_score'].mean():.4f} "
              f"± {table['test_score'].std(ddof=0):.4f} (unbiased); the validation scores that chose each setting "
              f"average {table['validation_score'].mean():.4f} (optimistic); {time.perf_counter() - t0:.1f} s")
        return 0
    t0 = time.perf_counter()
    if args.random:
        result = random_search(model, train, grid, n_iter=args.random, **kw)
    else:
        result = grid_search(model, train, grid, **kw)
    elapsed = time.perf_counter() - t0
    best = result.best_estimator
    score = held_out_score(best, test, result.metric, args.k)
    cols = ["rank", *result.param_names, "mean_score", "std_score", "fit_s"]
    print(result.results.sort_values(["rank", "setting"])[cols].to_string(index=False))
    print(f"\nbest {result.best_params}: validation {result.metric} {result.best_score:.4f} (optimistic: it chose "
          f"the setting; --outer-cv N gives the unbiased figure); refitted on the training split "
          f"({result.refit_rule}), test {result.metric} {score:.4f}")
    for warning in result.edge:
        print(f"warning: {warning}")
    print(f"{len(result.results)} settings x {args.cv} fold(s) in {elapsed:.1f} s")
    if args.report:
        from .report import tune_report

        print(f"report: {tune_report(result, args.report, test_score=score, title=f'Tuning {args.model} on {data.name}')}")
    if args.output:
        best.save(args.output)
        print(f"best model (fitted on the training split): {args.output}")
    return 0


def _check_params(name: str, params: dict) -> None:
    """``--params`` names must be hyper-parameters of the model (else one line listing them)."""
    from . import registry

    known = registry.model_class(name)._get_param_names()
    unknown = [p for p in params if p not in known]
    if unknown:
        raise ModelError(f"--params {unknown[0]!r} is not a hyper-parameter of {name}; "
                         f"expected one of {', '.join(sorted(known))}")


def _parse_params(items, *, per_model: bool = False) -> dict:
    """``name=value`` entries -> ``{name: value}``; with ``per_model``, ``model.name=value`` entries
    -> ``{model: {name: value}}``."""
    from .tuning import parse_value

    params: dict = {}
    form = "model.name=value (e.g. biased-mf.n_factors=64)" if per_model else "name=value"
    for item in items or []:
        for part in item.split():
            name, sep, value = part.partition("=")
            model, dot, name = name.rpartition(".") if per_model else ("", "", name)
            if not sep or not name or (per_model and not (dot and model)):
                raise DataError(f"--params entry {part!r} must look like {form}")
            (params.setdefault(model, {}) if per_model else params)[name] = parse_value(value)
    return params


def _set_model_params(models: dict, params: dict, skipped: list[str]) -> None:
    """``compare --params``: set each ``{model: {name: value}}`` on the compared model of that name."""
    from . import registry

    for name, values in params.items():
        key = registry.get(name).name
        if key not in models:
            if any(s.startswith(key + " ") for s in skipped):
                continue  # not run here (its extra is missing); said in "not run"
            raise DataError(f"--params names {name!r}, which is not among the compared models "
                            f"({', '.join(models)}); add it to --models")
        _check_params(key, values)
        models[key].set_params(**values)


def cmd_train(args) -> int:
    from . import registry

    params = _parse_params(args.params)
    _check_params(args.model, params)
    _check_replace(args.output, args.force)
    data = load_dataset(args.dataset, args.data_home)
    model = _with_master(args.model, registry.create(args.model, **params), args.master)
    if "random_state" in model.get_params() and model.get_params()["random_state"] is None:
        model.set_params(random_state=args.seed)
    if model.task == "implicit" and not data.is_implicit:
        data = data.to_implicit()
    t0 = time.perf_counter()
    model.fit(data)
    fit_s = time.perf_counter() - t0
    model.save(args.output)
    print(f"{args.model} fitted on {data.name} ({len(data):,} rows) in {fit_s:.2f} s; saved to {args.output}")
    return 0


def _check_replace(path, force: bool) -> None:
    """Refuse to overwrite an existing saved model unless ``--force`` (before any work starts)."""
    if path and (Path(path) / "manifest.json").is_file() and not force:
        raise DataError(f"{path} already holds a saved model; pass --force to replace it, or choose another folder")


def cmd_models(args) -> int:
    from . import registry

    rows = []
    for entry in registry.entries(args.task):
        missing = registry.missing_packages(entry.name)
        try:
            doc = (registry.model_class(entry.name).__doc__ or "").strip().split("\n")[0].strip().replace("``", "")
        except ImportError:  # a module that imports its extra at the top
            doc = ""
        extra = f"[{entry.extra}]" if entry.extra else "-"
        state = f"needs pip install 'latentrec[{entry.extra}]'" if missing else "ready"
        rows.append((entry.name, entry.task + (" (baseline)" if entry.baseline else ""), extra, state, doc))
    widths = [max(len(r[i]) for r in rows + [("name", "task", "extra", "here", "")]) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(("name", "task", "extra", "here"), widths)) + "  description")
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4])
    print("\nuse a name with compare --models, tune, train; groups: baselines, explicit, implicit, all")
    return 0


def cmd_recommend(args) -> int:
    model = _load_model(args.model)
    user = _parse_id(model.users_, args.user)
    ids, scores = model.recommend(user, n=args.n, exclude_seen=not args.include_seen, raw_scores=args.raw_scores)
    scale = getattr(model, "rating_scale_", None)
    if model.score_kind() != "rating":
        what = "scores: ranking scores"
    elif args.raw_scores:
        what = "scores: raw model scores"
    else:
        what = "scores: predicted ratings" + (f" on {scale[0]:g}-{scale[1]:g}" if scale else "")
    _print_items(model, ids, scores, f"top {len(ids)} for user {user} ({type(model).__name__}; {what}):")
    return 0


def find_item(model, text: str):
    """An item id from an id or from words of its title (the most popular match)."""
    try:
        item = _parse_id(model.items_, text)
        if item in model.items_:
            return item
    except DataError:
        pass
    meta = getattr(model, "item_metadata_", None)
    if meta is None or "title" not in meta.columns:
        raise DataError(f"item {text!r} is not known to the model and it has no titles to search")
    titles = meta["title"].reindex(model.items_.ids).fillna("").str.lower()
    words = text.lower().split()
    hit = np.ones(len(titles), dtype=bool)
    for w in words:
        hit &= titles.str.contains(w, regex=False).to_numpy()
    if not hit.any():
        raise DataError(f"no item id or title matches {text!r}")
    codes = np.flatnonzero(hit)
    best = codes[np.argmax(model.item_popularity_[codes])]
    return model.items_.ids[best]


def cmd_similar(args) -> int:
    model = _load_model(args.model)
    item = find_item(model, args.item)
    ids, scores = model.similar_items(item, n=args.n)
    title = _titles(model, [item])[0]
    _print_items(model, ids, scores, f"items most similar to {item}{' ' + title if title else ''}:")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import measure

    model = _load_model(args.model)
    data = load_dataset(args.dataset, args.data_home)
    if model.task == "implicit" and not data.is_implicit:
        data = data.to_implicit()
    if getattr(model, "train_checksum_", None) == data.compact().checksum():
        print("note: this is the model's training data, so these are training figures, not test figures")
    m = measure(model, data, k=args.k)
    print("  ".join(f"{name.upper()} {v:.4f}" for name, v in m.values.items()))
    if model.task == "explicit":
        print(f"on {m.n_rows:,} rows ({m.fallback_rows:,} with an unknown user or item got the fallback)")
    else:
        print(f"on {m.n_users:,} users and {m.n_rows:,} held-out items ({m.cold_users:,} users unknown to the model "
              f"got the most popular items; {m.cold_items:,} items unknown to it count as misses)")
    return 0


def cmd_serve(args) -> int:
    try:
        from .serve import run
    except ImportError as exc:
        from .errors import MissingDependencyError

        raise MissingDependencyError(f"serving needs latentrec.serve and its extra: "
                                     f"pip install 'latentrec[serve]' ({exc})") from exc
    run(args.model, host=args.host, port=args.port)
    return 0


# ---------------------------------------------------------------- argument checks
def _int_at_least(low: int, what: str = "an integer"):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected {what} >= {low}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is too small; expected {what} >= {low}")
        return value
    parse.__name__ = what  # argparse names the type in its messages
    return parse


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number; expected 0-65535") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number; expected 0-65535")
    return value


def _n_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected >= 1, or -1 for every core") from None
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(f"{value} is not a number of processes; expected >= 1, or -1 for every core")
    return value


def check_output(path, kind: str, option: str) -> Path:
    """Refuse an output path that cannot be written, before any work starts.

    ``kind`` is ``"file"`` (a JSON file: not an existing folder) or ``"dir"`` (a
    folder: not an existing file). In both cases the nearest existing ancestor
    must be a writable folder. Raises :class:`~latentrec.errors.DataError`.
    """
    path = Path(path).expanduser()
    if kind == "file" and path.is_dir():
        raise DataError(f"{option} {path} is an existing folder; expected a file name (e.g. {path / 'results.json'})")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise DataError(f"{option} {path} is an existing file; expected a folder")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(f"{option} {path}: {parent} is a file, so nothing can be written under it; "
                        "expected a path inside a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"{option} {path}: the folder {parent} is not writable")
    return path


# (command, attribute, kind, option) of every path a command writes
_OUTPUTS = (
    ("compare", "output", "file", "--output"), ("compare", "report", "dir", "--report"),
    ("explore", "report", "dir", "--report"), ("tune", "report", "dir", "--report"),
    ("tune", "output", "dir", "--output"), ("train", "output", "dir", "--output"),
)


def _check_outputs(args) -> None:
    if getattr(args, "report", None) and args.command in ("compare", "explore", "tune"):
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:  # before the work, not after it
            from .errors import MissingDependencyError

            raise MissingDependencyError("--report draws its figures with matplotlib, which is not installed; "
                                         "install it with: pip install 'latentrec[plots]', or leave --report out")
    for command, attr, kind, option in _OUTPUTS:
        value = getattr(args, attr, None)
        if args.command == command and value:
            check_output(value, kind, option)
    if args.command == "compare" and not args.output:
        check_output(_default_output(args), "file", "--output (default)")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: ``latentrec CMD: error: ...; see latentrec CMD --help``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


# ---------------------------------------------------------------- parser
_MASTER_HELP = "Spark master URL for Spark models, e.g. local[2], spark://host:7077, yarn (default local[*])"
_DATASET_HELP = "a catalogue name (latentrec datasets lists them), a MovieLens folder or an interactions file"
_MODEL_DIR_HELP = "a folder written by latentrec train (or tune --output)"


def _protocol(text: str) -> str:
    from .evaluate import check_protocol

    try:
        return check_protocol(text)
    except DataError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _model_name(text: str) -> str:
    from . import registry

    try:
        return registry.get(text).name
    except ModelError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _verbosity(parser: argparse.ArgumentParser, default) -> None:
    """--quiet / --verbose, accepted before the COMMAND and after it."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quiet", "-q", action="store_true", default=default,
                       help="no progress bars or progress lines")
    group.add_argument("--verbose", "-v", action="store_true", default=default,
                       help="progress bars even when stderr is not a terminal")


def build_parser() -> argparse.ArgumentParser:
    verbosity = _Parser(add_help=False)
    _verbosity(verbosity, argparse.SUPPRESS)  # after the COMMAND; SUPPRESS keeps a value given before it
    data_home = _Parser(add_help=False)
    data_home.add_argument("--data-home", metavar="DIR",
                           help="folder of the MovieLens releases (default $LATENTREC_DATA_HOME, else "
                                "~/.cache/latentrec)")
    seed = _Parser(add_help=False)
    seed.add_argument("--seed", type=int, default=0, help="random seed of splits and models (default 0)")
    parser = _Parser(prog="latentrec",
                     description="Collaborative-filtering recommenders: compare, tune, train, evaluate "
                                 "and serve models on MovieLens or your own interactions.",
                     epilog="latentrec COMMAND --help shows a command's options.")
    from .__about__ import __version__

    parser.add_argument("--version", action="version", version=f"latentrec {__version__}")
    _verbosity(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def add(name, func, help_, *parents):
        p = sub.add_parser(name, help=help_, description=help_, parents=[verbosity, *parents])
        p.set_defaults(func=func)
        return p

    p = add("models", cmd_models, "list the models: name, task, extra and a one-line description")
    p.add_argument("--task", choices=("explicit", "implicit"), help="only the models of this task")
    add("datasets", cmd_datasets, "list the MovieLens catalogue and which releases are present", data_home)
    p = add("info", cmd_info, "counts, density and a text rating histogram of a dataset", data_home)
    p.add_argument("dataset", metavar="DATASET", help=_DATASET_HELP)
    p = add("compare", cmd_compare, "compare models on one protocol; print and save the table", data_home, seed)
    p.add_argument("dataset", metavar="DATASET", help=_DATASET_HELP)
    p.add_argument("--protocol", default="5fold", type=_protocol,
                   help="5fold (default), Nfold, holdout, u1-u5, user-holdout, leave-last-out, temporal")
    p.add_argument("--models", default=None,
                   help="baselines | all | explicit | implicit | comma-separated names "
                        "(default: baselines + the main models of the data's task; latentrec models lists them)")
    p.add_argument("--params", nargs="+", metavar="MODEL.NAME=VALUE",
                   help="hyper-parameters of compared models, e.g. biased-mf.n_factors=64 svdpp.n_epochs=30")
    p.add_argument("--report", metavar="DIR",
                   help="write report.html, PNGs, results.csv and run.json here (needs the [plots] extra)")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="JSON of the results (default DIR/results.json with --report, else "
                        "./latentrec-compare-DATASET-PROTOCOL-ENGINE.json)")
    p.add_argument("--n-jobs", type=_n_jobs, default=None,
                   help="processes over (model, fold) pairs (-1: one per core); a model that would use every "
                        "core gets cores / jobs threads. Default: -1, or 1 when a model trains on Spark")
    p.add_argument("-k", type=_int_at_least(1, "a cut-off"), default=10,
                   help="cut-off of the ranking metrics (default 10)")
    p.add_argument("--no-curves", action="store_true",
                   help="skip the learning curves (one more fit of each iterative model on a validation "
                        "slice of the first fold's training rows)")
    p.add_argument("--resume", action="store_true",
                   help="keep the (model, fold) results an interrupted run of the same comparison journalled "
                        "beside the results file (RESULTS.partial.jsonl) and run only the rest")
    p.add_argument("--engine", choices=("latentrec", "spark"), default="latentrec",
                   help="spark: train every model that has a Spark engine with Spark MLlib (als -> spark-als, "
                        "implicit-als -> spark-implicit-als; needs the [spark] extra and Java)")
    p.add_argument("--master", metavar="URL", help=_MASTER_HELP)
    p = add("explore", cmd_explore, "exploratory plots of a dataset in an HTML report (needs [plots])", data_home)
    p.add_argument("dataset", metavar="DATASET", help=_DATASET_HELP)
    p.add_argument("--report", metavar="DIR", required=True, help="folder to write report.html and its PNGs to")
    p = add("tune", cmd_tune, "grid or random search with learning curves on an 80/20 split's training part",
            data_home, seed)
    p.add_argument("model", metavar="MODEL", type=_model_name, help="a model name (latentrec models lists them)")
    p.add_argument("dataset", metavar="DATASET", help=_DATASET_HELP)
    p.add_argument("--grid", required=True,
                   help="space-separated name=v1,v2 lists, e.g. 'n_factors=20,50,100 regularization=0.01,0.05'")
    p.add_argument("--random", type=_int_at_least(1, "a number of settings"), metavar="N",
                   help="sample N settings from the grid instead of all")
    p.add_argument("--cv", type=_int_at_least(1, "a number of folds"), default=3,
                   help="validation folds carved from the training part (1 = holdout)")
    p.add_argument("--outer-cv", type=_int_at_least(2, "a number of outer folds"), metavar="N", default=None,
                   help="nested cross-validation: N outer folds, each tuned on the rest and scored on itself "
                        "(the unbiased figure; prints the table, saves no model)")
    p.add_argument("--metric", choices=("rmse", "mae", "ndcg", "precision", "recall", "map"),
                   help="rmse (explicit default) or ndcg (implicit default), precision, recall, map (at k), mae")
    p.add_argument("-k", type=_int_at_least(1, "a cut-off"), default=10,
                   help="cut-off of the ranking metrics (default 10)")
    p.add_argument("--n-jobs", type=_n_jobs, default=1, help="processes over settings (-1: every core)")
    p.add_argument("--report", metavar="DIR", help="write an HTML report with the curves here (needs [plots])")
    p.add_argument("--output", "-o", metavar="DIR", help="save the best model here")
    p.add_argument("--force", action="store_true", help="replace a model already saved in --output")
    p.add_argument("--master", metavar="URL", help=_MASTER_HELP)
    p = add("train", cmd_train, "fit a model on a whole dataset and save it", data_home, seed)
    p.add_argument("model", metavar="MODEL", type=_model_name, help="a model name (latentrec models lists them)")
    p.add_argument("dataset", metavar="DATASET", help=_DATASET_HELP)
    p.add_argument("--output", "-o", metavar="DIR", required=True, help="folder to save the fitted model to")
    p.add_argument("--force", action="store_true", help="replace a model already saved in --output")
    p.add_argument("--params", nargs="+", metavar="NAME=VALUE", help="hyper-parameters, e.g. n_factors=64")
    p.add_argument("--master", metavar="URL", help=_MASTER_HELP)
    p = add("recommend", cmd_recommend, "top-N items for a user from a saved model")
    p.add_argument("model", metavar="MODEL_DIR", help=_MODEL_DIR_HELP)
    p.add_argument("--user", required=True, help="a user id of the model's training data")
    p.add_argument("-n", type=_int_at_least(1, "a number of items"), default=10,
                   help="how many items (default 10)")
    p.add_argument("--include-seen", action="store_true", help="also recommend items the user already has")
    p.add_argument("--raw-scores", action="store_true",
                   help="print the model's raw scores (rating models otherwise print predicted ratings "
                        "clipped to the rating scale)")
    p = add("similar", cmd_similar, "items similar to an item (id or title words) from a saved model")
    p.add_argument("model", metavar="MODEL_DIR", help=_MODEL_DIR_HELP)
    p.add_argument("--item", required=True, help="an item id or words of its title")
    p.add_argument("-n", type=_int_at_least(1, "a number of items"), default=10,
                   help="how many items (default 10)")
    p = add("evaluate", cmd_evaluate, "measure a saved model on a dataset (e.g. a held-out file)", data_home)
    p.add_argument("model", metavar="MODEL_DIR", help=_MODEL_DIR_HELP)
    p.add_argument("dataset", metavar="DATASET", help=_DATASET_HELP)
    p.add_argument("-k", type=_int_at_least(1, "a cut-off"), default=10,
                   help="cut-off of the ranking metrics (default 10)")
    p = add("serve", cmd_serve, "serve a saved model over HTTP (JSON API + web page; needs [serve])")
    p.add_argument("model", metavar="MODEL_DIR", help=_MODEL_DIR_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port, 0-65535 (0: any free port; default 8000)")
    return parser


def main(argv=None) -> int:
    """Entry point of the ``latentrec`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quiet:
        os.environ["LATENTREC_QUIET"] = "1"
    elif args.verbose:
        os.environ["LATENTREC_VERBOSE"] = "1"
        os.environ.pop("LATENTREC_QUIET", None)
    try:
        _check_outputs(args)
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into head & co.
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place every failure becomes one line
        if os.environ.get("LATENTREC_DEBUG"):
            raise
        print(f"latentrec {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line; errors latentrec did not raise on purpose carry their type."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, (LatentrecError, OSError)):
        text = f"{type(exc).__name__}: {text} (set LATENTREC_DEBUG=1 for the traceback)"
    if len(text) > 2000:
        text = text[:2000] + "..."
    return text


__all__ = ["main", "build_parser", "load_dataset", "find_item"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
