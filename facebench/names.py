"""Names that become file names: sample ids (``{id}.png`` in predict's and evaluate's folders), view ids and
subjects (folders of generate's work).

Why one rule, checked where the name enters: a dataset row or a capture is untrusted, and a sample id
``../../PWNED`` once passed ``validate`` and made ``facebench predict --out X`` write outside ``X``. A name is
refused before any path is built from it, so no later ``folder / f"{name}.png"`` needs to think about it.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

from facebench.errors import FacebenchError, InvalidDataset

NAME_RULE = "a plain file name: 1-200 bytes, no / or \\, no '..', no control characters"
MAX_BYTES = 200  # with ".png" and a temporary prefix, under the 255 bytes most filesystems allow
_FORBIDDEN = ("Cc", "Cs", "Zl", "Zp")  # control characters, lone surrogates, line and paragraph separators


def is_plain_name(value: Any) -> bool:
    """True for a non-empty string that is safe as one path component on any filesystem we write to."""
    if not isinstance(value, str) or not value or ".." in value or "/" in value or "\\" in value:
        return False
    if len(value.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return False
    return not any(unicodedata.category(c) in _FORBIDDEN for c in value)


def check_name(value: Any, what: str = "sample id", where: str | Path | None = None,
               error: type[FacebenchError] = InvalidDataset) -> str:
    """``value`` if ``is_plain_name``, else one line (``error``) quoting it and naming ``where``."""
    if not is_plain_name(value):
        raise error(f"{what} {value!r} is not {NAME_RULE}", where)
    return value
