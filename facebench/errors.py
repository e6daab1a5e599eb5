"""User-facing errors.

Every mistake a user can make (a wrong path, a bad mask, a malformed dataset) raises a
``FacebenchError``. The CLI prints its message as one line and exits with code 2;
anything else that escapes is our bug and keeps its traceback.
"""

from __future__ import annotations

import re
from pathlib import Path


class FacebenchError(Exception):
    """A mistake in the user's input: printed as one line, exit code 2."""

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None, hint: str | None = None):
        self.path = None if path is None else Path(path)
        self.hint = hint
        parts = [f"{path}: {message}" if path is not None else message]
        if hint:
            parts.append(f"({hint})")
        super().__init__(" ".join(parts))


class InputNotFound(FacebenchError):
    """A path the user named does not exist."""


class InvalidMask(FacebenchError):
    """A label map has the wrong size, dtype or illegal class values."""


class InvalidImage(FacebenchError):
    """An image file (or image bytes in a dataset) cannot be decoded."""


class InvalidDataset(FacebenchError):
    """A folder is not in the facebench dataset layout."""


class MissingPredictions(FacebenchError):
    """Predictions are missing for some sample ids."""


class InvalidCapture(FacebenchError):
    """A multiview capture (transforms.json / COLMAP model) is malformed."""


class InvalidConfig(FacebenchError):
    """An option or config value is out of range or inconsistent."""


class BackendUnavailable(FacebenchError):
    """A compute backend was forced but cannot run on this machine."""


class CheckpointError(FacebenchError):
    """A checkpoint is missing, tampered with, or not in safetensors + JSON form."""


def require_exists(path: str | Path, what: str = "path") -> Path:
    """Return ``path`` as a Path, or raise InputNotFound naming it."""
    p = Path(path)
    if not p.exists():
        raise InputNotFound(f"{what} does not exist", p)
    return p


def run_with_one_line_errors(app) -> None:
    """Run a CLI app; a FacebenchError or a usage mistake (missing argument, bad option value, unknown
    command) becomes one line on stderr and exit code 2, not a traceback or a framed usage box."""
    import sys

    import typer

    try:
        code = app(standalone_mode=False)  # the framework returns here instead of printing and exiting itself
    except FacebenchError as e:
        print(f"error: {one_line(str(e))}", file=sys.stderr)
        sys.exit(e.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except typer.TyperException as e:  # typer's (vendored click) usage errors: UsageError, BadParameter, …
        ctx = getattr(e, "ctx", None)
        where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        if message:  # none when the help was shown because no arguments were given
            print(f"error: {one_line(message)}{where}", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


def one_line(text: str) -> str:
    """``text`` with every line break (those ``str.splitlines`` knows) shown as an escape: a message quotes user
    data (a file name, a sample id) that may hold one, and the promise is one line."""
    return _LINE_BREAKS.sub(lambda m: repr(m.group())[1:-1], text)


_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
