"""Writes notebooks/reproduction.ipynb (no outputs): the paper's conclusions, checked claim by claim."""

from notebook_cells import code, md, parameters_cell, setup_cell, write

cells = [
    md("""
# Reproduction report

Each conclusion of the paper (section 6, with the results sections behind it) is restated as a claim and
checked twice: on the paper's **own published numbers** (does the table support the sentence?) and on
**this run**. The verdict column is computed from this run's numbers and paired tests; nothing in it is typed
by hand. In the `mini` profile a verdict is about the miniature (synthetic data, mini-zoo models), not about
the paper's checkpoints.
"""),
    parameters_cell(),
    setup_cell(),
    code("""
from medssl_utils import reference
from medssl_utils.book import claims

rows = grid.run(cfg, grid.TRANSFER)
fam, paper_fam = report.family_means(rows), report.paper_family_means(list(cfg.datasets))
tests_q1 = pd.concat([report.family_tests(cfg, rows, p) for p in ("fewshot", "linear", "finetune")], ignore_index=True)
tests_q2 = pd.concat([report.family_tests(cfg, rows, p, a="domain-specific", b="self-supervised")
                      for p in ("fewshot", "linear", "finetune")], ignore_index=True)
found = [
    claims.ssl_beats_supervised(fam, paper_fam, tests_q1),
    claims.best_ssl_method(rows, report.paper_scaled_rows(list(cfg.datasets))),
    claims.no_single_best(rows),
    claims.source_accuracy_vs_transfer(report.source_points(rows), report.paper_source_points(list(cfg.datasets))),
    claims.domain_specific_tradeoff(report.scaled_task_rows(rows), report.paper_scaled_task_rows(list(cfg.datasets)),
                                    tests_q2),
]
from medssl_utils.book import report_q3

q3 = grid.run(cfg, grid.ANALYSES)
found.append(claims.domain_specific_focus(report_q3.family_ad(q3, "in"), report_q3.family_ad(q3, "out"),
                                          report_q3.paper_family_ad("in"), report_q3.paper_family_ad("out")))
corr = report_q3.correlations_table(q3, rows[rows.protocol == "fewshot"])
found.append(claims.no_correlation_with_transfer(
    corr, "reconstruction", "C7", "6 (5); 5.3, Figure A3",
    "Reconstruction quality (perceptual distance of deep-image-prior inversions) does not correlate "
    "significantly with few-shot transfer."))
found.append(claims.no_correlation_with_transfer(
    corr, "invariance", "C8", "6 (7); 5.3, Figure A1",
    "Invariance strength does not correlate with few-shot transfer in general (the paper's one exception, "
    "multi-view invariance on CheXpert, is left out).", exclude=("multi-view invariance",)))
found.append(claims.invariances_carry_over(q3, reference.paper_rows()))
found.append(claims.supervised_exceptions(fam, paper_fam, tests_q1))
scaled, paper_scaled = report.scaled_task_rows(rows), report.paper_scaled_task_rows(list(cfg.datasets))
pairs = claims.mimic_vs_moco_pairs(rows)
tests_mm = pd.concat([report.group_tests(cfg, rows, p, pairs) for p in ("fewshot", "linear", "finetune")],
                     ignore_index=True) if pairs else pd.DataFrame()
found.append(claims.mimic_above_moco_in_domain(scaled, paper_scaled, tests_mm))
tests_ds_sup = report.family_tests(cfg, rows, "fewshot", a="domain-specific", b="supervised")
found.append(claims.small_shift_hurts(scaled, paper_scaled, tests_q2, tests_ds_sup))
""", tags=["hide-input"]),
    md("""
## Claims and verdicts

`paper_verdict` applies the same rule to the paper's published numbers (which have no per-episode outcomes, so
a claim that needs a paired test gets at most "direction only" there); `verdict` is this run's.
"""),
    code("""
table = claims.table(found)
table.style.hide(axis="index").set_uuid("claims")
""", tags=["hide-input"]),
    code("""
# NBVAL_CHECK_OUTPUT
# Claims C1-C5 draw on finetuning, whose predictions move with the CPU's kernels (see the methods page);
# the regression check covers the claims computed from processor-independent numbers only.
for c in found:
    if c.key in ("C6", "C7", "C8"):
        print(f"{c.key}: {c.verdict}")
""", tags=["hide-input"]),
    code("""
counts = table.verdict.value_counts()
glue("rep_n", f"{len(table)}", display=False)
glue("rep_supported", f"{counts.get(claims.SUPPORTED, 0)}", display=False)
glue("rep_direction", f"{counts.get(claims.DIRECTION, 0)}", display=False)
glue("rep_not", f"{counts.get(claims.NOT_SUPPORTED, 0)}", display=False)
glue("rep_untestable", f"{counts.get(claims.UNTESTABLE, 0)}", display=False)
glue("rep_profile", cfg.profile, display=False)
""", tags=["remove-cell"]),
    md("""
Of {glue:text}`rep_n` claims, this run ({glue:text}`rep_profile` profile) supports {glue:text}`rep_supported`,
shows the paper's direction without significance for {glue:text}`rep_direction`, does not support
{glue:text}`rep_not`, and cannot test {glue:text}`rep_untestable`.
"""),
    md("""
## Where the sources disagree

The paper's printed tables and the authors' results file (`results/full_data.csv`) do not always agree. Every
printed value that the file does not reproduce at the printed precision is listed below
(`reference.disagreements()`), with the value the book uses and the claims whose verdict on the paper's numbers
changes when the file's value replaces the printed one (every claim recomputed with that one value swapped).
"""),
    code("""
from medssl_utils.book import sources

disagree = sources.disagreement_table(list(cfg.datasets))
disagree.style.hide(axis="index").set_uuid("disagreements")
""", tags=["hide-input"]),
    code("""
n_changed = int((~disagree.changes_claims.str.startswith(("none", "no other"))).sum())
glue("rep_n_disagree", f"{len(disagree) - 1}", display=False)
glue("rep_n_substantive", f"{int((disagree.kind == 'substantive').sum())}", display=False)
glue("rep_n_changed", f"{n_changed}", display=False)
glue("rep_multiview_stated", disagree.iloc[-1].paper, display=False)
glue("rep_multiview", disagree.iloc[-1].authors_file, display=False)
""", tags=["remove-cell"]),
    md("""
Of the {glue:text}`rep_n_disagree` disagreements ({glue:text}`rep_n_substantive` substantive), swapping in the
file's value changes a claim's verdict on the paper's numbers for {glue:text}`rep_n_changed`. The text's
multi-view correlation on CheXpert ({glue:text}`rep_multiview_stated`, section 5.3) is not what the file gives
over every model that has a value: {glue:text}`rep_multiview`.
"""),
]
write(cells, "reproduction")
