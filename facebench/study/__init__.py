"""User studies: build a blinded rating kit, serve it to raters on a local page, aggregate the ratings.

Modules, one idea each:

- ``layout``: the study folder on disk (public manifest vs. private key), read and written in one place;
- ``items``: ``build_study``: pick images, render one overlay per model, blind them, add attention checks;
- ``order``: each rater's deterministic task order (seeded by rater id), so a reload resumes where it was;
- ``store``: the SQLite ratings store (atomic, safe under concurrent raters);
- ``server``: the stdlib HTTP server behind ``page.html``;
- ``export``: SQLite + key -> one CSV with model names un-blinded;
- ``ratings``: reading and validating a ratings CSV (one-line errors);
- ``stats``: MOS with two-way bootstrap, agreement, Friedman/Wilcoxon/Holm, Bradley–Terry;
- ``aggregate`` and ``report``: everything above into a report folder.
"""
