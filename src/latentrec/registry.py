"""Model registry: name -> model class, for the CLI, evaluate and the benchmarks.

Entries name the module file and the class, imported only when asked for, so listing
models costs nothing and optional extras (torch, pyspark) are only imported for
the models that need them. Loading a saved model instantiates only classes
listed here: a saved directory can never name arbitrary code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .errors import ModelError


@dataclass(frozen=True)
class Entry:
    name: str
    module: str
    cls: str
    task: str  # "explicit" or "implicit" (what it is evaluated on by default)
    baseline: bool = False
    extra: str | None = None  # the optional extra it needs
    default_params: tuple = ()  # (("n_factors", 50), ...) used by compare's defaults


_ENTRIES: dict[str, Entry] = {}


def register(name, module, cls, task, *, baseline=False, extra=None, default_params=None) -> None:
    """Add a model to the registry (name is lowercase, dash-separated)."""
    _ENTRIES[name] = Entry(name, module, cls, task, baseline, extra, tuple((default_params or {}).items()))


def entries(task: str | None = None) -> list[Entry]:
    return [e for e in _ENTRIES.values() if task is None or e.task == task]


def names(task: str | None = None) -> list[str]:
    return [e.name for e in entries(task)]


def get(name: str) -> Entry:
    try:
        return _ENTRIES[name.lower()]
    except KeyError:
        from ._util import did_you_mean

        raise ModelError(f"unknown model {name!r}{did_you_mean(name, _ENTRIES)}; known models: "
                         f"{', '.join(sorted(_ENTRIES))} (latentrec models lists them)") from None


def model_class(name: str):
    entry = get(name)
    module = importlib.import_module(entry.module)
    return getattr(module, entry.cls)


def create(name: str, **params):
    entry = get(name)
    merged = {**dict(entry.default_params), **params}
    return model_class(name)(**merged)


def name_of(model) -> str:
    """The catalogue name of a model instance (what a saved model's manifest records): the entry of
    its class whose default parameters it has (spark-implicit-als is SparkALS with implicit=True)."""
    cls = type(model)
    hits = [e for e in _ENTRIES.values() if e.cls == cls.__name__ and model_class(e.name) is cls]
    if not hits:
        raise ModelError(f"{cls.__module__}.{cls.__name__} is not a registered latentrec model")
    params = model.get_params(deep=False)
    for entry in sorted(hits, key=lambda e: -len(e.default_params)):
        if all(params.get(k) == v for k, v in entry.default_params):
            return entry.name
    return hits[0].name


def class_by_qualname(qualname: str):
    """The registered class whose ``module.Class`` name is ``qualname`` (how models saved before the
    manifest recorded catalogue names name their class; load reads both), modules that have since
    moved (:data:`latentrec.models.MOVED`) included."""
    from .models import MOVED

    module, _, cls = qualname.rpartition(".")
    now = MOVED.get(module, module)
    now = (now,) if isinstance(now, str) else now
    for entry in _ENTRIES.values():
        if entry.cls == cls and any(m == entry.module or m.startswith(entry.module + ".")
                                    or entry.module.startswith(m + ".") for m in now):
            return model_class(entry.name)
    raise ModelError(f"{qualname!r} is not a registered latentrec model")


def expand(spec: str | list[str], task: str | None = None) -> list[str]:
    """Expand model names and groups (``baselines``, ``all``, ``explicit``, ``implicit``)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for raw in items:
        name = raw.strip().lower()
        if not name:
            continue
        if name in ("all", "explicit", "implicit"):
            group = [e.name for e in entries(task if name == "all" else name) if e.extra != "spark"]
        elif name == "baselines":
            group = [e.name for e in entries(task) if e.baseline]
        else:
            group = [get(name).name]
        out.extend(g for g in group if g not in out)
    return out


M = "latentrec.models."
# baselines (Foundation): the only models marked as baselines in tables and plots
register("global-mean", M + "baselines", "GlobalMean", "explicit", baseline=True)
register("user-mean", M + "baselines", "UserMean", "explicit", baseline=True)
register("item-mean", M + "baselines", "ItemMean", "explicit", baseline=True)
register("user-item-mean", M + "baselines", "UserItemMean", "explicit", baseline=True)
register("biases", M + "baselines", "Biases", "explicit", baseline=True)
register("popularity", M + "baselines", "Popularity", "implicit", baseline=True)
# explicit models
register("biased-mf", M + "factorization.mf", "BiasedMF", "explicit")
register("als", M + "factorization.mf", "ALS", "explicit")
register("svdpp", M + "factorization.mf", "SVDpp", "explicit")
register("truncated-svd", M + "factorization.svd", "TruncatedSVD", "explicit")
register("user-knn", M + "neighbours.knn", "UserKNN", "explicit")
register("item-knn", M + "neighbours.knn", "ItemKNN", "explicit")
register("bayesian-fm", M + "bayesian.estimator", "BayesianFM", "explicit")
# implicit models
register("implicit-als", M + "factorization.wrmf", "ImplicitALS", "implicit")
register("bpr", M + "factorization.bpr", "BPR", "implicit")
register("pure-svd", M + "factorization.puresvd", "PureSVD", "implicit")
register("ease", M + "linear.ease", "EASE", "implicit")
register("implicit-item-knn", M + "neighbours.knn", "ImplicitItemKNN", "implicit")
register("edlae", M + "linear.dlae", "EDLAE", "implicit")
register("dlae", M + "linear.dlae", "DLAE", "implicit")
register("sparse-ease", M + "linear.sparse_ease", "SparseEASE", "implicit")
register("rp3beta", M + "neighbours.graph", "RP3beta", "implicit")
register("ensemble", M + "ensemble", "Ensemble", "implicit")
# neural (extra [neural])
register("dot-product", M + "neural.explicit", "DotProduct", "explicit", extra="neural")
register("biased-dot-product", M + "neural.explicit", "BiasedDotProduct", "explicit", extra="neural")
register("mlp", M + "neural.explicit", "MLP", "explicit", extra="neural")
register("neumf", M + "neural.neumf", "NeuMF", "implicit", extra="neural")
register("mult-vae", M + "neural.multvae", "MultVAE", "implicit", extra="neural")
# spark (extra [spark])
register("spark-als", "latentrec.spark", "SparkALS", "explicit", extra="spark")
register("spark-implicit-als", "latentrec.spark", "SparkALS", "implicit", extra="spark",
         default_params={"implicit": True})

#: ``latentrec compare --engine spark``: the models trained by Spark instead of latentrec
SPARK_ENGINE = {"als": "spark-als", "implicit-als": "spark-implicit-als"}


#: extra -> the packages it installs that a model of that extra imports when it fits
EXTRA_PACKAGES = {"neural": ("torch",), "spark": ("pyspark",)}


def missing_packages(name: str) -> list[str]:
    """The packages of the model's extra that are not installed (models import them lazily, at fit,
    so importing the model's module alone does not tell)."""
    import importlib.util

    return [p for p in EXTRA_PACKAGES.get(get(name).extra, ()) if importlib.util.find_spec(p) is None]


def available(name: str) -> bool:
    """True when the model can run here: its extra's packages are installed and its module imports."""
    entry = get(name)
    if missing_packages(name):
        return False
    try:
        importlib.import_module(entry.module)
    except ImportError:
        return False
    return True
