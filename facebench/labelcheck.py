"""Does a confusion matrix look like predictions written in another label order than the declared one?

A parser's label order is declared (``--labels``), never guessed; but a wrong declaration gives a silently
low score (ground truth in CelebAMask-HQ's order, where nose is 2, scored 0.17 mean F1 as facebench's). So
after scoring, each known order O is tried as the explanation: had the masks been written in O and read in
the declared order, the pixels of each true class t would land on one predictable column. If, over the
classes where O and the declared order disagree, most of the mass lands where O says and little lands on
the diagonal, the report names O.
"""

from __future__ import annotations

import numpy as np

from facebench.labels import IGNORE, ORDERS, LabelSet, canonical_name

MIN_SHARE = 0.5  # of the disagreeing classes' truth pixels, landing where the other order puts them
MIN_RATIO = 2.0  # ... and this many times more than land on the diagonal


def expected_columns(truth: LabelSet, written_in: LabelSet, read_as: LabelSet) -> np.ndarray:
    """For each truth class: the column its pixels land in if masks written in ``written_in`` are read as
    ``read_as`` and remapped by name into ``truth`` (-1 where that cannot happen)."""
    out = np.full(truth.num_classes, -1)
    read_to_truth = truth.lut_from(read_as)
    for t, name in enumerate(truth.names):
        try:
            k = written_in.index(canonical_name(name))
        except (KeyError, ValueError):
            continue
        if k < read_as.num_classes and read_to_truth[k] != IGNORE:
            out[t] = read_to_truth[k]
    return out


def suspected_order(cm: np.ndarray, truth: LabelSet, declared: LabelSet) -> str | None:
    """One line naming the label order the predictions look written in, or None. ``cm``: rows truth,
    columns prediction, in ``truth``'s ids, after the declared order was remapped by name."""
    by_names: dict[tuple[str, ...], list[str]] = {}
    for key, ls in ORDERS.items():
        by_names.setdefault(tuple(canonical_name(n) for n in ls.names), []).append(key)
    declared_names = tuple(canonical_name(n) for n in declared.names)
    best = None
    for names, keys in by_names.items():
        if names == declared_names:
            continue
        cols = expected_columns(truth, ORDERS[keys[0]], declared)
        rows = [t for t in range(truth.num_classes) if cols[t] >= 0 and cols[t] != t and cm[t].sum() > 0]
        total = sum(cm[t].sum() for t in rows)
        if not total:
            continue
        share = sum(cm[t, cols[t]] for t in rows) / total
        diagonal = sum(cm[t, t] for t in rows) / total
        if share >= MIN_SHARE and share >= MIN_RATIO * diagonal and (best is None or share > best[0]):
            t = max(rows, key=lambda r: cm[r].sum())
            best = (share, keys, t, cols[t])
    if best is None:
        return None
    share, keys, t, col = best
    name = keys[0]  # the order's own name first (ORDERS lists the known sets before their aliases)
    also = f" (same as {', '.join(keys[1:])})" if len(keys) > 1 else ""
    return (f"the predictions look written in the {name} label order{also}, not {declared.name}: "
            f"{100 * share:.0f}% of the pixels of the classes the two orders number differently land where "
            f"{name} puts them (truth {truth.names[t]} is mostly predicted as {truth.names[col]}); "
            f"if so, pass --labels {name}")
