"""Figures for comparisons, learning curves, tuning grids and exploratory analysis.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot
(no global state, no display needed; PNGs render through Agg). matplotlib is the
optional extra ``[plots]`` and is imported only when a figure is drawn. Colours
come from the Okabe–Ito palette, which stays distinguishable with the common
forms of colour blindness; baselines are drawn grey and hatched.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import DataError, require

#: Okabe & Ito (2008) colour-blind-safe palette (black omitted)
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000"]
BASELINE_COLOR = "#999999"
_LABELS = {
    "rmse": "RMSE (rating points; lower is better)", "mae": "MAE (rating points; lower is better)",
    "mse": "MSE (squared rating points; lower is better)", "r2": "R² (higher is better)",
    "train_loss": "training loss (mean squared error)", "val_rmse": "validation RMSE (rating points)",
}


def _figure(width: float = 7.0, height: float = 4.2, ncols: int = 1):
    require("matplotlib", "plots", "plots and reports")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = fig.subplots(1, ncols)
    for ax in np.atleast_1d(axes):
        ax.grid(True, axis="both", alpha=0.3, linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig, axes


def _thousands(axis) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _plain_log_ticks(axis) -> None:
    """Log axis labelled 1, 10, 100, 1,000 (no 6×10² minor labels)."""
    from matplotlib.ticker import NullFormatter

    _thousands(axis)
    axis.set_minor_formatter(NullFormatter())


def metric_label(metric: str) -> str:
    """Axis label with units for a metric name (``ndcg@10`` -> "NDCG@10 (0–1; higher is better)")."""
    if metric in _LABELS:
        return _LABELS[metric]
    base = metric.split("@")[0].removeprefix("val_").removeprefix("test_")
    where = "validation " if metric.startswith("val_") else "test " if metric.startswith("test_") else ""
    at = metric.split("@")[1] if "@" in metric else ""
    name = {"hit_rate": "hit rate", "map": "MAP", "mrr": "MRR"}.get(base, base.upper() if len(base) <= 4 else base)
    better = "lower" if base in ("rmse", "mae", "mse") else "higher"
    unit = "rating points" if base in ("rmse", "mae") else "0–1"
    return f"{where}{name}{'@' + at if at else ''} ({unit}; {better} is better)"


# ---------------------------------------------------------------- comparison
def comparison_chart(results: pd.DataFrame, metric: str, *, lower_is_better: bool | None = None):
    """Horizontal bars of ``metric`` per model (mean over folds, error bars = ±1 std)."""
    part = results[results["metric"] == metric]
    if part.empty:
        raise DataError(f"no results for metric {metric!r}")
    lower = metric.split("@")[0] in ("rmse", "mae", "mse") if lower_is_better is None else lower_is_better
    stats = part.groupby("model").agg(mean=("value", "mean"), std=("value", "std"), baseline=("baseline", "first"))
    stats = stats.fillna({"std": 0.0}).sort_values("mean", ascending=lower)
    n_folds = part["fold"].nunique()
    fig, ax = _figure(7.5, 1.2 + 0.42 * len(stats))
    y = np.arange(len(stats))[::-1]  # best at the top
    colors = [BASELINE_COLOR if b else OKABE_ITO[0] for b in stats["baseline"]]
    ax.barh(y, stats["mean"], xerr=stats["std"], color=colors, capsize=3, height=0.65,
            hatch=["//" if b else "" for b in stats["baseline"]], edgecolor="white", linewidth=0.5)
    ax.set_yticks(y, stats.index)
    lo = float((stats["mean"] - stats["std"]).min())
    hi = float((stats["mean"] + stats["std"]).max())
    pad = (hi - lo) * 0.25 + 1e-3
    ax.set_xlim(max(0.0, lo - pad) if lower else 0.0, hi + pad)
    for yy, m, s in zip(y, stats["mean"], stats["std"]):
        ax.text(m + s + pad * 0.08, yy, f"{m:.4f}", va="center", fontsize=8)
    ax.set_xlabel(metric_label(metric))
    ax.set_title(f"{metric.upper()} by model, mean ± std over {n_folds} fold{'s' * (n_folds > 1)} "
                 "(grey hatched = baseline)", fontsize=10)
    ax.grid(False, axis="y")
    return fig


def time_accuracy_chart(results: pd.DataFrame, metric: str):
    """Mean fit time (log seconds) against ``metric`` per model, labelled."""
    part = results[results["metric"] == metric]
    if part.empty:
        raise DataError(f"no results for metric {metric!r}")
    stats = part.groupby("model").agg(value=("value", "mean"), fit_s=("fit_s", "mean"), baseline=("baseline", "first"))
    fig, ax = _figure(7.0, 4.4)
    span = float(stats["value"].max() - stats["value"].min()) or 1.0
    placed: list[tuple[float, float, int]] = []
    for i, (name, row) in enumerate(stats.sort_values("fit_s").iterrows()):
        color = OKABE_ITO[i % 7]
        x, y = max(row["fit_s"], 1e-4), row["value"]
        ax.scatter(x, y, s=50, color=color,
                   marker="s" if row["baseline"] else "o", edgecolor="black", linewidth=0.5, zorder=3)
        # stagger labels of points that sit close together so they do not print over each other
        near = [dy for px, py, dy in placed if abs(np.log10(x) - np.log10(px)) < 0.6 and abs(y - py) < 0.05 * span]
        dy = 4 - 10 * len(near)
        placed.append((x, y, dy))
        ax.annotate(name, (x, y), xytext=(6, dy), textcoords="offset points", fontsize=8)
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.1)
    ax.set_xlabel("mean fit time per fold (seconds, log scale)")
    ax.set_ylabel(metric_label(metric))
    ax.set_title("Accuracy against training time (squares = baselines)", fontsize=10)
    return fig


def convergence_chart(histories: dict, key: str | None = None):
    """Per-epoch curves of each model's learning-curve fit (``history_``): ``key`` such as ``val_rmse``."""
    usable = {m: pd.DataFrame(h) for m, h in histories.items() if len(h) > 1}
    if key is None:
        cols = {c for h in usable.values() for c in h.columns}
        preferred = ["val_rmse", "val_ndcg", "train_loss"]
        key = next((c for c in preferred if c in cols), "train_loss")
    usable = {m: h for m, h in usable.items() if key in h.columns}
    if not usable:
        raise DataError(f"no model recorded {key!r} over more than one epoch")
    fig, ax = _figure(7.0, 4.2)
    for i, (name, h) in enumerate(usable.items()):
        ax.plot(h["epoch"], h[key], marker="o", markersize=3, color=OKABE_ITO[i % 7], label=name, linewidth=1.6)
    ax.set_xlabel("epoch (passes over the training data)")
    ax.set_ylabel(metric_label(key))
    where = "validation slice of the first fold's training rows" if key.startswith("val_") else "first fold"
    ax.set_title(f"Convergence: {key.replace('_', ' ')} after each epoch ({where})", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return fig


# ---------------------------------------------------------------- tuning
def tuning_curves(result, key: str | None = None):
    """One learning curve per setting (mean over validation folds); the best setting highlighted."""
    curves = result.curves
    if curves.empty:
        raise DataError("the search recorded no per-epoch history (the model is not iterative)")
    if key is None:
        keys = set(curves["metric"])
        base = result.metric.split("@")[0]
        key = next((k for k in (f"val_{base}", "val_rmse", "val_ndcg", "train_loss") if k in keys), "train_loss")
    part = curves[curves["metric"] == key].groupby(["setting", "epoch"])["value"].mean().reset_index()
    if part.empty:
        raise DataError(f"no curve recorded for {key!r}")
    best = int(result.results.sort_values(["rank", "setting"]).iloc[0]["setting"])
    res = result.results.set_index("setting")
    fig, ax = _figure(7.5, 4.6)
    settings = sorted(part["setting"].unique())
    for s in settings:
        h = part[part["setting"] == s]
        if s == best:
            continue
        ax.plot(h["epoch"], h["value"], color=OKABE_ITO[4], alpha=0.55, linewidth=1.0)
    h = part[part["setting"] == best]
    label = ", ".join(f"{p}={res.loc[best, p]}" for p in result.param_names)
    ax.plot(h["epoch"], h["value"], color=OKABE_ITO[3], linewidth=2.6, marker="o", markersize=3,
            label=f"best: {label}")
    ax.plot([], [], color=OKABE_ITO[4], alpha=0.55, label=f"the other {len(settings) - 1} settings")
    ax.set_xlabel("epoch (passes over the training data)")
    ax.set_ylabel(metric_label(key))
    n_folds = curves["fold"].nunique()
    over = "on the validation fold" if n_folds == 1 else f"mean over {n_folds} validation folds"
    ax.set_title(f"Learning curves of {len(settings)} settings ({over})", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return fig


def grid_heatmap(result, x: str | None = None, y: str | None = None):
    """Heat-map of the validation score over two parameters (best over the others)."""
    names = [p for p in result.param_names if result.results[p].nunique() > 1] or result.param_names
    if len(names) < 2:
        raise DataError("a heat-map needs a grid over at least two parameters")
    x, y = x or names[0], y or names[1]
    res = result.results
    agg = "max" if result.greater_is_better else "min"
    table = res.pivot_table(index=y, columns=x, values="mean_score", aggfunc=agg)
    fig, ax = _figure(max(5.8, 2.2 + 1.1 * table.shape[1]), 1.6 + 0.7 * table.shape[0])
    cmap = "viridis" if result.greater_is_better else "viridis_r"
    im = ax.imshow(table.to_numpy(dtype=float), cmap=cmap, aspect="auto")
    ax.grid(False)
    ax.set_xticks(range(table.shape[1]), [str(v) for v in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(v) for v in table.index])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    vals = table.to_numpy(dtype=float)
    best = np.nanmax(vals) if result.greater_is_better else np.nanmin(vals)
    mid = np.nanmean(vals)
    for (r, c), v in np.ndenumerate(vals):
        if np.isfinite(v):
            dark = (v < mid) if result.greater_is_better else (v > mid)
            ax.text(c, r, f"{v:.4f}", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black", fontweight="bold" if v == best else "normal")
    cb = fig.colorbar(im, ax=ax, shrink=0.9)
    cb.set_label(metric_label(result.metric), fontsize=8)
    others = [p for p in names if p not in (x, y)]
    name = result.metric.upper()
    ax.set_title(f"Validation {name} per setting (bold = best)" + (f"\nbest over {', '.join(others)}" if others else ""),
                 fontsize=10)
    return fig


# ---------------------------------------------------------------- exploratory
def rating_histogram(data):
    """Number of ratings at each rating value."""
    if data.is_implicit:
        raise DataError("implicit feedback has no rating histogram")
    vals, counts = np.unique(data.values, return_counts=True)
    fig, ax = _figure(6.5, 3.8)
    width = 0.8 * (np.min(np.diff(vals)) if len(vals) > 1 else 1.0)
    ax.bar(vals, counts, width=width, color=OKABE_ITO[0])
    for v, c in zip(vals, counts):
        ax.text(v, c, f"{c / len(data):.0%}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(vals, [f"{v:g}" for v in vals])
    ax.set_xlabel("rating (stars)")
    ax.set_ylabel("number of ratings")
    _thousands(ax.yaxis)
    ax.set_title(f"Rating distribution ({len(data):,} ratings, mean {data.values.mean():.2f})", fontsize=10)
    return fig


def long_tail(data):
    """Ratings per item and per user, sorted, on a log scale (the long tail)."""
    fig, axes = _figure(10.0, 4.0, ncols=2)
    for ax, counts, what, color in ((axes[0], data.item_counts(), "item", OKABE_ITO[0]),
                                    (axes[1], data.user_counts(), "user", OKABE_ITO[1])):
        c = np.sort(counts)[::-1]
        ax.plot(np.arange(1, len(c) + 1), np.maximum(c, 0.8), color=color, linewidth=1.8)
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)
        ax.set_xlabel(f"{what} rank (most active first)")
        ax.set_ylabel(f"interactions per {what} (log scale)")
        top = c[: max(1, len(c) // 10)].sum() / max(c.sum(), 1)
        ax.set_title(f"{len(c):,} {what}s: median {np.median(c):.0f}, top 10% hold {top:.0%}", fontsize=10)
    return fig


def _genre_table(data) -> pd.DataFrame:
    meta = data.item_metadata
    if meta is None or "genres" not in meta.columns:
        raise DataError("the data have no item genres (item_metadata['genres'])")
    items = data.items.take(data.item_codes)
    genres = meta["genres"].reindex(items)
    frame = pd.DataFrame({"genres": genres.to_numpy(), "rating": data.values})
    frame = frame[frame["genres"].notna()]
    if frame.empty:
        raise DataError("no rated item has genres")
    if isinstance(frame["genres"].iloc[0], str):
        frame["genres"] = frame["genres"].str.split("|")
    frame = frame.explode("genres")
    frame = frame[frame["genres"].notna() & (frame["genres"] != "") & ~frame["genres"].isin(["(no genres listed)", "unknown"])]
    return frame.groupby("genres")["rating"].agg(["mean", "count"]).sort_values("mean")


def genre_means(data):
    """Mean rating per genre with the number of ratings behind it."""
    if data.is_implicit:
        raise DataError("implicit feedback has no ratings to average per genre")
    table = _genre_table(data)
    fig, ax = _figure(7.5, 1.2 + 0.3 * len(table))
    y = np.arange(len(table))
    ax.barh(y, table["mean"], color=OKABE_ITO[2], height=0.7)
    ax.set_yticks(y, table.index)
    lo = float(table["mean"].min())
    ax.set_xlim(max(data.rating_scale[0], lo - 0.5), float(table["mean"].max()) + 0.45)
    for yy, (m, n) in zip(y, table[["mean", "count"]].to_numpy()):
        ax.text(m + 0.01, yy, f"{m:.2f}  (n={int(n):,})", va="center", fontsize=7.5, zorder=4,
                bbox=dict(facecolor="white", edgecolor="none", pad=0.6, alpha=0.85))
    ax.axvline(float(data.values.mean()), color="black", linestyle="--", linewidth=1, label="overall mean",
               zorder=3)
    ax.set_xlabel("mean rating (stars)")
    ax.set_title("Mean rating per genre (n = ratings; a film counts in each of its genres)", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.grid(False, axis="y")
    return fig


def activity_over_time(data):
    """Interactions per month (needs timestamps)."""
    if data.timestamps is None:
        raise DataError("the data have no timestamps")
    months = pd.to_datetime(data.timestamps, unit="s").to_period("M")
    counts = pd.Series(1, index=months).groupby(level=0).sum().sort_index()
    full = pd.period_range(counts.index.min(), counts.index.max(), freq="M")
    counts = counts.reindex(full, fill_value=0)
    fig, ax = _figure(8.0, 3.8)
    x = counts.index.to_timestamp() + pd.Timedelta(days=15)  # bar centred on its month
    ax.bar(x, counts.to_numpy(), width=26 if len(counts) < 60 else 28, color=OKABE_ITO[0])
    _thousands(ax.yaxis)
    ax.grid(False, axis="x")
    ax.set_xlabel("month")
    ax.set_ylabel("interactions per month")
    ax.set_title(f"Activity over time ({counts.index.min()} to {counts.index.max()})", fontsize=10)
    fig.autofmt_xdate()
    return fig


def save_png(fig) -> bytes:
    """The figure as PNG bytes."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


__all__ = ["comparison_chart", "time_accuracy_chart", "convergence_chart", "tuning_curves", "grid_heatmap",
           "rating_histogram", "long_tail", "genre_means", "activity_over_time", "save_png", "OKABE_ITO"]
