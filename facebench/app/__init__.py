"""The app floor: the CLI (``cli.py``) and whole-loop orchestration (``generate.py``, ``reproduce/``).

The only room that imports every wing (generators, baselines, leaderboard) and hands what crosses between
them from one to the other (a parser factory to the refinement, model hooks to the leaderboard). The
vocabulary below (the rest of ``facebench/``) never imports this floor. See docs/architecture.md.
"""
