"""Small shared helpers: random state, thread control, numba's cache folder, progress bars, atomic writes,
close-match suggestions."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

RandomState = "int | np.random.Generator | None"


def did_you_mean(name: str, choices) -> str:
    """``" (did you mean 'x'?)"`` when ``name`` is close to one of ``choices`` (``_`` read as ``-``), else ``""``."""
    import difflib

    choices = [str(c) for c in choices]
    key = str(name).strip().lower().replace("_", "-")
    hits = [c for c in choices if c.lower() == key]
    hits = hits or difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    return f" (did you mean {hits[0]!r}?)" if hits else ""


def is_seed(value) -> bool:
    """What :func:`check_random_state` accepts: None, an int (not a bool), a Generator or a RandomState."""
    return (value is None or isinstance(value, (np.random.Generator, np.random.RandomState))
            or (isinstance(value, (int, np.integer)) and not isinstance(value, bool)))


def check_random_state(random_state) -> np.random.Generator:
    """Resolve ``random_state`` (int, Generator or None) into a Generator, never global state."""
    if not is_seed(random_state):
        raise TypeError(f"random_state must be an int, a numpy Generator or None, got {random_state!r}")
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    return np.random.default_rng(random_state)


def seed_from(rng: np.random.Generator) -> int:
    """Draw one 31-bit seed for a numba kernel from a Generator."""
    return int(rng.integers(0, 2**31 - 1))


def resolve_threads(n_threads: int | None) -> int:
    """``n_threads`` 0 or None means all cores numba may use."""
    import numba

    max_threads = numba.config.NUMBA_NUM_THREADS
    if not n_threads:
        return max_threads
    return max(1, min(int(n_threads), max_threads))


def balanced_bounds(costs, n_chunks) -> np.ndarray:
    """Boundaries cutting a sequence of per-row ``costs`` into ``n_chunks`` runs of ~equal total cost."""
    total = np.cumsum(costs, dtype=np.float64)
    if len(total) == 0:
        return np.zeros(2, dtype=np.int64)
    targets = total[-1] * np.arange(1, n_chunks, dtype=np.float64) / n_chunks
    inner = np.searchsorted(total, targets, side="left") + 1
    return np.unique(np.r_[0, np.minimum(inner, len(total)), len(total)]).astype(np.int64)


_BLAS_CONTROLLER = None


@contextlib.contextmanager
def kernel_threads(n_threads: int | None) -> Iterator[int]:
    """Run numba kernels on ``n_threads`` threads with BLAS held to one thread.

    Parallel numba kernels and a multi-threaded BLAS would otherwise oversubscribe
    the cores. The threadpoolctl controller is built once (after SciPy's BLAS is
    loaded) and reused: ``threadpool_limits`` rescans the loaded libraries on every
    call (3-30 ms), which would dominate a single-user ``recommend`` or a short epoch.
    """
    global _BLAS_CONTROLLER
    import numba

    if _BLAS_CONTROLLER is None:
        import scipy.linalg  # noqa: F401 - load SciPy's BLAS before the scan
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    n = resolve_threads(n_threads)
    previous = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        with _BLAS_CONTROLLER.limit(limits=1, user_api="blas"):
            yield n
    finally:
        numba.set_num_threads(previous)


def _writable_dir(path: Path) -> bool:
    """Whether ``path`` is (or can be made) a folder this process can create files in."""
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def _private_dir(path: Path) -> bool:
    """Whether ``path`` is a real folder owned by this user that nobody else may write to
    (numba's cache holds compiled code: a folder another user controls must not be reused)."""
    import stat

    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return False
    owner_ok = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    return stat.S_ISDIR(st.st_mode) and owner_ok and not st.st_mode & 0o022 and _writable_dir(path)


def ensure_numba_cache(kernels_dir: str | os.PathLike) -> str | None:
    """Give numba a writable on-disk cache for the kernels in ``kernels_dir``.

    numba caches next to the source (``__pycache__``) or in the user's cache
    folder (``~/.cache/numba``); when neither is writable (a read-only install
    run by a user without a writable home) and ``NUMBA_CACHE_DIR`` is unset,
    every ``cache=True`` kernel fails at import with "cannot cache function".
    Then the cache goes to a private per-user folder in the temporary
    directory (``latentrec-numba-<uid>``), or to a fresh temporary folder for
    this process when that one is not private. Returns the folder chosen, or
    None when numba's own locations work (or the user set ``NUMBA_CACHE_DIR``).
    Called once, by ``latentrec.models.kernels`` before any kernel is compiled.
    """
    from numba.core import config

    if config.CACHE_DIR or _writable_dir(Path(kernels_dir) / "__pycache__"):
        return None
    try:
        from numba.misc.appdirs import AppDirs

        if _writable_dir(Path(AppDirs(appname="numba", appauthor=False).user_cache_dir)):
            return None
    except Exception:  # noqa: BLE001 - numba's own lookup failing is one more reason to fall back
        pass
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    shared = Path(tempfile.gettempdir()) / f"latentrec-numba-{uid}"
    folder = str(shared) if _private_dir(shared) else tempfile.mkdtemp(prefix="latentrec-numba-")
    config.CACHE_DIR = folder
    return folder


def progress(iterable: Iterable, *, total: int | None = None, desc: str = "", enabled: bool | None = None):
    """A tqdm progress bar that only shows on a terminal and when not silenced.

    ``LATENTREC_QUIET=1`` in the environment silences every bar (the CLI's ``--quiet``);
    ``LATENTREC_VERBOSE=1`` shows them on any stderr (``--verbose``).
    """
    if enabled is None:
        enabled = not os.environ.get("LATENTREC_QUIET") and (sys.stderr.isatty()
                                                             or bool(os.environ.get("LATENTREC_VERBOSE")))
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; saved models and reports are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
