"""Every third-party package the library imports is declared in pyproject.toml (core or an extra)."""

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return {re.split(r"[ <>=!~;\[]", s, maxsplit=1)[0].lower().replace("_", "-") for s in specs}


def _imported() -> set[str]:
    names = set()
    for path in (ROOT / "src" / "latentrec").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("latentrec", "__future__")}


def test_every_imported_package_is_declared():
    dists = md.packages_distributions()
    declared = _declared()
    missing = {}
    for name in _imported():
        owners = {d.lower().replace("_", "-") for d in dists.get(name, [name])}
        if not owners & declared:
            missing[name] = sorted(owners)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
