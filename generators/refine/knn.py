"""kNN smoothing of per-Gaussian labels in 3D: a Gaussian's class should agree with its neighbours'.

Plain 3DGS fits noisy masks too faithfully (REFERENCES.md); averaging class probabilities over each
Gaussian's k nearest neighbours removes isolated wrong labels that multiview consistency alone leaves.
"""

from __future__ import annotations

import torch


def knn_indices(points: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """[N, k] indices of each point's k nearest other points (exact, chunked cdist so memory stays ~chunk·N)."""
    n = points.shape[0]
    k = min(k, n - 1)
    out = torch.empty(n, k, dtype=torch.long)
    for s in range(0, n, chunk):
        d = torch.cdist(points[s : s + chunk], points)
        d[torch.arange(d.shape[0]), torch.arange(s, s + d.shape[0])] = float("inf")
        out[s : s + chunk] = d.topk(k, largest=False).indices
    return out


def smooth_logits(logits: torch.Tensor, points: torch.Tensor, k: int = 8, weight: float = 0.5,
                  iterations: int = 1) -> torch.Tensor:
    """Blend each Gaussian's class distribution with its neighbours' mean; returns log-probabilities."""
    if k <= 0 or weight <= 0 or logits.shape[0] <= 1:
        return logits
    idx = knn_indices(points.detach(), k)
    p = torch.softmax(logits.detach(), dim=1)
    for _ in range(iterations):
        p = (1 - weight) * p + weight * p[idx].mean(1)
    return torch.log(p.clamp_min(1e-8))
