"""facebench: the shared vocabulary (labels, pose, captures, datasets, metrics, reports, the Hub).

These modules import no wing (generators, baselines, leaderboard); the app floor in ``facebench.app``
is the one room above everything. See docs/architecture.md.
"""
