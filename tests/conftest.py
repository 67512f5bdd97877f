"""Shared fixtures: synthetic data by default, real MovieLens from the data home when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import latentrec as lr

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def data_home() -> Path | None:
    """LATENTREC_DATA_HOME, else ../shared/datasets beside the checkout, else None."""
    env = os.environ.get("LATENTREC_DATA_HOME")
    if env:
        return Path(env)
    return _SHARED if _SHARED.is_dir() else None


def require_dataset(folder: str) -> Path:
    """The path of a MovieLens folder in the data home, or skip the test saying what is missing."""
    home = data_home()
    if home is None:
        pytest.skip("real-data test: set LATENTREC_DATA_HOME to a folder holding the MovieLens files "
                    "(../shared/datasets here)")
    path = home / folder
    if not path.is_dir():
        pytest.skip(f"real-data test: {path} is absent")
    return path


@pytest.fixture(scope="session")
def ratings():
    """A small explicit set with a planted rank-5 structure (500 users x 300 items, 20k ratings)."""
    return lr.synthetic_ratings(random_state=0)


@pytest.fixture(scope="session")
def implicit_data():
    """A small implicit set with a planted rank-5 structure."""
    return lr.synthetic_implicit(random_state=0)


_EXPECTED = Path(__file__).resolve().parents[1] / "benchmarks" / "expected_figures.json"


def readme_figure(figure_set: str, table: str, model: str, column: str, metric: str,
                  library: str = "latentrec") -> tuple[float, float]:
    """A README figure pinned in benchmarks/expected_figures.json and its tolerance (benchmarks/figures.py)."""
    import json
    import sys

    sys.path.insert(0, str(_EXPECTED.parent))
    import figures

    doc = json.loads(_EXPECTED.read_text())
    for f in doc[figure_set]["figures"]:
        if (f["table"], f["library"], f["model"], f["column"], f["metric"]) == (table, library, model, column, metric):
            return f["value"], figures.TOLERANCE[figures.metric_of(f)]
    raise KeyError(f"no README figure {figure_set}/{table}/{library}/{model}/{column}/{metric} in {_EXPECTED}")
