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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)  # a renderer to measure text with (label placement) and to draw PNGs
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


def _log_ticks(lo: float, hi: float) -> list[float]:
    """At least three tick values in [lo, hi] (0 < lo < hi): powers of ten when the range spans
    enough decades, else the 1-2-5 series, else every 1..9 × 10^k (the same range, the same ticks)."""
    decades = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
    ticks: list[float] = []
    for subs in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [float(m * 10.0 ** e) for e in decades for m in subs if lo <= m * 10.0 ** e <= hi]
        if len(ticks) >= 3:
            return ticks
    return sorted({float(f"{v:.2g}") for v in np.geomspace(lo, hi, 3)})  # under a factor of 1.5


def _plain_log_ticks(ax) -> None:
    """The y axis of ``ax`` (log scale, drawn) labelled with plain numbers (1, 10, 100, 1,000 — or
    20, 50, 100, 200, 500 on a short range: never fewer than three labels); no 6×10² labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    lo, hi = ax.get_ylim()
    ax.yaxis.set_major_locator(FixedLocator(_log_ticks(lo, hi)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(lo, hi)


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
    n_folds = part["fold"].nunique()
    stats = stats.fillna({"std": 0.0}).sort_values("mean", ascending=lower)  # one fold: no spread, no error bar
    fig, ax = _figure(7.5, 1.2 + 0.42 * len(stats))
    y = np.arange(len(stats))[::-1]  # best at the top
    colors = [BASELINE_COLOR if b else OKABE_ITO[0] for b in stats["baseline"]]
    ax.barh(y, stats["mean"], xerr=stats["std"] if n_folds > 1 else None, color=colors, capsize=3, height=0.65,
            hatch=["//" if b else "" for b in stats["baseline"]], edgecolor="white", linewidth=0.5)
    ax.set_yticks(y, stats.index)
    lo = float((stats["mean"] - stats["std"]).min())
    hi = float((stats["mean"] + stats["std"]).max())
    pad = (hi - lo) * 0.25 + 1e-3
    ax.set_xlim(max(0.0, lo - pad) if lower else 0.0, hi + pad)
    for yy, m, s in zip(y, stats["mean"], stats["std"]):
        ax.text(m + s + pad * 0.08, yy, f"{m:.4f}", va="center", fontsize=8)
    ax.set_xlabel(metric_label(metric))
    over = f"mean ± std over {n_folds} folds" if n_folds > 1 else "one fold (no spread to show)"
    ax.set_title(f"{metric.upper()} by model, {over} (grey hatched = baseline)", fontsize=10)
    ax.grid(False, axis="y")
    return fig


_MARKER_SIZE = 50  # scatter marker area (points²)
#: where a label may go, tried in this order (right, left, the diagonals, above, below) at growing distances
_DIRECTIONS = ((1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1))
_DISTANCES = (6, 12, 20, 30, 42, 56)  # points from the marker's centre


def _place_labels(fig, ax, xy, names) -> None:
    """Label each point of ``xy`` (data coordinates) so that no label box overlaps another label,
    a marker or the axes' edge.

    Deterministic: each label, in order, takes the first free spot of :data:`_DIRECTIONS` ×
    :data:`_DISTANCES`, its box measured by the renderer. A spot is free when the box overlaps
    nothing and is nearer its own point than any other (so no label reads as another point's); a
    label set away from its point gets a leader line; if no spot is free it takes the one
    overlapping least. The layout is computed first and then frozen, so the boxes measured here
    are the boxes saved.
    """
    from matplotlib.transforms import Bbox

    fig.canvas.draw()  # constrained layout places the axes; freeze it so data -> pixels stays fixed
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()
    pixels = ax.transData.transform(np.asarray(xy, dtype=float))
    r = np.sqrt(_MARKER_SIZE) / 2 * fig.dpi / 72 + 1.0
    blocked = [Bbox.from_extents(px - r, py - r, px + r, py + r) for px, py in pixels]
    frame = ax.get_window_extent(renderer)

    def overlap(box) -> float:
        area = sum(max(0.0, min(box.x1, b.x1) - max(box.x0, b.x0)) * max(0.0, min(box.y1, b.y1) - max(box.y0, b.y0))
                   for b in blocked)
        outside = box.width * box.height - max(0.0, min(box.x1, frame.x1) - max(box.x0, frame.x0)) * \
            max(0.0, min(box.y1, frame.y1) - max(box.y0, frame.y0))
        return area + outside

    def gap(box, px, py) -> float:
        return float(np.hypot(max(box.x0 - px, 0.0, px - box.x1), max(box.y0 - py, 0.0, py - box.y1)))

    for j, ((x, y), name) in enumerate(zip(xy, names)):
        best = None  # (overlap, distance, keyword arguments, box)
        for dist in _DISTANCES:
            for dx, dy in _DIRECTIONS:
                kw = dict(xytext=(dx * dist, dy * dist * 0.8), textcoords="offset points", fontsize=8,
                          ha={1: "left", -1: "right", 0: "center"}[dx], va={1: "bottom", -1: "top", 0: "center"}[dy])
                trial = ax.annotate(name, (x, y), **kw)
                box = trial.get_window_extent(renderer)
                trial.remove()
                cost = overlap(box)
                own = gap(box, *pixels[j])
                if any(gap(box, px, py) <= own + 2.0 for k, (px, py) in enumerate(pixels) if k != j):
                    cost += 1.0  # nearer another point: ambiguous
                if best is None or cost < best[0]:
                    best = (cost, dist, kw, box)
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, dist, kw, box = best
        if dist > _DISTANCES[0]:  # a leader line back to its point
            kw["arrowprops"] = dict(arrowstyle="-", color="0.45", linewidth=0.6, shrinkA=1, shrinkB=4)
        ax.annotate(name, (x, y), **kw)
        blocked.append(box)


def time_accuracy_chart(results: pd.DataFrame, metric: str):
    """Mean fit time (log seconds) against ``metric`` per model, each point labelled where its label
    overlaps no other label or point (:func:`_place_labels`)."""
    part = results[results["metric"] == metric]
    if part.empty:
        raise DataError(f"no results for metric {metric!r}")
    stats = part.groupby("model").agg(value=("value", "mean"), fit_s=("fit_s", "mean"), baseline=("baseline", "first"))
    stats = stats.sort_values(["fit_s", "value"])
    stats["fit_s"] = stats["fit_s"].clip(lower=1e-4)
    fig, ax = _figure(7.0, 4.4)
    for i, (name, row) in enumerate(stats.iterrows()):
        ax.scatter(row["fit_s"], row["value"], s=_MARKER_SIZE, color=OKABE_ITO[i % 7],
                   marker="s" if row["baseline"] else "o", edgecolor="black", linewidth=0.5, zorder=3)
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.1)
    ax.set_xlabel("mean fit time per fold (seconds, log scale)")
    ax.set_ylabel(metric_label(metric))
    ax.set_title("Accuracy against training time (squares = baselines)", fontsize=10)
    _place_labels(fig, ax, stats[["fit_s", "value"]].to_numpy(), list(stats.index))
    return fig


def _curve_limits(curves: list[np.ndarray]) -> tuple[float, float]:
    """y-limits of per-epoch curves that a first-epoch outlier does not flatten: the range of
    every value after each curve's first epoch, widened to take in a first epoch lying within
    half that range of it (padded 5%); a first epoch further out stays off the scale."""
    rest = np.concatenate([c[1:] for c in curves])
    rest = rest[np.isfinite(rest)]
    if rest.size == 0:  # one epoch each: nothing to ignore
        rest = np.concatenate(curves)
        rest = rest[np.isfinite(rest)]
    lo, hi = float(rest.min()), float(rest.max())
    span = hi - lo or max(abs(hi), 1.0) * 0.05
    first = np.array([c[0] for c in curves], dtype=float)
    near = first[np.isfinite(first) & (first >= lo - span / 2) & (first <= hi + span / 2)]
    lo, hi = min([lo, *near]), max([hi, *near])
    pad = (hi - lo or span) * 0.05
    return lo - pad, hi + pad


def _curve(ax, epochs, values, limits, *, color, note: bool = True, **style) -> None:
    """One learning curve; its points outside ``limits`` become triangles on the edge, labelled
    with their value when ``note``."""
    lo, hi = limits
    ax.plot(epochs, values, color=color, **style)
    for epoch, v in zip(epochs, values):
        if lo <= v <= hi or not np.isfinite(v):
            continue
        edge, up = (hi, True) if v > hi else (lo, False)
        ax.plot([epoch], [edge], marker="^" if up else "v", markersize=7, color=color, clip_on=False,
                linestyle="none", zorder=4)
        if note:
            ax.annotate(f"epoch {epoch:g}: {v:.4g}", (epoch, edge), xytext=(6, -3 if up else 3),
                        textcoords="offset points", fontsize=7.5, va="top" if up else "bottom", color=color)


def convergence_chart(histories: dict, key: str | None = None):
    """Per-epoch curves of each model's learning-curve fit (``history_``): ``key`` such as ``val_rmse``.

    The y-limits come from :func:`_curve_limits`: a first epoch far above (or below) the rest
    is drawn as a triangle on the edge, labelled with its value, instead of squashing the curves.
    """
    usable = {m: pd.DataFrame(h) for m, h in histories.items() if len(h) > 1}
    if key is None:
        cols = {c for h in usable.values() for c in h.columns}
        preferred = ["val_rmse", "val_ndcg", "train_loss"]
        key = next((c for c in preferred if c in cols), "train_loss")
    usable = {m: h.dropna(subset=[key]) for m, h in usable.items() if key in h.columns}
    usable = {m: h for m, h in usable.items() if len(h) > 1}
    if not usable:
        raise DataError(f"no model recorded {key!r} over more than one epoch")
    fig, ax = _figure(7.0, 4.2)
    lo, hi = _curve_limits([h[key].to_numpy(dtype=float) for h in usable.values()])
    for i, (name, h) in enumerate(usable.items()):
        _curve(ax, h["epoch"], h[key], (lo, hi), color=OKABE_ITO[i % 7], label=name, linewidth=1.6,
               marker="o", markersize=3)
    ax.set_ylim(lo, hi)
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
    limits = _curve_limits([part.loc[part["setting"] == s, "value"].to_numpy(dtype=float) for s in settings])
    for s in settings:
        h = part[part["setting"] == s]
        if s == best:
            continue
        _curve(ax, h["epoch"], h["value"], limits, color=OKABE_ITO[4], note=False, alpha=0.55, linewidth=1.0)
    h = part[part["setting"] == best]
    label = ", ".join(f"{p}={res.loc[best, p]}" for p in result.param_names)
    _curve(ax, h["epoch"], h["value"], limits, color=OKABE_ITO[3], linewidth=2.6, marker="o", markersize=3,
           label=f"best: {label}")
    ax.set_ylim(*limits)
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
        _plain_log_ticks(ax)
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
