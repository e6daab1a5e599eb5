"""A study report folder: CSV tables, ``summary.json``, figures, ``report.md`` and a self-contained ``report.html``.

The Markdown and the HTML are rendered from one list of blocks, so they never disagree.
"""

from __future__ import annotations

import base64
import html
import json
import platform
import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from facebench.files import atomic_write, json_dumps_strict, replace_dir, temp_dir
from facebench.study import figures
from facebench.study.aggregate import StudyResult

PACKAGES = ("facebench", "numpy", "pandas", "scipy", "pingouin", "krippendorff", "choix", "seaborn", "matplotlib")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _f(x: float, nd: int = 2) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "—"
    return f"{x:.{nd}f}"


def _p(p: float) -> str:
    if p is None or np.isnan(p):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _peq(p: float) -> str:
    s = _p(p)
    return s if s.startswith("<") else f"= {s}"


def alpha_words(a: float) -> str:
    """Krippendorff's own thresholds: >= 0.8 reliable, >= 0.667 tentative."""
    if np.isnan(a):
        return "not computable"
    return "reliable" if a >= 0.8 else "tentative" if a >= 0.667 else "unreliable"


def icc_words(v: float) -> str:
    """Koo & Li (2016): < 0.5 poor, 0.5–0.75 moderate, 0.75–0.9 good, > 0.9 excellent."""
    if np.isnan(v):
        return "not computable"
    return "poor" if v < 0.5 else "moderate" if v < 0.75 else "good" if v <= 0.9 else "excellent"


Block = tuple  # ("h2", text) | ("p", text) | ("list", [text]) | ("table", DataFrame) | ("fig", title, path)


def _tables(res: StudyResult) -> dict[str, pd.DataFrame]:
    lv = range(res.scale[0], res.scale[1] + 1)
    mos = res.mos.assign(**{"95% CI": [f"[{_f(a)}, {_f(b)}]" for a, b in zip(res.mos["lo"], res.mos["hi"],
                                                                              strict=True)]})
    mos_cols = ["model", "n", "n_raters", "n_images", "mos", "95% CI", "median", "sd", *[f"n_{v}" for v in lv]]
    bp = res.mos_by_pose
    bp = bp.assign(**{"95% CI": [f"[{_f(a)}, {_f(b)}]" for a, b in zip(bp["lo"], bp["hi"], strict=True)]})
    out = {"mos": mos[mos_cols] if len(mos) else mos,
           "by_pose": bp[["pose_bin", "model", "n", "n_images", "mos", "95% CI", "median"]] if len(bp) else bp}
    if len(res.posthoc):
        ph = res.posthoc.copy()
        ph["p_unc"], ph["p_holm"] = ph["p_unc"].map(_p), ph["p_holm"].map(_p)
        out["posthoc"] = ph
    return out


def blocks(res: StudyResult, figs: dict[str, Path]) -> list[Block]:
    s, ag, fr = res.settings, res.agreement, res.friedman
    kept = res.kept
    lo, hi = res.scale
    b: list[Block] = [("h1", "facebench user-study report")]
    b.append(("list", [
        f"Raw data: `{kept.source}`, sha256 `{res.sha256}`",
        f"Scale: {lo}–{hi} (absolute category rating); models: {', '.join(kept.models) or '—'}",
        f"Raters: {res.n_raters_total} took part, {len(res.excluded)} excluded, "
        f"{res.n_raters_total - len(res.excluded)} kept",
        f"Ratings analysed: {len(kept.ratings)} ratings, {len(kept.pairs)} pairwise choices "
        "(attention checks removed)",
    ]))
    b += [("h2", "Exclusions"), ("p",
          f"An attention check shows a deliberately wrong overlay. It is failed when that overlay is rated "
          f"{s.fail_at_least} or higher, or preferred over a real one. Raters with more than {s.max_failures} "
          f"failed check(s) are excluded from every analysis. Excluded: "
          f"{', '.join(res.excluded) if res.excluded else 'nobody'}.")]
    att = res.attention
    if "median_seconds" in att.columns:
        b.append(("p", f"Median answer time over raters: {_f(float(att['median_seconds'].median()), 1)} s "
                       "(per rater in `median_seconds`; reported, not used for exclusion)."))
    if not att["n_checks"].any():
        b.append(("p", "No attention checks were found in the data, so no rater could be screened."))
    b.append(("table", att if len(att) <= 40 else att[att["n_failed"] > 0]))
    t = _tables(res)
    b += [("h2", "Mean opinion score"), ("p",
           f"MOS per model with a 95% percentile interval from a two-way bootstrap ({s.n_boot} replicates, seed "
           f"{s.seed}) that resamples raters and images independently; n is the number of ratings.")]
    b.append(("table", t["mos"]))
    b += [("fig", k, figs[k]) for k in ("MOS per model", "Rating distribution") if k in figs]
    b += [("h2", "By pose bin"), ("table", t["by_pose"])]
    b += [("fig", k, figs[k]) for k in ("MOS by pose bin",) if k in figs]
    b += [("h2", "Inter-rater agreement"), ("list", [
        f"Krippendorff's alpha ({s.alpha_level}) over {ag.get('n_items', 0)} items: "
        f"{_f(ag.get('krippendorff_alpha', np.nan), 3)} ({alpha_words(ag.get('krippendorff_alpha', np.nan))}; "
        ">= 0.8 reliable, >= 0.667 tentative)",
        f"ICC(A,1), two-way random, absolute agreement, single rater: {_f(ag.get('icc_a1', np.nan), 3)} "
        f"[{_f(ag.get('icc_a1_lo', np.nan))}, {_f(ag.get('icc_a1_hi', np.nan))}] "
        f"({icc_words(ag.get('icc_a1', np.nan))})",
        f"ICC(A,k), mean of {ag.get('n_raters', 0)} raters: {_f(ag.get('icc_ak', np.nan), 3)} "
        f"[{_f(ag.get('icc_ak_lo', np.nan))}, {_f(ag.get('icc_ak_hi', np.nan))}] "
        f"({icc_words(ag.get('icc_ak', np.nan))}; over {ag.get('icc_n_items', 0)} items rated by every kept rater)",
    ])]
    b += [("h2", "Comparing models")]
    if fr and fr.get("k", 0) >= 2 and not np.isnan(fr.get("Q", np.nan)):
        b.append(("p", f"Friedman test over {fr['n_blocks']} images (blocks; each cell is the mean rating over "
                       f"raters): Q = {_f(fr['Q'])}, df = {fr['dof']}, p {_peq(fr['p'])}, Kendall's W = "
                       f"{_f(fr['kendall_w'])}. Post-hoc: Wilcoxon signed-rank tests on the same image means, "
                       "Holm-corrected; effect sizes are the matched-pairs rank-biserial correlation (rbc) and the "
                       "common-language effect size (cles); mean_diff = a − b."))
        if "posthoc" in t:
            b.append(("table", t["posthoc"]))
        if len(res.friedman_by_pose):
            fb = res.friedman_by_pose.copy()
            fb["p"] = fb["p"].map(_p)
            b += [("p", "Friedman test within each pose bin (uncorrected):"),
                  ("table", fb[["pose_bin", "n_blocks", "k", "Q", "p", "kendall_w"]])]
    else:
        b.append(("p", "Not enough models or complete images for a comparison."))
    if len(res.bradley_terry):
        b += [("h2", "Pairwise preferences"), ("p",
               "Bradley–Terry log-strengths (mean 0, choix ILSR with a 0.01 ridge) with 95% intervals from "
               "resampling raters; p_win_vs_rest is the mean modelled chance of beating each other model."),
              ("table", res.bradley_terry),
              ("p", "Share of comparisons won by a over b, with Wilson 95% intervals and a two-sided binomial test:"),
              ("table", res.preferences.assign(p_binom=res.preferences["p_binom"].map(_p)))]
        b += [("fig", k, figs[k]) for k in ("Bradley–Terry scores",) if k in figs]
    b += [("h2", "Provenance"), ("list", [f"{k}: {v}" for k, v in versions().items()] +
          [f"settings: {json.dumps(asdict(s))}", f"created: {datetime.now(UTC).isoformat(timespec='seconds')}"])]
    b.append(("p", "Reporting follows ITU-T P.800.2: n, the scale, the exclusion rule, intervals and effect sizes."))
    return b


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    fmt = [[_f(v, 3) if isinstance(v, float) else str(v) for v in row] for row in df.itertuples(index=False)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in fmt])


def to_markdown(bs: list[Block], out: Path) -> str:
    parts = []
    for blk in bs:
        kind = blk[0]
        if kind == "h1":
            parts.append(f"# {blk[1]}")
        elif kind == "h2":
            parts.append(f"## {blk[1]}")
        elif kind == "p":
            parts.append(blk[1])
        elif kind == "list":
            parts.append("\n".join(f"- {x}" for x in blk[1]))
        elif kind == "table":
            parts.append(_md_table(blk[1]))
        elif kind == "fig":
            parts.append(f"![{blk[1]}]({blk[2].relative_to(out).as_posix()})")
    return "\n\n".join(parts) + "\n"


def _inline(text: str) -> str:
    """Escape, then turn `code` spans into <code>."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


def to_html(bs: list[Block]) -> str:
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right}th{background:#f3f3f3}img{max-width:100%}figure{margin:1em 0}code{font-size:.9em}")
    parts = []
    for blk in bs:
        kind = blk[0]
        if kind in ("h1", "h2"):
            parts.append(f"<{kind}>{html.escape(blk[1])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{_inline(blk[1])}</p>")
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in blk[1]) + "</ul>")
        elif kind == "table":
            parts.append(blk[1].to_html(index=False, float_format=lambda v: _f(v, 3), na_rep="—", border=0))
        elif kind == "fig":
            data = base64.b64encode(blk[2].read_bytes()).decode()
            parts.append(f'<figure><img alt="{html.escape(blk[1])}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{html.escape(blk[1])}</figcaption></figure>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>facebench user-study report</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def write_report(res: StudyResult, out: str | Path) -> Path:
    """Write every table and figure, then report.md and report.html, as the folder ``out`` (built in a temporary
    sibling and swapped in whole: a kill leaves the old report or the new one); returns the folder."""
    out = Path(out)
    tmp = temp_dir(out.parent, f".{out.name}.tmp-")
    try:
        _write_into(res, tmp)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_into(res: StudyResult, out: Path) -> None:
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    tables = {"mos.csv": res.mos, "mos_by_pose.csv": res.mos_by_pose, "posthoc.csv": res.posthoc,
              "attention.csv": res.attention, "bradley_terry.csv": res.bradley_terry,
              "preferences.csv": res.preferences, "friedman_by_pose.csv": res.friedman_by_pose}
    for name, df in tables.items():
        atomic_write(out / name, df.to_csv(index=False).encode())
    figs: dict[str, Path] = {}
    if len(res.mos):
        figs["MOS per model"] = figures.mos_bars(res.mos, res.scale, fig_dir / "mos.png")
        figs["Rating distribution"] = figures.distribution(res.mos, res.scale, fig_dir / "distribution.png")
        figs["MOS by pose bin"] = figures.mos_by_pose(res.mos_by_pose, res.scale, fig_dir / "mos_by_pose.png")
    if len(res.bradley_terry):
        figs["Bradley–Terry scores"] = figures.bradley_terry(res.bradley_terry, fig_dir / "bradley_terry.png")
    summary = {"sha256": res.sha256, "source": str(res.kept.source), "scale": res.scale, "excluded": res.excluded,
               "n_raters_total": res.n_raters_total, "agreement": res.agreement, "friedman": res.friedman,
               "mos": res.mos.to_dict(orient="records"), "posthoc": res.posthoc.to_dict(orient="records"),
               "bradley_terry": res.bradley_terry.to_dict(orient="records"), "settings": asdict(res.settings),
               "versions": versions()}
    atomic_write(out / "summary.json", json_dumps_strict(summary, indent=1, default=float))
    bs = blocks(res, figs)
    atomic_write(out / "report.md", to_markdown(bs, out).encode())
    atomic_write(out / "report.html", to_html(bs).encode())
