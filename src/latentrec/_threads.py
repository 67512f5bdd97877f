"""OpenMP settings fixed before any OpenMP runtime loads: imported first by ``latentrec/__init__``.

GNU OpenMP (libgomp, used by torch's intra-op threads and by numba's ``omp``
threading layer; one copy is shared once loaded) reads ``OMP_WAIT_POLICY`` once,
when the library initialises. Unset, an idle thread spins for a while after every
parallel region before it sleeps. torch runs many small parallel operations per
training step, so on a machine with other jobs a spinning thread holds a core
while the thread with the work waits for a time slice: on the shared 2-core box
(load 6-9) a BiasedDotProduct epoch after a numba model was 8x slower spinning than
passive, the numba epoch unchanged (benchmarks/neural_speed.py; docs/neural.md). Setting the variable inside
``fit`` is too late as soon as numba's ``omp`` layer or torch has loaded libgomp.

So importing latentrec sets ``OMP_WAIT_POLICY=PASSIVE`` -- only when the user did
not set it (their own value, ``ACTIVE`` included, is kept) -- and nothing else:
numba's threading layer and every thread count stay as numba and torch choose
(``n_threads`` of each model sets them for its own ``fit``). The one thing this
cannot fix is a runtime loaded before latentrec was imported; :data:`LOADED_BEFORE`
records which, and the neural models warn about it (:func:`late_warning`).
"""

from __future__ import annotations

import os
import sys

#: environment defaults applied at import when the user did not set the variable
DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}

#: modules whose import loads GNU OpenMP; sys.modules is read before the defaults are set
_OPENMP_MODULES = {"torch": "torch", "numba.np.ufunc.omppool": "numba's omp threading layer"}

#: the OpenMP users already loaded when latentrec was imported (the defaults came too late for them)
LOADED_BEFORE = tuple(label for name, label in _OPENMP_MODULES.items() if name in sys.modules)

#: the variables latentrec set (the rest were the user's own)
APPLIED = tuple(name for name in DEFAULTS if name not in os.environ)
os.environ.update({name: DEFAULTS[name] for name in APPLIED})


def late_warning() -> str | None:
    """Why the wait policy may not be in effect (an OpenMP runtime loaded before latentrec, with
    the policy chosen by latentrec and not by the user), or None when it is."""
    if not LOADED_BEFORE or "OMP_WAIT_POLICY" not in APPLIED:
        return None
    return (f"{' and '.join(LOADED_BEFORE)} loaded OpenMP before latentrec was imported, so "
            f"OMP_WAIT_POLICY=PASSIVE came too late: idle OpenMP threads spin between torch's "
            f"operations, which can slow training 10x on a busy machine. Import latentrec first, or "
            f"export OMP_WAIT_POLICY=PASSIVE (or ACTIVE, to keep spinning and silence this) before "
            f"starting Python")
