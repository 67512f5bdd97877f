"""latentrec._threads: the OpenMP wait policy is set before any runtime loads, and only by default.

Each case runs in a fresh interpreter (the policy is read once per process, when
libgomp loads) with OMP_DISPLAY_ENV=VERBOSE, so GNU OpenMP itself prints the spin
count it initialised with: 0 is passive, 300000 the unset default, 3e10 ACTIVE.
No timing.
"""

import os
import re
import subprocess
import sys

import pytest

LOAD_NUMBA_OMP = """
import latentrec
from latentrec.models import BiasedMF
import numba
BiasedMF(n_epochs=1, n_threads=2).fit(latentrec.synthetic_ratings(n_users=50, n_items=20, n_ratings=500,
                                                                   random_state=0))
print("layer", numba.threading_layer())
"""


def _run(code: str, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    environ.update(env, OMP_DISPLAY_ENV="VERBOSE")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=environ)
    assert out.returncode == 0, out.stderr
    return out


def _spin_counts(stderr: str) -> list[str]:
    """GOMP_SPINCOUNT of every GNU OpenMP runtime that initialised, in load order."""
    return re.findall(r"GOMP_SPINCOUNT = '(\d+)'", stderr)


def test_import_sets_passive_for_numba_omp_layer():
    out = _run(LOAD_NUMBA_OMP)
    counts = _spin_counts(out.stderr)
    if "layer omp" not in out.stdout:
        pytest.skip(f"numba chose another threading layer: {out.stdout.strip()}")
    assert counts and set(counts) == {"0"}, out.stderr


def test_import_sets_passive_for_torch():
    pytest.importorskip("torch")
    out = _run("import os, latentrec, torch; torch.ones(4).sum(); print(os.environ['OMP_WAIT_POLICY'])")
    assert out.stdout.split() == ["PASSIVE"]
    assert _spin_counts(out.stderr)[:1] == ["0"], out.stderr


def test_user_wait_policy_is_kept():
    out = _run(LOAD_NUMBA_OMP + "import os; print(os.environ['OMP_WAIT_POLICY'])", OMP_WAIT_POLICY="ACTIVE")
    assert out.stdout.split()[-1] == "ACTIVE"
    if "layer omp" in out.stdout:
        assert set(_spin_counts(out.stderr)) == {"30000000000"}, out.stderr


def test_runtime_loaded_before_latentrec_is_reported():
    pytest.importorskip("torch")
    code = ("import torch, latentrec\n"
            "from latentrec import _threads\n"
            "print(_threads.LOADED_BEFORE, _threads.late_warning() is not None)\n")
    out = _run(code)
    assert out.stdout.strip() == "('torch',) True"
    assert _spin_counts(out.stderr)[:1] == ["300000"]  # torch's libgomp started spinning: too late to change
    # the user's own choice silences it
    assert _run(code, OMP_WAIT_POLICY="PASSIVE").stdout.strip() == "('torch',) False"


def test_neural_fit_warns_when_the_policy_came_too_late():
    pytest.importorskip("torch")
    code = ("import torch, warnings, latentrec\n"
            "from latentrec.models.neural import BiasedDotProduct\n"
            "data = latentrec.synthetic_ratings(n_users=30, n_items=20, n_ratings=300, random_state=0)\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    BiasedDotProduct(n_epochs=1, device='cpu').fit(data)\n"
            "print(sum('OMP_WAIT_POLICY' in str(x.message) for x in w))\n")
    assert _run(code).stdout.strip() == "1"
    assert _run(code.replace("import torch, warnings, latentrec", "import latentrec, torch, warnings"))\
        .stdout.strip() == "0"
