"""`facebench reproduce`: the paper's whole loop, measured end to end (issue #8).

Frontal baseline → refined data from K training subjects → four fine-tunes with identical budgets
((a) raw parser masks, (b) refined labels, (c) ground truth of the same views, each mixed with the
baseline's own frontal training data; (b′) refined labels alone, the ablation)
→ every model scored on the held-out test split → one comparison report with the claims judged.

Like ``facebench/app/cli.py`` this package sees every floor (generators, baselines, facebench): it is the
orchestration on top, imported lazily by the CLI. Modules, one idea each: ``scales`` (budgets),
``stages`` (resumable, atomic stage folders), ``variants`` (the training sets and the frontal mix),
``models`` (fine-tune and evaluate), ``compare`` (tables and claims), ``figures``, ``report``, ``run``.
"""
