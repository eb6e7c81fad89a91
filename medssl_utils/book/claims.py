"""The paper's conclusions as checkable claims: each is tested on the paper's own published numbers and
on this run's results, and gets a verdict computed from the numbers (never typed in).

Verdicts: "supported", "direction only (not significant)", "not supported", "not testable here". The paper's
numbers get a verdict by the same rule, but they come without per-episode outcomes, so where a claim needs a
paired test their best verdict is "direction only".
"""
from __future__ import annotations

import json
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
    paper_verdict: str = ""   # the same rule on the paper's published numbers

    def as_row(self) -> dict:
        return asdict(self)


ALPHA = 0.05
# A correlation claim needs this many points: with 3 or 4, only |r| > 0.997 / 0.950 reaches p < 0.05
# (Pearson's t with n - 2 degrees of freedom), so the test cannot tell a null from a strong effect.
MIN_CORRELATION_POINTS = 5
# A task's scores are "at chance" unless the best model's 95% interval clears chance by this many points
# (percent accuracy or AUC): a winner picked among chance-level models is noise, not a best model.
CHANCE_MARGIN = 2.0


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
    return Claim("C1", "6 (1); 5.1, Figure 2", "Self-supervised ImageNet models outperform supervised ones on the vast "
                 "majority of medical tasks.",
                 f"scaled SSL mean above scaled supervised mean (Figure 2) on {pw} of {pn} tasks (no test reported)",
                 f"scaled SSL mean above supervised (Figure 2) on {w} of {n} tasks; {sig_for} significant in favour, "
                 f"{sig_against} "
                 f"against, of {len(tests)} paired tests (Holm)", verdict, _majority_verdict(pw, pn))


def _majority_verdict(wins: int, n: int) -> str:
    """Paper side of a 'most tasks' claim: no outcomes, so at best the direction."""
    return UNTESTABLE if n == 0 else (DIRECTION if wins * 2 > n else NOT_SUPPORTED)


def best_ssl_method(rows: pd.DataFrame, paper_scaled: pd.DataFrame) -> Claim:
    """Figure 3's values: few-shot accuracy scaled per dataset across all models (``report.fewshot_scaled`` /
    ``report.paper_scaled_rows``), then the SSL models' means."""
    paper_txt, paper_verdict = _paper_best(paper_scaled)
    fewshot = rows[rows.protocol == "fewshot"] if len(rows) else rows
    s = report.fewshot_scaled(fewshot) if len(fewshot) else pd.DataFrame(columns=["family", "group"])
    s = s[s.family == "self-supervised"]
    if s.empty or s.group.nunique() < 2:
        return Claim("C2", "5.1, Figure 3", "BYOL transfers best on average among the SSL methods.",
                     paper_txt, "fewer than two SSL methods in this run", UNTESTABLE, paper_verdict)
    means = s.groupby(["group", "group_title", "paper_model"], dropna=False).scaled.mean().dropna()
    if means.empty:
        return Claim("C2", "5.1, Figure 3", "BYOL transfers best on average among the SSL methods (few-shot).",
                     paper_txt, "every dataset ties (no scale)", UNTESTABLE, paper_verdict)
    means = means.sort_values(ascending=False)
    (_, title, pm), top = means.index[0], means.iloc[0]
    verdict = SUPPORTED if pm == "byol" else NOT_SUPPORTED
    return Claim("C2", "5.1, Figure 3", "BYOL transfers best on average among the SSL methods (few-shot).",
                 paper_txt, f"best mean scaled few-shot score: {title} ({top:.2f})", verdict, paper_verdict)


def _paper_best(paper_scaled: pd.DataFrame) -> tuple[str, str]:
    if paper_scaled.empty:
        return "no data", UNTESTABLE
    df = paper_scaled if "scaled" in paper_scaled else paper_scaled.assign(
        scaled=report.minmax(paper_scaled, "value", "dataset"))
    if "family" in df:
        df = df[df.family == "self-supervised"]
    m = df.groupby(["model", "label"]).scaled.mean().dropna().sort_values(ascending=False)
    if m.empty:
        return "every dataset ties (no scale)", UNTESTABLE
    (model, label), top = m.index[0], m.iloc[0]
    return f"best mean scaled few-shot score: {label} ({top:.2f})", SUPPORTED if model == "byol" else NOT_SUPPORTED


def chance_level(protocol: str, dataset: str, metric: str, n_way: int | None = None) -> float:
    """Chance in percent: 50 for AUC; 100 / n_way for few-shot accuracy (balanced episodes); 100 / classes for
    many-shot (mean per-class) accuracy, which for plain accuracy on unbalanced classes is a lower bound (the
    majority rate is higher): binary many-shot tasks are judged on their AUC where the run has one."""
    from ..data.registry import get_spec

    if metric == "auc":
        return 50.0
    spec = get_spec(dataset)
    if protocol == "fewshot":
        return 100.0 / (n_way or spec.fewshot_ways)
    return 100.0 / len(spec.classes)


def _n_way(extra) -> int | None:
    try:
        return json.loads(extra).get("n_way") if isinstance(extra, str) and extra else None
    except json.JSONDecodeError:
        return None


def _best_above_chance(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``df``: one row per (task, group, metric) with value, half, n_way, and ``headline`` (bool). Returns the
    best group per task among the tasks whose best score clears chance (see CHANCE_MARGIN), and the task count.
    The chance check uses the task's AUC where there is one (unbalanced binary tasks), else the headline."""
    if df.empty:
        return df, 0
    has_auc = set(df[df.metric == "auc"].task)
    chk = df[[(m == "auc") if t in has_auc else h for t, m, h in zip(df.task, df.metric, df.headline)]]
    chk = chk.assign(chance=[chance_level(p, d, m, w) for p, d, m, w in zip(chk.protocol, chk.dataset, chk.metric,
                                                                            chk.n_way)])
    low = chk.value - chk.half.fillna(0.0)
    ok = set(chk[low > chk.chance + CHANCE_MARGIN].task)
    head = df[df.headline & df.task.isin(ok)]
    return (head.loc[head.groupby("task").value.idxmax()] if len(head) else head), df.task.nunique()


def _c3_outcome(best: pd.DataFrame, n_tasks: int, unit: str) -> tuple[str, str]:
    k, n = best.group.nunique() if len(best) else 0, len(best)
    txt = (f"{k} different {unit} are best on the {n} of {n_tasks} tasks whose best score clears chance by "
           f"{CHANCE_MARGIN:g} points (95% interval)")
    if n < 2:
        return txt, UNTESTABLE
    return txt, SUPPORTED if k > 1 else NOT_SUPPORTED


def no_single_best(rows: pd.DataFrame) -> Claim:
    """Distinct winners count only on tasks above chance: at chance every task has a random winner."""
    from .. import reference

    ref = reference.paper_rows()
    ref = ref[ref.protocol.isin(["fewshot", "linear", "finetune"])]
    ref = ref.assign(task=[f"{p}/{d}" for p, d in zip(ref.protocol, ref.dataset)], group=ref.model,
                     half=(ref.ci_high - ref.ci_low) / 2, n_way=[_n_way(e) for e in ref.extra],
                     headline=[p == "fewshot" or m == report._paper_metric(d)
                               for p, m, d in zip(ref.protocol, ref.metric, ref.dataset)])
    paper_txt, paper_verdict = _c3_outcome(*_best_above_chance(ref), "models")
    statement = "There is no clear best model across all datasets."
    if rows.empty:
        return Claim("C3", "6 (2)", statement, paper_txt, "no results", UNTESTABLE, paper_verdict)
    s = report.summarise(rows)
    s = s[s.family != "random"]
    n_way = {(m, d): _n_way(e) for m, d, e in zip(rows.model, rows.dataset, rows.extra)}
    group_way = {}
    for m, d in n_way:
        group_way[(report.group_of(m), d)] = n_way[(m, d)]
    s = s.assign(task=[f"{p}/{d}" for p, d in zip(s.protocol, s.dataset)], half=s.ci_half,
                 n_way=[group_way.get((g, d)) for g, d in zip(s.group, s.dataset)],
                 headline=[report.headline_metric(p, d) == m for p, d, m in zip(s.protocol, s.dataset, s.metric)])
    this_txt, verdict = _c3_outcome(*_best_above_chance(s), "models (recipes)")
    return Claim("C3", "6 (2)", statement, paper_txt, this_txt, verdict, paper_verdict)


def domain_specific_tradeoff(this_scaled: pd.DataFrame, paper_scaled: pd.DataFrame, tests: pd.DataFrame) -> Claim:
    """Figure 4's bars (``report.domain_type_summary``): MIMIC-CheXpert minus SSL (ImageNet), averaged over the
    protocols, in and out of domain. ``tests``: domain-specific vs SSL family tests (diff = a minus b)."""
    sm, psm = report.domain_type_summary(this_scaled), report.domain_type_summary(paper_scaled)
    gi, go = report.figure4_gap(sm, "in"), report.figure4_gap(sm, "out")
    pgi, pgo = report.figure4_gap(psm, "in"), report.figure4_gap(psm, "out")
    if np.isnan(gi) or np.isnan(go):
        verdict = UNTESTABLE
    elif gi > 0 and go < 0:
        t = tests.assign(domain=[report.domain_of(d) for d in tests.dataset]) if len(tests) else tests
        sig_in = report.n_significant(t[t.domain == "in"], +1) if len(t) else 0
        sig_out = report.n_significant(t[t.domain == "out"], -1) if len(t) else 0
        verdict = SUPPORTED if (sig_in > 0 and sig_out > 0) else DIRECTION
    else:
        verdict = NOT_SUPPORTED
    paper_verdict = UNTESTABLE if np.isnan(pgi) or np.isnan(pgo) else (DIRECTION if pgi > 0 and pgo < 0
                                                                        else NOT_SUPPORTED)
    return Claim("C5", "6 (3); 5.2, Figure 4", "Domain-specific self-supervised pretraining (MIMIC-CheXpert, as in "
                 "Figure 4) helps in domain and hurts out of domain.",
                 f"Figure 4 gap (MIMIC-CheXpert minus SSL, mean over protocols): {pgi:+.2f} in, {pgo:+.2f} out",
                 f"Figure 4 gap: {gi:+.2f} in, {go:+.2f} out", verdict, paper_verdict)


def _c4_outcome(df: pd.DataFrame, alpha: float = ALPHA) -> tuple[str, str]:
    """A claim of *no* relation is never supported by a non-significant test: no significant relation with the
    right sign (r <= 0: higher source accuracy does not go with better transfer) is only its direction; a
    significant negative r supports it; a positive r contradicts it; too few points test nothing."""
    from ..analysis._common import AnalysisError
    from ..analysis.correlation import pearson

    df = df.dropna(subset=["source_acc", "transfer"]) if len(df) else df
    if len(df) < MIN_CORRELATION_POINTS:
        return f"{len(df)} models; a correlation needs at least {MIN_CORRELATION_POINTS}", UNTESTABLE
    try:
        r, p = pearson(df.source_acc.to_numpy(), df.transfer.to_numpy())
    except AnalysisError as exc:
        return f"r undefined ({exc})", UNTESTABLE
    txt = f"Pearson r = {r:.2f} (p = {p:.3f}, {len(df)} models)"
    if r > 0:
        return txt, NOT_SUPPORTED
    return txt, SUPPORTED if p < alpha else DIRECTION


def source_accuracy_vs_transfer(points: pd.DataFrame, paper_points: pd.DataFrame) -> Claim:
    """``points``: one row per group with ``source_acc``, ``transfer`` (mean scaled transfer) and ``source`` (what
    the source accuracy is: ``report.source_scores``)."""
    this_txt, verdict = _c4_outcome(points)
    paper_txt, paper_verdict = _c4_outcome(paper_points)
    sources = list(dict.fromkeys(points.source.dropna())) if "source" in points and len(points) else []
    if sources:
        this_txt += f" (source = {'; '.join(sources)})"
    return Claim("C4", "6 (2); Figure A4", "Performance on the pretraining source (ImageNet top-1) does not "
                 "predict transfer to medical data.", paper_txt, this_txt, verdict, paper_verdict)


TABLE_COLUMNS = ["key", "section", "statement", "paper", "paper_verdict", "this_run", "verdict"]


def table(claims: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([c.as_row() for c in claims], columns=TABLE_COLUMNS)


def domain_specific_focus(ad_in: dict, ad_out: dict, paper_in: dict, paper_out: dict) -> Claim:
    """Figure 9: domain-specific models have a narrower focus (lower attentive diffusion) in domain than SSL."""
    def txt(i, o):
        if "domain-specific" not in i or "self-supervised" not in i:
            return None, "no domain-specific or SSL values"
        gi = i["domain-specific"] - i["self-supervised"]
        go = o.get("domain-specific", np.nan) - o.get("self-supervised", np.nan)
        return gi, f"AD domain-specific minus SSL: {gi:+.1f} points in domain, {go:+.1f} out of domain"

    def judge(gi):
        return UNTESTABLE if gi is None else (DIRECTION if gi < 0 else NOT_SUPPORTED)

    gi, this_txt = txt(ad_in, ad_out)
    pgi, paper_txt = txt(paper_in, paper_out)
    return Claim("C6", "5.3, Figure 9", "Domain-specific models focus on narrower regions (lower attentive "
                 "diffusion) of in-domain images than ImageNet SSL models.", paper_txt,
                 this_txt + " (one image per dataset: no test)", judge(gi), judge(pgi))


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

    def judge(k, m):
        if m == 0:
            return UNTESTABLE
        return NOT_SUPPORTED if k > max(1, round(alpha * m)) else SUPPORTED    # more than chance would give

    return Claim(key, section, statement, texts["paper_tables"][2],
                 this_txt + (f" (at most {n_models} models per dataset: low power)" if m else ""), judge(k, m),
                 judge(*texts["paper_tables"][:2]))


# ---------------------------------------------------------------- conclusions the paper states without a test
# Transformations the ImageNet SSL methods' augmentations enforce (random horizontal flip and colour jitter, hue
# included, in SimCLR, MoCo-v2, BYOL, SwAV and PIRL) and ones none of them does (rotation; two views of one
# patient). A fact about the transforms, not about any model; the paper itself says multi-view "is not enforced".
ENFORCED = ("hflip", "hue")
NOT_ENFORCED = ("rotation", "multiview")
PRETRAINED_SSL = ("self-supervised", "domain-specific")


def _sign_test(wins: int, n: int) -> float:
    from scipy.stats import binomtest

    return float(binomtest(wins, n, 0.5).pvalue) if n else np.nan


def _invariance_pairs(rows: pd.DataFrame, family_of) -> tuple[int, int]:
    """(wins, pairs): per (model, dataset) of a pretrained SSL model with both kinds measured, is the mean
    invariance to the enforced transforms above the mean to the non-enforced ones?"""
    if rows is None or len(rows) == 0:
        return 0, 0
    inv = rows[rows.protocol == "invariance"]
    inv = inv.assign(change=inv.metric.str.replace("invariance_", "", regex=False),
                     family=[family_of(m) for m in inv.model])
    inv = inv[inv.family.isin(PRETRAINED_SSL)]
    wins = n = 0
    for _, g in inv.groupby(["model", "dataset"]):
        e, o = g[g.change.isin(ENFORCED)].value, g[g.change.isin(NOT_ENFORCED)].value
        if len(e) and len(o):
            n += 1
            wins += int(e.mean() > o.mean())
    return wins, n


def _invariance_outcome(wins: int, n: int, alpha: float = ALPHA) -> tuple[str, str]:
    if n == 0:
        return "no dataset with both an enforced and a non-enforced invariance measured", UNTESTABLE
    p = _sign_test(wins, n)
    txt = f"enforced above non-enforced for {wins} of {n} (model, dataset) pairs (sign test p = {p:.3g})"
    if wins * 2 <= n:
        return txt, NOT_SUPPORTED
    return txt, SUPPORTED if p < alpha else DIRECTION


def invariances_carry_over(this_rows: pd.DataFrame, paper_rows: pd.DataFrame) -> Claim:
    """Conclusion (7a). Tested as: on the same medical dataset, a pretrained SSL model's features are more
    invariant to the transforms its pretraining enforced than to ones it did not. The paper has no random-init
    baseline, so a flip being a smaller change than a view change is not ruled out as the cause; pairs of one
    model on several datasets are not independent, so the sign test is optimistic."""
    from ..models.registry import get_spec

    this_txt, verdict = _invariance_outcome(*_invariance_pairs(this_rows, lambda m: get_spec(m).family))
    paper_txt, paper_verdict = _invariance_outcome(*_invariance_pairs(paper_rows, report.reference_family))
    return Claim("C9", "6 (7a); 5.3, Tables A1-A3", "Invariances enforced during self-supervised pretraining "
                 f"({', '.join(ENFORCED)}) carry over to the medical datasets: features are more invariant to them "
                 f"than to transforms pretraining did not enforce ({', '.join(NOT_ENFORCED)}).",
                 paper_txt, this_txt, verdict, paper_verdict)


# The tasks the paper names as exceptions to conclusion (1) (s5.1): (protocol or None = any, real dataset).
SUPERVISED_EXCEPTIONS = ((None, "ichallenge_amd"), ("finetune", "chexpert"), ("finetune", "eyepacs"))


def _is_exception(protocol: str, real_dataset: str) -> bool:
    return any(d == real_dataset and p in (None, protocol) for p, d in SUPERVISED_EXCEPTIONS)


def _exception_wins(fam: pd.DataFrame, dataset_col: str) -> tuple[list[str], list[str]]:
    """(exception tasks where supervised's mean is above SSL's, all exception tasks with both families)."""
    if fam.empty:
        return [], []
    sub = fam[[_is_exception(p, d) for p, d in zip(fam.protocol, fam[dataset_col])]]
    t = sub.pivot_table(index="task", columns="family", values="value")
    if "supervised" not in t or "self-supervised" not in t:
        return [], []
    t = t[["supervised", "self-supervised"]].dropna()
    return list(t.index[t.supervised > t["self-supervised"]]), list(t.index)


def supervised_exceptions(this_fam: pd.DataFrame, paper_fam: pd.DataFrame, tests: pd.DataFrame) -> Claim:
    """Section 5.1's exceptions: supervised beats SSL on iChallenge-AMD and on finetuned CheXpert and EyePACS.
    A conjunction: supported only when every exception task present is significantly in supervised's favour.
    ``tests``: ``report.family_tests`` rows (diff = SSL minus supervised)."""
    w, tasks = _exception_wins(this_fam, "paper_dataset")
    pw, ptasks = _exception_wins(paper_fam, "dataset")
    sig = 0
    if len(tests) and tasks:
        t = tests[[_is_exception(p, report.paper_dataset(d)) for p, d in zip(tests.protocol, tests.dataset)]]
        sig = int((t.significant.astype(bool) & (t["diff"] < 0)).sum())
    if not tasks:
        verdict = UNTESTABLE
    elif len(w) < len(tasks):
        verdict = NOT_SUPPORTED
    else:
        verdict = SUPPORTED if sig >= len(tasks) else DIRECTION
    paper_verdict = UNTESTABLE if not ptasks else (DIRECTION if len(pw) == len(ptasks) else NOT_SUPPORTED)
    return Claim("C10", "5.1", "The exceptions to (1): supervised models beat the SSL ones on iChallenge-AMD and "
                 "when finetuned on CheXpert and EyePACS.",
                 f"supervised mean above SSL on {len(pw)} of {len(ptasks)} exception tasks"
                 + (f" ({', '.join(pw)})" if pw else ""),
                 f"supervised mean above SSL on {len(w)} of {len(tasks)} exception tasks; {sig} significant "
                 "(Holm)" if tasks else "none of the exception tasks in this run", verdict, paper_verdict)


# the two domain-specific models of s5.2 / Figure 5, as the reference names their family rows
MORE_CXR_PRETRAINING, LESS_CXR_PRETRAINING = report.FIGURE4_MIMIC, "moco_cxr_best"
lineage = report.lineage


def mimic_vs_moco_pairs(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """(MIMIC-CheXpert group, MoCo-CXR group) pairs of this run, for ``report.group_tests``."""
    if rows.empty:
        return []
    a = report.annotate(rows)
    side = {g: lineage(pm) for g, pm in zip(a.group, a.paper_model)}
    more = [g for g, f in side.items() if f == MORE_CXR_PRETRAINING]
    less = [g for g, f in side.items() if f == LESS_CXR_PRETRAINING]
    return [(m, c) for m in more for c in less]


def _side_by_task(scaled: pd.DataFrame, model_col: str) -> pd.DataFrame:
    if scaled.empty:
        return pd.DataFrame(columns=["protocol", "dataset", "domain", "more", "less"])
    s = scaled.assign(side=[lineage(m) for m in scaled[model_col]])
    s = s[s.side.isin([MORE_CXR_PRETRAINING, LESS_CXR_PRETRAINING])]
    t = s.pivot_table(index=["protocol", "dataset", "domain"], columns="side", values="scaled").reset_index()
    if MORE_CXR_PRETRAINING not in t or LESS_CXR_PRETRAINING not in t:
        return pd.DataFrame(columns=["protocol", "dataset", "domain", "more", "less"])
    return t.rename(columns={MORE_CXR_PRETRAINING: "more", LESS_CXR_PRETRAINING: "less"}).dropna(
        subset=["more", "less"])


def _mimic_text(t: pd.DataFrame) -> tuple[int, int, str]:
    ins, outs = t[t.domain == "in"], t[t.domain == "out"]
    w_in, w_out = int((ins.more > ins.less).sum()), int((outs.more > outs.less).sum())
    return w_in, len(ins), (f"MIMIC-CheXpert above MoCo-CXR on {w_in} of {len(ins)} in-domain tasks "
                            f"(and on {w_out} of {len(outs)} out of domain)")


def mimic_above_moco_in_domain(this_scaled: pd.DataFrame, paper_scaled: pd.DataFrame, tests: pd.DataFrame) -> Claim:
    """Section 5.2 / Figure 5: MIMIC-CheXpert (far more chest X-ray pretraining) is significantly better than
    MoCo-CXR on most in-domain tasks. ``tests``: ``report.group_tests`` over ``mimic_vs_moco_pairs`` (diff = MIMIC
    minus MoCo-CXR); a task counts as significant when every pair on it is."""
    t = _side_by_task(this_scaled, "paper_model")
    w, n, this_txt = _mimic_text(t)
    pw, pn, paper_txt = _mimic_text(_side_by_task(paper_scaled, "model"))
    sig = 0
    if len(tests) and n:
        tt = tests.assign(domain=[report.domain_of(d) for d in tests.dataset])
        tt = tt[tt.domain == "in"]
        ok = (tt.significant.astype(bool) & (tt["diff"] > 0)).groupby([tt.protocol, tt.dataset]).all()
        sig = int(ok.sum())
    if n == 0:
        verdict = UNTESTABLE
    elif w * 2 <= n:
        verdict = NOT_SUPPORTED
    else:
        verdict = SUPPORTED if sig * 2 > n else DIRECTION
    return Claim("C11", "5.2, Figure 5", "MIMIC-CheXpert beats MoCo-CXR on most in-domain tasks (more in-domain "
                 "pretraining, more in-domain benefit).", paper_txt,
                 this_txt + (f"; significant on {sig} in-domain tasks (Holm)" if n else ""), verdict,
                 _majority_verdict(pw, pn))


SMALL_SHIFT_DATASET = "shenzhen"     # the paper's example of a small shift (s5.2, s5.3)
ABSTRACT_GAIN = 20.0                 # abstract: domain-specific models "outperformed other models by over 20%"


def _small_shift(scaled: pd.DataFrame, to_real) -> tuple[int, int, str]:
    """(tasks where the domain-specific mean is below both the SSL and the supervised mean, tasks, text)."""
    if scaled.empty:
        return 0, 0, "no data"
    s = scaled[[to_real(d) == SMALL_SHIFT_DATASET for d in scaled.dataset]]
    t = s.pivot_table(index="task", columns="family", values="value")
    need = ["domain-specific", "self-supervised", "supervised"]
    if any(f not in t for f in need):
        return 0, 0, "no Shenzhen-CXR task with all three families"
    t = t[need].dropna()
    below = (t["domain-specific"] < t["self-supervised"]) & (t["domain-specific"] < t.supervised)
    parts = [f"{task}: domain-specific {r['domain-specific']:.1f}, SSL {r['self-supervised']:.1f}, supervised "
             f"{r.supervised:.1f}" for task, r in t.iterrows()]
    return int(below.sum()), len(t), "; ".join(parts)


def _abstract_gain(scaled: pd.DataFrame) -> str:
    """Largest in-domain gain of the best domain-specific model over the mean of the ImageNet models (%)."""
    if scaled.empty:
        return ""
    s = scaled[scaled.domain == "in"]
    best, gain = None, -np.inf
    for task, g in s.groupby("task"):
        ds, other = g[g.family == "domain-specific"].value, g[g.family.isin(["self-supervised", "supervised"])].value
        if len(ds) and len(other) and other.mean() > 0:
            x = 100 * (ds.max() / other.mean() - 1)
            if x > gain:
                best, gain = task, x
    if best is None:
        return ""
    return (f". Abstract's 'over {ABSTRACT_GAIN:g}%' in domain: best domain-specific model vs the ImageNet models' "
            f"mean, at most {gain:+.1f}% ({best})")


def small_shift_hurts(this_scaled: pd.DataFrame, paper_scaled: pd.DataFrame, tests_vs_ssl: pd.DataFrame,
                      tests_vs_sup: pd.DataFrame) -> Claim:
    """Conclusion (3), 'even if there may be just a small shift in domain' (s5.2: Shenzhen-CXR). ``*_scaled``:
    ``report.scaled_task_rows`` / ``paper_scaled_task_rows``; tests: ``report.family_tests`` with a =
    domain-specific against b = SSL / supervised. The abstract's ">20%" gain is shown beside, not judged."""
    w, n, this_txt = _small_shift(this_scaled, report.paper_dataset)
    pw, pn, paper_txt = _small_shift(paper_scaled, lambda d: d)

    def sig(tests):
        if not len(tests):
            return 0
        t = tests[[report.paper_dataset(d) == SMALL_SHIFT_DATASET for d in tests.dataset]]
        return int((t.significant.astype(bool) & (t["diff"] < 0)).sum())

    if n == 0:
        verdict = UNTESTABLE
    elif w < n:
        verdict = NOT_SUPPORTED
    else:
        verdict = SUPPORTED if min(sig(tests_vs_ssl), sig(tests_vs_sup)) >= n else DIRECTION
    paper_verdict = UNTESTABLE if pn == 0 else (DIRECTION if pw == pn else NOT_SUPPORTED)
    return Claim("C12", "6 (3); 5.2, Table 3; abstract", "Even a small shift hurts the domain-specific models: on "
                 "Shenzhen-CXR (chest X-rays unlike CheXpert) they are below both the ImageNet SSL and the supervised "
                 "models.", paper_txt + _abstract_gain(paper_scaled), this_txt + _abstract_gain(this_scaled),
                 verdict, paper_verdict)
