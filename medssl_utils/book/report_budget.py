"""The pretraining-budget page (issue 17): transfer and a neutral probe against images seen, and the paper's
Q1/Q2 claims re-evaluated at each budget of the mini-zoo.

A budget is a multiple of the committed recipes' images seen (``models.minizoo.budget``); budget checkpoints
register as ``mini-<recipe>-b<B>-s<seed>`` with ``extra["budget"]`` and ``extra["images_seen"]``. Every
function here takes result rows (or manifest records) and returns frames, so the page only calls and shows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..models.minizoo.budget import source_of
from ..models.registry import get_spec as model_spec
from . import claims, report

PROTOCOLS = ("fewshot", "linear")          # finetuning stays on the Q1 page: it is the costly protocol
NEUTRAL_TARGET = -5.0                      # issue 17's acceptance: SSL within 5 points of supervised
MAX_PROJECTION = 10_000                    # beyond this multiple of 1x a straight-line projection says nothing
CURVE_COLUMNS = ["protocol", "recipe", "family", "budget", "images_seen", "value", "sd", "n_seeds"]


def budget_of(model: str) -> int:
    """1 for every model that is not a budget checkpoint (the paper's, the committed mini-zoo); 0 for random init."""
    return int(model_spec(model).extra.get("budget", 1))


def images_seen_of(model: str) -> int | None:
    return model_spec(model).extra.get("images_seen")


def budget_siblings(models) -> list[str]:
    """The run's models followed by the registered budget checkpoints of the same mini-zoo recipes and seeds."""
    from ..models.registry import MODELS, available

    available()
    base = {(s.extra.get("recipe"), s.extra.get("seed")) for s in map(model_spec, models) if "budget" in s.extra}
    extra = [n for n, s in sorted(MODELS.items())
             if s.extra.get("budget", 1) > 1 and (s.extra.get("recipe"), s.extra.get("seed")) in base]
    return list(dict.fromkeys(list(models) + extra))


def budgets_of(rows: pd.DataFrame) -> list[int]:
    """The pretraining budgets the rows hold, ascending; random init (budget 0) is a baseline, not a budget."""
    return sorted({b for b in map(budget_of, rows.model.unique()) if b > 0}) if len(rows) else []


def at_budget(rows: pd.DataFrame, budget: int) -> pd.DataFrame:
    """The rows of the models trained at ``budget``, with the random-init baseline kept in every budget."""
    b = {m: budget_of(m) for m in rows.model.unique()}
    return rows[[b[m] in (budget, 0) for m in rows.model]]


def per_model_scaled(rows: pd.DataFrame, protocols=PROTOCOLS) -> pd.DataFrame:
    """Each pretrained model's headline value per task, scaled 0-1 per task over every pretrained model of the rows
    (all budgets share one scale; random init is left out, as the paper has none), then averaged over the
    protocol's datasets."""
    r = rows[rows.protocol.isin(protocols).to_numpy() & np.array([budget_of(m) > 0 for m in rows.model], bool)]
    r = report._headline(r)
    if r.empty:
        return pd.DataFrame(columns=["model", "protocol", "scaled", "raw"])
    r = r.assign(task=r.protocol + "/" + r.dataset)
    r = r.assign(scaled=report.minmax(r, "value", "task"))
    return r.groupby(["model", "protocol"], sort=False).agg(scaled=("scaled", "mean"),
                                                             raw=("value", "mean")).reset_index()


def _describe(models) -> pd.DataFrame:
    specs = [model_spec(m) for m in models]
    return pd.DataFrame({"model": list(models), "recipe": [s.extra.get("recipe", s.name) for s in specs],
                         "family": [s.family for s in specs], "budget": [s.extra.get("budget", 1) for s in specs],
                         "images_seen": [s.extra.get("images_seen") for s in specs],
                         "seed": [s.extra.get("seed") for s in specs]})


def _curve(df: pd.DataFrame, value: str, keys: list[str]) -> pd.DataFrame:
    g = df.groupby(keys + ["recipe", "family", "budget"], sort=True)
    out = g.agg(images_seen=("images_seen", "mean"), value=(value, "mean"),
                sd=(value, lambda v: v.std(ddof=1) if len(v) > 1 else np.nan), n_seeds=(value, "size")).reset_index()
    return out


def transfer_curve(rows: pd.DataFrame, protocols=PROTOCOLS) -> pd.DataFrame:
    """Per (protocol, recipe, budget): mean scaled transfer over the seeds, its SD and the images seen."""
    s = per_model_scaled(rows, protocols)
    s = s[[images_seen_of(m) is not None for m in s.model]] if len(s) else s   # only the mini-zoo has an axis
    if s.empty:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return _curve(s.merge(_describe(s.model.unique()), on="model"), "scaled", ["protocol"])[CURVE_COLUMNS]


def neutral_rows(manifest: dict) -> pd.DataFrame:
    """One row per registered mini model with a neutral-probe record: recipe, family, budget, images seen, seed,
    kNN and linear accuracy in % (random init included as budget 0)."""
    from ..models.registry import MODELS, available

    available()
    recs = dict(manifest.get("neutral_probe", {}).get("models", {}))
    recs.update(manifest.get("neutral_probe", {}).get("random_baseline", {}))
    recs.update({n: r["neutral_probe"] for n, r in manifest.get("budgets", {}).items() if "neutral_probe" in r})
    names = [n for n in sorted(recs) if n in MODELS]
    if not names:
        return pd.DataFrame(columns=["model", "recipe", "family", "budget", "images_seen", "seed", "knn", "linear"])
    df = _describe(names)
    return df.assign(knn=[100 * recs[n]["knn"] for n in names], linear=[100 * recs[n]["linear"] for n in names])


def supervised_reference(budgets, sup_budgets) -> dict[int, int]:
    """Which supervised budget each budget is compared with: the same one, or, where the supervised recipe was not
    built at that budget, the largest one below it. The supervised recipe is near its ceiling from 1x (neutral kNN
    97-99%), so a lower budget's value differs little; the gap is then an upper bound (the supervised recipe only
    rises) and the page names the reference budget. Budgets with no supervised budget at or below are left out."""
    sup = sorted(sup_budgets)
    return {b: max(s for s in sup if s <= b) for b in budgets if any(s <= b for s in sup)}


def neutral_gap(neutral: pd.DataFrame, probe: str = "knn") -> pd.DataFrame:
    """Per SSL recipe and budget: its neutral-probe accuracy minus the supervised recipe's at the same budget
    (seed-mean minus seed-mean, in points; ``supervised_reference`` where supervised was not built at a budget);
    ``value``/``sd`` as in ``transfer_curve``; ``supervised_budget`` names the reference."""
    cols = ["recipe", "family", "budget", "images_seen", "value", "sd", "n_seeds", "supervised", "supervised_budget"]
    n = neutral[neutral.budget > 0]
    sup = n[n.family == "supervised"].groupby("budget")[probe].mean()
    ref = supervised_reference(n.budget.unique(), sup.index)
    ssl = n[(n.family == "self-supervised") & n.budget.isin(list(ref))]
    if ssl.empty:
        return pd.DataFrame(columns=cols)
    ssl = ssl.assign(gap=ssl[probe] - sup.reindex(ssl.budget.map(ref)).to_numpy())
    out = _curve(ssl, "gap", [])
    out = out.assign(supervised_budget=out.budget.map(ref).astype(int))
    return out.assign(supervised=sup.reindex(out.supervised_budget).to_numpy())[cols]


def paper_top1_gap() -> float:
    """The paper's position on the neutral-gap axis: mean ImageNet top-1 of its self-supervised models minus that
    of its supervised ones (the authors' values, ``ModelSpec.imagenet_top1``), in points."""
    from ..models.registry import MODELS, available

    available("paper")
    top1 = pd.DataFrame([(s.family, s.imagenet_top1) for s in MODELS.values()
                         if s.profile == "paper" and s.imagenet_top1 is not None], columns=["family", "top1"])
    means = top1.groupby("family").top1.mean()
    return float(means["self-supervised"] - means["supervised"])


def project_budget(gap: pd.DataFrame, target: float = NEUTRAL_TARGET) -> pd.DataFrame:
    """Per SSL recipe, a straight line of its neutral gap against log10(images seen) through its two largest
    budgets (the local trend: a gap that closes fast at first and then flattens must not be projected with its
    early slope): the slope (points per 10x images), whether it is rising, and the images seen (and multiple of
    1x) at which the line reaches ``target``. An extrapolation from two points, printed as such, never a result."""
    out = []
    for recipe, g in gap.groupby("recipe", sort=True):
        g = g.sort_values("images_seen")
        x, y = np.log10(g.images_seen.to_numpy(float)), g.value.to_numpy(float)
        row = {"recipe": recipe, "budgets": len(g), "last_budget": int(g.budget.iloc[-1]), "last_gap": y[-1],
               "reference_budget": int(g.supervised_budget.iloc[-1]) if "supervised_budget" in g else
               int(g.budget.iloc[-1]),
               "slope_per_10x": np.nan, "reached": bool(y[-1] >= target), "projected_images": np.nan,
               "projected_budget": np.nan}
        if len(g) >= 2 and np.ptp(x[-2:]) > 0:
            slope, icpt = np.polyfit(x[-2:], y[-2:], 1)
            row["slope_per_10x"] = slope
            if slope > 0 and not row["reached"]:
                row["projected_images"] = 10 ** ((target - icpt) / slope)
                base = g.images_seen.iloc[0] / g.budget.iloc[0]
                row["projected_budget"] = row["projected_images"] / base
        out.append(row)
    return pd.DataFrame(out)


def neutral_projections(neutral: pd.DataFrame, target: float = NEUTRAL_TARGET) -> pd.DataFrame:
    """``project_budget`` for both neutral probes, kNN first: the two can disagree (a linear probe can separate
    classes a nearest-neighbour vote cannot), and the page shows both rather than pick one."""
    out = [project_budget(neutral_gap(neutral, probe), target).assign(probe=probe) for probe in ("knn", "linear")]
    out = [o for o in out if not o.empty]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def paper_positions(datasets: list[str], protocols=PROTOCOLS) -> pd.DataFrame:
    """The paper's place on the transfer panels: its published values scaled 0-1 per task over all its models (the
    rule of ``per_model_scaled``), averaged per (protocol, family)."""
    p = report.paper_scaled_task_rows(datasets, protocols)
    if p.empty:
        return pd.DataFrame(columns=["protocol", "family", "value"])
    return p.groupby(["protocol", "family"], sort=False).scaled.mean().rename("value").reset_index()


def verdicts_by_budget(cfg, rows: pd.DataFrame, protocols=PROTOCOLS) -> pd.DataFrame:
    """The paper's Q1 claim (C1: SSL beats supervised) and Q2 claim (C5: domain-specific helps in domain and hurts
    out of domain) evaluated on the models of each budget alone, with the same figures and paired tests as the
    Q1, Q2 and reproduction pages (restricted to ``protocols``); the budget is named in each verdict."""
    datasets = list(dict.fromkeys(rows.dataset))
    paper_fam = report.paper_family_means(datasets, protocols)
    paper_scaled = report.paper_scaled_task_rows(datasets, protocols)
    out, missing = [], []
    for b in budgets_of(rows):
        sub = at_budget(rows, b)
        built = [m for m in sub.model.unique() if budget_of(m) == b]
        seen = sorted({images_seen_of(m) for m in built} - {None})
        families = {model_spec(m).family for m in built}
        row = {"budget": f"{b}x", "images_seen": _seen_text(seen), "n_models": len(built),
               "seeds": _fewest_seeds(built)}
        for key, need, claim in (("C1", ("supervised", "self-supervised"), _c1), ("C5", ("domain-specific",
                                                                                         "self-supervised"), _c5)):
            if not set(need) <= families:
                titles = ", ".join(sorted({_recipe_title(model_spec(m).extra.get("recipe", m)) for m in built}))
                missing.append({**row, "claim": key, "this_run": f"only {titles} built at {b}x",
                                "verdict": f"not evaluated at {b}x (needs {' and '.join(need)} models)"})
                continue
            c = claim(cfg, sub, protocols, paper_fam, paper_scaled)
            out.append({**row, "claim": c.key, "statement": c.statement, "paper": c.paper,
                        "paper_verdict": c.paper_verdict, "this_run": c.this_run, "verdict": f"{c.verdict} at {b}x",
                        "evaluated": True})
    known = {r["claim"]: r for r in out}
    out += [{**{k: known.get(r["claim"], {}).get(k, "—") for k in ("statement", "paper", "paper_verdict")}, **r,
             "evaluated": False} for r in missing]
    df = pd.DataFrame(out)
    if df.empty:
        return df
    order = {f"{b}x": k for k, b in enumerate(budgets_of(rows))}
    return df.sort_values(["budget", "claim"], key=lambda c: c.map(order) if c.name == "budget" else c,
                          kind="stable").reset_index(drop=True)


def _c1(cfg, sub, protocols, paper_fam, paper_scaled):
    tests = pd.concat([report.family_tests(cfg, sub, p) for p in protocols], ignore_index=True)
    return claims.ssl_beats_supervised(report.family_means(sub, protocols), paper_fam, tests)


def _c5(cfg, sub, protocols, paper_fam, paper_scaled):
    tests = pd.concat([report.family_tests(cfg, sub, p, a="domain-specific", b="self-supervised")
                       for p in protocols], ignore_index=True)
    return claims.domain_specific_tradeoff(report.scaled_task_rows(sub, protocols), paper_scaled, tests)


def _fewest_seeds(models: list[str]) -> int:
    """Seeds of the least-repeated recipe: with one, a verdict rests on a single training run of that recipe."""
    per = pd.Series([model_spec(m).extra.get("recipe", m) for m in models]).value_counts()
    return int(per.min()) if len(per) else 0


def _seen_text(seen: list[int]) -> str:
    return " / ".join(f"{s:,}" for s in seen) if seen else "—"


def _recipe_title(recipe: str) -> str:
    from ..models.minizoo.recipes import RECIPES

    return RECIPES[recipe].title if recipe in RECIPES else recipe


def budget_figure(curve: pd.DataFrame, gap: pd.DataFrame, paper_gap: float, paper_pos: pd.DataFrame,
                  title: str = ""):
    """Left: SSL minus supervised neutral-probe accuracy against images seen, the paper's ImageNet top-1 gap and
    the -5 point target marked. Then one panel per protocol: scaled transfer per recipe against images seen
    (mean over seeds, bars: 1 SD), the paper's SSL and supervised family means (``paper_positions``) as lines.
    One legend of recipes under the panels; each panel's own reference lines in its corner."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    protocols = list(dict.fromkeys(curve.protocol)) if len(curve) else list(PROTOCOLS)
    n = 1 + len(protocols)
    rows_, cols_ = (n + 1) // 2, 2 if n > 1 else 1       # 2 columns; a spare panel (n odd) holds the legend
    fig, grid_ = plt.subplots(rows_, cols_, figsize=(10, 4.2 * rows_), squeeze=False)
    axes = list(grid_.flat)[:n]
    spare = list(grid_.flat)[n:]
    recipes = sorted(set(curve.recipe) | set(gap.recipe))
    colors = {r: plt.cm.tab10(k % 10) for k, r in enumerate(recipes)}
    handles = {}

    def draw(ax, g, recipe, ls="-"):
        h = ax.errorbar(g.images_seen, g.value, yerr=g.sd.fillna(0), marker="o", capsize=3, ls=ls,
                        color=colors[recipe], label=_recipe_title(recipe))
        handles.setdefault(recipe, h)

    ax = axes[0]
    for recipe, g in gap.groupby("recipe", sort=True):
        draw(ax, g, recipe)
    ax.axhline(0, color="0.6", lw=0.8)
    refs = [ax.axhline(NEUTRAL_TARGET, color="0.3", ls=":", lw=1.2, label="target: -5 points"),
            ax.axhline(paper_gap, color="k", ls="--", lw=1, label=f"paper: ImageNet top-1 gap ({paper_gap:+.1f})")]
    ax.legend(handles=refs, fontsize=7, frameon=False, loc="lower right")
    ax.set_ylabel("SSL minus supervised, points\n(neutral probe, kNN)")
    ax.set_title("neutral probe")
    for ax, p in zip(axes[1:], protocols):
        c = curve[(curve.protocol == p) & (curve.budget > 0)]
        for recipe, g in c.groupby("recipe", sort=True):
            draw(ax, g, recipe, "-" if g.family.iloc[0] != "domain-specific" else "--")
        pf = paper_pos[paper_pos.protocol == p]
        refs = []
        for fam, style in (("self-supervised", "--"), ("supervised", ":")):
            v = pf[pf.family == fam].value.mean() if len(pf) else np.nan
            if not np.isnan(v):
                refs.append(ax.axhline(v, color="k", ls=style, lw=1, label=f"paper: {report.FAMILY_LABEL[fam]} ({v:.2f})"))
        if refs:
            ax.legend(handles=refs, fontsize=7, frameon=False, loc="lower right")
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel("scaled transfer (0-1 per task)")
        ax.set_title(report.PROTOCOL_LABEL[p])
    for ax in axes:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("images seen in pretraining")
    shown = [r for r in recipes if r in handles]
    if spare:
        for ax in spare:
            ax.axis("off")
        spare[0].legend([handles[r] for r in shown], [_recipe_title(r) for r in shown], loc="center", fontsize=10,
                        frameon=False, title="recipe (dashed: domain-specific)")
    else:
        fig.legend([handles[r] for r in shown], [_recipe_title(r) for r in shown], loc="lower center",
                   ncol=min(len(shown), 4), fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- tables for the page
def budget_table(manifest: dict, models) -> pd.DataFrame:
    """Per recipe and budget among ``models``: images seen, seeds, where and how long they trained, the source
    probe (the recipe's own pretraining labels) and the neutral probe, in %."""
    recs = {**manifest.get("models", {}), **manifest.get("budgets", {})}
    neutral = neutral_rows(manifest).set_index("model")
    rows = []
    for m in models:
        spec = model_spec(m)
        if "budget" not in spec.extra:
            continue
        rec = recs.get(m) or manifest.get("random_baseline", {}).get(m) or {}
        source = source_of(rec)
        kinds = sorted({d.split(":")[0] for d in rec.get("devices", ["cpu"])})
        devices = ", ".join(kinds) if rec.get("sha256") else "—"
        rows.append({"recipe": spec.extra.get("recipe_title", spec.title).replace(" x", " ×"),
                     "family": spec.family, "budget": spec.extra["budget"], "images seen": spec.extra["images_seen"],
                     "seed": spec.extra.get("seed"), "trained on": devices,
                     "wall time (min)": rec.get("wall_time_s", np.nan) / 60,
                     "source probe": 100 * rec.get("probe", {}).get(source, np.nan), "source": source,
                     "neutral kNN": neutral.knn.get(m, np.nan), "neutral linear": neutral.linear.get(m, np.nan)})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    keys = ["family", "recipe", "budget", "images seen", "source", "trained on"]
    out = df.groupby(keys, sort=False, dropna=False).agg(
        seeds=("seed", lambda s: ", ".join(str(v) for v in sorted(s))),
        **{c: (c, "mean") for c in ("wall time (min)", "source probe", "neutral kNN", "neutral linear")}).reset_index()
    rank = [report.FAMILY_ORDER.index(f) if f in report.FAMILY_ORDER else 9 for f in out.family]
    base = [r.rsplit(" ×", 1)[0] for r in out.recipe]          # "Mini SimCLR ×16" sorts after "Mini SimCLR ×4"
    out = out.assign(_r=rank, _b=base).sort_values(["_r", "_b", "budget"], kind="stable").drop(
        columns=["_r", "_b", "family"])
    out["budget"] = [f"{b}x" if b else "—" for b in out.budget]
    out["images seen"] = [f"{v:,}" for v in out["images seen"]]
    return out.round(1).reset_index(drop=True)


def projection_table(proj: pd.DataFrame) -> pd.DataFrame:
    """``project_budget`` in words: reached, rising (with the projected images seen), or not rising."""
    if proj.empty:
        return pd.DataFrame({"recipe": [], "status": []})

    def status(r) -> str:
        ref = getattr(r, "reference_budget", r.last_budget)
        note = "" if ref == r.last_budget else f" (gap against supervised at {ref}x: not built at {r.last_budget}x)"
        return _status(r) + note

    def _status(r) -> str:
        if r.reached:
            return f"within 5 points at {r.last_budget}x"
        if np.isnan(r.slope_per_10x):
            return "one budget: no trend"
        if r.slope_per_10x <= 0:
            return "not rising: no projection"
        if r.projected_budget > MAX_PROJECTION:
            return f"rising too slowly to project (the line passes -5 points beyond {MAX_PROJECTION:,}x)"
        return f"rising; the line reaches -5 points at ≈{r.projected_images:.1e} images (≈{r.projected_budget:,.0f}x)"

    probe = {"knn": "kNN", "linear": "linear"}
    return pd.DataFrame({**({"probe": [probe.get(v, v) for v in proj.probe]} if "probe" in proj else {}),
                         "recipe": proj.recipe, "budgets": proj.budgets,
                         "gap at largest budget (points)": proj.last_gap.round(1),
                         "slope (points per 10x images)": proj.slope_per_10x.round(1),
                         "status": [status(r) for r in proj.itertuples()]})


VERDICT_COLUMNS = {"claim": "claim", "budget": "budget", "n_models": "models", "seeds": "seeds per recipe (fewest)",
                   "this_run": "this budget", "verdict": "verdict", "paper_verdict": "the paper's verdict"}


def verdict_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    if verdicts.empty:
        return pd.DataFrame(columns=list(VERDICT_COLUMNS.values()))
    return verdicts[list(VERDICT_COLUMNS)].rename(columns=VERDICT_COLUMNS)


def show(table: pd.DataFrame, uuid: str, caption: str = ""):
    """A page table in full (no truncated cells, no index); None for an empty one, so the page prints nothing."""
    if table is None or table.empty:
        return None
    return table.style.hide(axis="index").format(precision=1, na_rep="—").set_uuid(uuid).set_caption(caption)


def largest_verdicts(verdicts: pd.DataFrame) -> str:
    """One sentence for the page: each claim's verdict at the largest budget where it was evaluated, the budget
    named, and any larger budget where it could not be (which models were missing)."""
    if verdicts.empty:
        return "no budget axis in this run (one budget only)."
    parts = []
    for claim, g in verdicts.groupby("claim", sort=True):
        done = g[g.evaluated] if "evaluated" in g else g
        if done.empty:
            parts.append(f"{claim}: not evaluated at any budget")
            continue
        last = done.iloc[-1]
        later = g.loc[g.index > done.index[-1]]
        single = (", one training run per recipe there, so seed-to-seed variation is untested"
                  if last.get("seeds") == 1 else "")
        parts.append(f"{claim}: {last.verdict} ({last.this_run}{single})" +
                     "".join(f"; {r.verdict}: {r.this_run}" for r in later.itertuples()))
    return "; ".join(parts) + "."
