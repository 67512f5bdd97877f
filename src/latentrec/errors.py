"""The small exception family every latentrec error belongs to.

Every message names the file, line, column or parameter at fault and what was
expected, so a user can act on it without reading a traceback.
"""

from __future__ import annotations


class LatentrecError(Exception):
    """Base class of every error latentrec raises on purpose."""


class DataError(LatentrecError, ValueError):
    """Input data is malformed: a missing column, a bad value, a bad file."""


class DownloadError(LatentrecError, OSError):
    """A dataset could not be fetched, verified or unpacked."""


class ChecksumError(DownloadError):
    """A downloaded or cached file does not match its published checksum."""


class ModelError(LatentrecError, ValueError):
    """A model was misconfigured, diverged, or was asked something it cannot do."""


class UnknownIdError(ModelError, KeyError):
    """A user or item id is not known to the fitted model."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class PersistError(LatentrecError, OSError):
    """A saved model directory is missing, corrupted or of an unknown version."""


class MissingDependencyError(LatentrecError, ImportError):
    """An optional dependency (an extra such as ``[neural]``) is not installed."""


class LatentrecWarning(UserWarning):
    """Warnings latentrec emits (unknown ids counted, data oddities)."""


def require(module: str, extra: str, feature: str):
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised by tests with a fake import
        raise MissingDependencyError(
            f"{feature} needs the optional dependency {module!r}, which is not installed; "
            f"install it with: pip install 'latentrec[{extra}]'"
        ) from exc


def show(value) -> str:
    """repr() for messages: numpy scalars shown as plain Python values (1, not np.int64(1))."""
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy":
        try:
            value = item()
        except (TypeError, ValueError):
            pass
    return repr(value)


#: the most characters of a field any message quotes
MAX_QUOTED = 80


def clip(value, limit: int = MAX_QUOTED) -> str:
    """:func:`show` of ``value`` cut to ``limit`` characters (``...`` and the length when cut), for messages."""
    text = value if isinstance(value, str) else None
    if text is not None and len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text):,} characters)"
    out = show(value)
    return out if len(out) <= limit + 2 else out[:limit] + f"... ({len(out):,} characters)"
