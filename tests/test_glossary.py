"""The glossary names every hyper-parameter of every registered model (docs and code cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from latentrec import registry

GLOSSARY = Path(__file__).resolve().parents[1] / "docs" / "glossary.md"


def documented() -> set[str]:
    return set(re.findall(r"`([A-Za-z_0-9]+)`", GLOSSARY.read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", registry.names())
def test_every_hyper_parameter_is_in_the_glossary(name):
    if not registry.available(name):
        pytest.skip(f"{name}: its optional extra is not installed")
    params = registry.model_class(name)().get_params(deep=False)
    missing = sorted(set(params) - documented())
    assert not missing, f"{name}: add {missing} to docs/glossary.md"


def test_the_architecture_page_shows_the_real_example_model():
    # issue 13: docs/architecture.md's example model is the file itself, so the two cannot drift
    root = Path(__file__).resolve().parents[1]
    page = (root / "docs" / "architecture.md").read_text(encoding="utf-8")
    source = (root / "src" / "latentrec" / "models" / "factorization" / "puresvd.py").read_text(encoding="utf-8")
    assert f"```python\n{source}```" in page
    body = [ln for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith(('"""', "#"))]
    assert len(body) <= 20, f"the example has grown to {len(body)} lines"
