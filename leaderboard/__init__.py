"""The facebench leaderboard: submissions scored by the host against hidden labels, and the page.

Flow: ``submit`` validates predictions (or a checkpoint) locally with the very validator the host
runs, then writes a PENDING request into the request store. ``process`` (on the host) re-validates,
scores with ``facebench.evaluate``/``facebench.metrics`` and writes a result; ``build`` renders the
static page and a Markdown table from the results store. Stores sit behind the small ``Store``
interface (local folders now; Hub dataset repos later).
"""
