"""Why a submission was turned away: one line each, saying what to fix (FacebenchError: exit 2)."""

from __future__ import annotations

from facebench.errors import FacebenchError


class SubmissionRejected(FacebenchError):
    """A submission failed validation; the host records the same message on the request."""


class InvalidSubmission(SubmissionRejected):
    """Metadata or file format is wrong (unknown format, bad name/contact, unreadable file)."""


class UnsafeArchive(SubmissionRejected):
    """An archive tries something hostile: path traversal, links, too many entries, a zip bomb."""


class PickleRefused(SubmissionRejected):
    """A pickle (or torch.save) file: loading one can run arbitrary code, so it is never opened."""


class InvalidPredictions(SubmissionRejected):
    """A predicted mask has the wrong size, is not a single-channel PNG, or holds illegal ids."""


class MissingIds(InvalidPredictions):
    """Predictions are missing for some hidden-split ids, or name ids that are not in it."""


class DuplicateSubmission(SubmissionRejected):
    """The same predictions (by sha256) were already submitted."""


class RateLimited(SubmissionRejected):
    """The submitter has used up their submissions for the current window."""


class StoreError(FacebenchError):
    """A store cannot be used: bad key, lock timeout, unsupported location."""


class StoreConflict(StoreError):
    """An optimistic store (a Hub repo) moved on under a locked block; ``store.locked`` runs the block again."""
