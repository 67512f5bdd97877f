"""numba kernels, one module per family; arrays in, arrays out, no package imports.

Importing this package first makes sure numba has a writable cache folder
(:func:`latentrec._util.ensure_numba_cache`): a read-only install used by a user
without a writable home falls back to a private temporary folder instead of
failing with "cannot cache function".
"""

from ..._util import ensure_numba_cache

ensure_numba_cache(__path__[0])
