"""The README's accuracy tables are generated from the pinned figures, and re-measurements are held to them."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import figures  # noqa: E402


@pytest.fixture(scope="module")
def expected():
    doc = figures.load(figures.EXPECTED)
    assert doc, f"{figures.EXPECTED} is missing or empty"
    return doc


def test_readme_tables_are_exactly_the_rendered_expected_figures(expected):
    text = figures.README.read_text()
    assert "<!-- figures:" in text
    assert figures.rewrite_readme(text, expected) == text, (
        "README tables differ from benchmarks/expected_figures.json: run `python benchmarks/figures.py readme`")


def test_every_readme_block_and_figure_set_is_known(expected):
    text = figures.README.read_text()
    names = [chunk.split("-->")[0].strip() for chunk in text.split("<!-- figures:")[1:]]
    assert names and set(names) <= set(figures.BLOCKS)
    for name, doc in expected.items():
        assert name in figures.SOURCES, f"figure set {name!r} has no benchmark command"
        assert doc["figures"], name
        for f in doc["figures"]:
            assert set(f) == {"table", "library", "model", "column", "metric", "value"}, f


def test_check_flags_a_figure_that_moved_beyond_its_tolerance(expected):
    name = next(iter(expected))
    measured = copy.deepcopy(expected)
    assert figures.compare(measured, expected) == []
    fig = next(f for f in measured[name]["figures"] if figures.metric_of(f) in figures.TOLERANCE)
    tol = figures.TOLERANCE[figures.metric_of(fig)]
    fig["value"] += 0.6 * tol
    assert figures.compare(measured, expected) == []
    fig["value"] += 0.6 * tol
    problems = figures.compare(measured, expected)
    assert len(problems) == 1 and fig["model"] in problems[0] and "expected" in problems[0]
    measured[name]["figures"].remove(fig)
    assert "missing" in figures.compare(measured, expected)[0]
    assert figures.compare({}, expected, only={name}) == [f"{name}: not measured"]


def test_measured_figures_are_within_tolerance_of_the_expected(expected):
    if not figures.MEASURED.is_file():
        pytest.skip(f"no measured figures at {figures.MEASURED}: run `python benchmarks/figures.py measure`")
    measured = figures.load(figures.MEASURED)
    problems = figures.compare(measured, expected, only=set(measured))
    assert not problems, "\n".join(problems)
