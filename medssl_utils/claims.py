"""The paper's conclusions as checkable claims: each is tested on the paper's own published numbers and
on this run's results, and gets a verdict computed from the numbers (never typed in).

Verdicts: "supported", "direction only (not significant)", "not supported", "not testable here".
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from . import report

SUPPORTED, DIRECTION, NOT_SUPPORTED, UNTESTABLE = ("supported", "direction only (not significant)",
                                                   "not supported", "not testable here")


@dataclass
class Claim:
    key: str
    section: str
    statement: str
    paper: str        # what the paper's own published numbers show
    this_run: str     # what this run shows
    verdict: str      # for this run

    def as_row(self) -> dict:
        return asdict(self)


def _wins(fam: pd.DataFrame, a: str, b: str) -> tuple[int, int]:
    t = fam.pivot_table(index="task", columns="family", values="value")
    if a not in t or b not in t:
        return 0, 0
    t = t[[a, b]].dropna()
    return int((t[a] > t[b]).sum()), len(t)


def ssl_beats_supervised(this_fam: pd.DataFrame, paper_fam: pd.DataFrame, tests: pd.DataFrame) -> Claim:
    w, n = _wins(this_fam, "self-supervised", "supervised")
    pw, pn = _wins(paper_fam, "self-supervised", "supervised")
    sig_for, sig_against = report.n_significant(tests, +1), report.n_significant(tests, -1)
    if n == 0:
        verdict = UNTESTABLE
    elif w * 2 <= n or sig_against > sig_for:
        verdict = NOT_SUPPORTED
    elif sig_for > 0:
        verdict = SUPPORTED
    else:
        verdict = DIRECTION
    return Claim("C1", "6 (1); 5.1", "Self-supervised ImageNet models outperform supervised ones on the vast majority "
                 "of medical tasks.", f"SSL mean above supervised mean on {pw} of {pn} tasks (no test reported)",
                 f"SSL mean above supervised on {w} of {n} tasks; {sig_for} significant in favour, {sig_against} "
                 f"against, of {len(tests)} paired tests (Holm)", verdict)


def best_ssl_method(rows: pd.DataFrame, paper_scaled: pd.DataFrame) -> Claim:
    s = report._headline(report.summarise(rows[rows.protocol == "fewshot"]))
    s = s[s.family == "self-supervised"]
    if s.empty or s.group.nunique() < 2:
        return Claim("C2", "5.1, Figure 3", "BYOL transfers best on average among the SSL methods.",
                     _paper_best(paper_scaled), "fewer than two SSL methods in this run", UNTESTABLE)
    s = s.assign(scaled=report.minmax(s, "value", "dataset"))
    means = s.groupby(["group", "group_title", "paper_model"], dropna=False).scaled.mean().sort_values(ascending=False)
    (_, title, pm), top = means.index[0], means.iloc[0]
    verdict = SUPPORTED if pm == "byol" else NOT_SUPPORTED
    return Claim("C2", "5.1, Figure 3", "BYOL transfers best on average among the SSL methods (few-shot).",
                 _paper_best(paper_scaled), f"best mean scaled few-shot score: {title} ({top:.2f})", verdict)


def _paper_best(paper_scaled: pd.DataFrame) -> str:
    if paper_scaled.empty:
        return "no data"
    df = paper_scaled.assign(scaled=report.minmax(paper_scaled, "value", "dataset"))
    m = df.groupby("label").scaled.mean().sort_values(ascending=False)
    return f"best mean scaled few-shot score: {m.index[0]} ({m.iloc[0]:.2f})"


def no_single_best(rows: pd.DataFrame) -> Claim:
    s = report._headline(report.summarise(rows))
    s = s[s.family != "random"]
    if s.empty:
        return Claim("C3", "6 (2)", "No model is best on every dataset.", "", "no results", UNTESTABLE)
    s = s.assign(task=[report.task_label(report.short_title(d), p) for d, p in zip(s.dataset, s.protocol)])
    best = s.loc[s.groupby("task").value.idxmax()]
    k, n = best.group.nunique(), len(best)
    from . import reference

    ref = reference.paper_rows()
    ref = ref[ref.protocol.isin(["fewshot", "linear", "finetune"])]
    ref = ref[[p == "fewshot" or m == report._paper_metric(d) for p, m, d in zip(ref.protocol, ref.metric, ref.dataset)]]
    pb = ref.loc[ref.groupby(["protocol", "dataset"]).value.idxmax()]
    return Claim("C3", "6 (2)", "There is no clear best model across all datasets.",
                 f"{pb.model.nunique()} different models are best on the paper's {len(pb)} tasks",
                 f"{k} different models (recipes) are best on this run's {n} tasks",
                 SUPPORTED if k > 1 else NOT_SUPPORTED)


def domain_specific_tradeoff(this_scaled: pd.DataFrame, paper_scaled: pd.DataFrame, tests: pd.DataFrame) -> Claim:
    def gap(df, domain):
        m = df[df.domain == domain].groupby("family").scaled.mean()
        return m.get("domain-specific", np.nan) - m.get("self-supervised", np.nan)

    gi, go, pgi, pgo = gap(this_scaled, "in"), gap(this_scaled, "out"), gap(paper_scaled, "in"), gap(paper_scaled, "out")
    if np.isnan(gi) or np.isnan(go):
        verdict = UNTESTABLE
    elif gi > 0 and go < 0:
        t = tests.assign(domain=[report.domain_of(d) for d in tests.dataset]) if len(tests) else tests
        sig_in = report.n_significant(t[t.domain == "in"], +1) if len(t) else 0
        sig_out = report.n_significant(t[t.domain == "out"], -1) if len(t) else 0
        verdict = SUPPORTED if (sig_in > 0 and sig_out > 0) else DIRECTION
    else:
        verdict = NOT_SUPPORTED
    return Claim("C5", "6 (3); 5.2", "Domain-specific self-supervised pretraining helps in domain and hurts out of "
                 "domain.", f"scaled gap (domain-specific minus SSL): {pgi:+.2f} in, {pgo:+.2f} out",
                 f"scaled gap: {gi:+.2f} in, {go:+.2f} out", verdict)


def source_accuracy_vs_transfer(points: pd.DataFrame, paper_points: pd.DataFrame) -> Claim:
    """``points``: one row per group with ``source_acc`` and ``transfer`` (mean scaled transfer)."""
    from .analysis.correlation import pearson

    def describe(df):
        if len(df) < 3:
            return None, "fewer than 3 models"
        r, p = pearson(df.source_acc.to_numpy(), df.transfer.to_numpy())
        return (r, p), f"Pearson r = {r:.2f} (p = {p:.3f}, {len(df)} models)"

    this, this_txt = describe(points)
    _, paper_txt = describe(paper_points)
    verdict = UNTESTABLE if this is None else (SUPPORTED if this[1] >= 0.05 else NOT_SUPPORTED)
    return Claim("C4", "6 (2); Figure A4", "Performance on the pretraining source (ImageNet top-1) does not "
                 "predict transfer to medical data.", paper_txt, this_txt + " (source = pretraining-task probe)"
                 if this is not None else this_txt, verdict)


def table(claims: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([c.as_row() for c in claims])


def domain_specific_focus(ad_in: dict, ad_out: dict, paper_in: dict, paper_out: dict) -> Claim:
    """Figure 9: domain-specific models have a narrower focus (lower attentive diffusion) in domain than SSL."""
    def txt(i, o):
        if "domain-specific" not in i or "self-supervised" not in i:
            return None, "no domain-specific or SSL values"
        gi = i["domain-specific"] - i["self-supervised"]
        go = o.get("domain-specific", np.nan) - o.get("self-supervised", np.nan)
        return gi, f"AD domain-specific minus SSL: {gi:+.1f} points in domain, {go:+.1f} out of domain"

    gi, this_txt = txt(ad_in, ad_out)
    _, paper_txt = txt(paper_in, paper_out)
    verdict = UNTESTABLE if gi is None else (DIRECTION if gi < 0 else NOT_SUPPORTED)
    return Claim("C6", "5.3, Figure 9", "Domain-specific models focus on narrower regions (lower attentive "
                 "diffusion) of in-domain images than ImageNet SSL models.", paper_txt,
                 this_txt + " (one image per dataset: no test)", verdict)


def _correlation_counts(corr: pd.DataFrame, source: str, alpha: float) -> tuple[int, int, list[str]]:
    """(significant, tested, what) over correlation rows with at least 3 points from ``source``."""
    p, n = corr[f"p_{source}"], corr[f"n_{source}"]
    tested = corr[(n >= 3) & p.notna()]
    sig = tested[tested[f"p_{source}"] < alpha]
    return len(sig), len(tested), [f"{w} (r = {rr:+.2f})" for w, rr in zip(sig.what, sig[f"r_{source}"])]


def no_correlation_with_transfer(corr: pd.DataFrame, x_protocol: str, key: str, section: str, statement: str,
                                 *, alpha: float = 0.05, exclude: tuple[str, ...] = ()) -> Claim:
    """Conclusions (5) and (7): a representation property does not correlate with few-shot transfer.

    ``corr`` is ``report_q3.correlations_table``; rows of ``x_protocol`` whose ``what`` contains one of
    ``exclude`` (an exception the paper states itself) are left out. Uncorrected p < ``alpha`` counts as a
    correlation, so a few significant pairs among many are expected by chance (alpha x tested); with few models
    per dataset the test has little power, so "no correlation" here is weak evidence and is said so."""
    sub = corr[corr.x_protocol == x_protocol]
    for e in exclude:
        sub = sub[~sub.what.str.contains(e, regex=False)]
    texts = {}
    for source in ("paper_tables", "this_run"):
        k, m, which = _correlation_counts(sub, source, alpha)
        texts[source] = (k, m, f"{k} of {m} dataset-level correlations with p < {alpha}" +
                         (f": {'; '.join(which[:3])}" if which else ""))
    k, m, this_txt = texts["this_run"]
    n_models = int(sub.n_this_run.max()) if len(sub) and sub.n_this_run.notna().any() else 0
    if m == 0:
        verdict = UNTESTABLE
    elif k > max(1, round(alpha * m)):      # more than chance would give
        verdict = NOT_SUPPORTED
    else:
        verdict = SUPPORTED
    return Claim(key, section, statement, texts["paper_tables"][2],
                 this_txt + (f" (at most {n_models} models per dataset: low power)" if m else ""), verdict)
