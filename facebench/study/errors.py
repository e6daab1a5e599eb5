"""Study-specific user errors (one line, exit 2 through the CLI, like every FacebenchError)."""

from __future__ import annotations

from facebench.errors import FacebenchError


class StudyError(FacebenchError):
    """A study folder is missing, incomplete, or built with inconsistent options."""


class InvalidRatings(FacebenchError):
    """A ratings CSV has missing columns, out-of-scale values, duplicates or unknown models."""
