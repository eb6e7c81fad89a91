"""Writes notebooks/q1_supervised_vs_selfsupervised.ipynb (no outputs)."""

from notebook_cells import code, md, parameters_cell, setup_cell, write

cells = [
    md("""
# Q1: Do self-supervised ImageNet models transfer better than supervised ones?

The paper (Anton et al. 2022, section 5.1) compares five self-supervised ImageNet models with three
supervised ones on eight medical datasets, with few-shot, linear and finetune protocols (Tables 3 and 4),
and answers: *self-supervised models outperform supervised ones on the vast majority of tasks*.
This page recomputes the comparison for the models and datasets of the chosen profile and shows the
paper's published numbers beside it. In the `mini` profile every "model" is a pretraining *recipe* of the
mini-zoo, trained with several seeds: cells give the mean over seeds ± the mean 95% CI, with the standard
deviation across seeds in brackets.
"""),
    parameters_cell(),
    setup_cell(),
    code("""
rows = grid.run(cfg, grid.TRANSFER)
print(f"{len(rows)} result rows from {rows.model.nunique()} models on {rows.dataset.nunique()} datasets")
""", tags=["hide-input"]),
    md("""
## Few-shot transfer (Table 3)

Prototypical networks on frozen features: 2-way 20-shot (5-way for the ChestX-ray14 and EyePACS
counterparts), 15 queries per class, mean accuracy over the episodes with its 95% confidence interval.
Every model sees the same episodes. **Bold**: best in the column; underlined: second best. Datasets are in the
paper's order (Table 1).
"""),
    code("""
report.styled(report.run_table(rows, "fewshot"), "q1-table3-run", f"Table 3 counterpart: this run ({cfg.profile} profile)")
""", tags=["hide-input"]),
    code("""
report.styled(report.paper_table("fewshot", list(cfg.datasets)), "q1-table3-paper", "Table 3: the paper's published values")
""", tags=["hide-input"]),
    md("""
## Many-shot transfer (Table 4)

Linear: multinomial logistic regression on frozen features, the L2 constant chosen on the validation split
among 45 log-spaced values, refit on train + validation. Finetune: SGD with Nesterov momentum, early stopping
on validation accuracy. EyePACS (and its counterpart) reports mean per-class accuracy. Intervals are
bootstrap 95% CIs over the test items.
"""),
    code("""
for protocol in ("linear", "finetune"):
    display(report.styled(report.run_table(rows, protocol), f"q1-table4-{protocol}-run",
                          f"Table 4 counterpart ({protocol}): this run"))
""", tags=["hide-input"]),
    code("""
for protocol in ("linear", "finetune"):
    display(report.styled(report.paper_table(protocol, list(cfg.datasets)), f"q1-table4-{protocol}-paper",
                          f"Table 4 ({protocol}): the paper's published values"))
""", tags=["hide-input"]),
    md("""
## Self-supervised vs supervised (Figure 2)

As the paper's Figure 2 defines it: for each task (dataset and protocol) the values are scaled between 0 and 1
across the self-supervised ImageNet and supervised models only (not the domain-specific ones, not random init);
each bar is the mean of the scaled values over the self-supervised models (recipes) or over the supervised ones.
A task on which every model scores the same has no scale and draws no bar. This run (left) and the paper's
published Tables 3 and 4 (right) use the same rule and the same axis.
"""),
    code("""
this_fam = report.family_means(rows)
paper_fam = report.paper_family_means(list(cfg.datasets))
fig2 = report.family_figure(this_fam, paper_fam, title="Figure 2: SSL vs supervised, per task")
""", tags=["hide-input"]),
    md("""
### Are the differences significant?

The paper reports no significance tests. Here every self-supervised vs supervised comparison is paired: the
same few-shot episodes, the same test items. With several pretraining seeds per recipe, the test resamples
seeds and episodes (items) together, and with three or more seeds it also requires a seed-level t-test.
P-values are Holm-corrected over the tasks of each protocol.
"""),
    code("""
tests = pd.concat([report.family_tests(cfg, rows, p) for p in ("fewshot", "linear", "finetune")], ignore_index=True)
report.tests_table(tests, a="SSL", b="supervised")
""", tags=["hide-input"]),
    md("""
### Each recipe against the supervised one

The same paired test, one recipe (or checkpoint) at a time against the supervised reference (the mini
supervised recipe; in the `paper` profile the first supervised checkpoint listed). Cells: difference in points
of accuracy [95% CI over seeds and episodes or test items]; `*` marks the differences the Holm-corrected
bootstrap and seed-level t-test both support. Only those are claimed.
"""),
    code("""
recipe_tests = pd.concat([report.recipe_tests(cfg, rows, p) for p in ("fewshot", "linear", "finetune")],
                         ignore_index=True)
report.recipe_test_table(recipe_tests)
""", tags=["hide-input"]),
    md("""
## Which self-supervised method transfers best? (Figure 3)

As the paper's Figure 3 defines it: few-shot accuracy scaled between 0 and 1 for each dataset across all models
(every family, domain-specific and random init included), then one box per self-supervised ImageNet method, with
the value on each dataset drawn as a dot (one colour per dataset).
"""),
    code("""
fig3 = report.scaled_box_figure(rows, report.paper_scaled_rows(list(cfg.datasets)),
                                title="Figure 3: SSL methods, few-shot, scaled per dataset")
""", tags=["hide-input"]),
    md("""
## Does accuracy on the pretraining source predict transfer? (Figure A4)

The paper plots each ImageNet model's top-1 accuracy against its transfer performance, with Pearson's r and p:
the few-shot panel (accuracy scaled per dataset across all models, averaged over the datasets) and the linear and
finetune accuracies on CheXpert and EyePACS (8 ImageNet models, the authors' values). This run's row uses its own
source accuracy; the x axis says which one it is (for the mini-zoo, which has no ImageNet, the stand-in is each
recipe's linear-probe accuracy on its own natural-image source corpus, mean over seeds).
"""),
    code("""
pts, ppts = report.source_points(rows), report.paper_source_points(list(cfg.datasets))
many, pmany = report.manyshot_source_points(rows), report.paper_manyshot_points()
fig_a4 = report.source_figure(pts, many, ppts, pmany, title="Figure A4: source accuracy vs transfer")
""", tags=["hide-input"]),
    code("""
a4 = report.source_correlations(pts, many).merge(report.source_correlations(ppts, pmany), on="panel",
                                                 suffixes=(" (this run)", " (paper)"))
a4.round(3).style.hide(axis="index").set_uuid("q1-a4-correlations").set_caption(
    "Figure A4: Pearson r and p per panel (NaN: fewer than 3 points or a constant axis)")
""", tags=["hide-input"]),
    code("""
# NBVAL_CHECK_OUTPUT
# Regression check on the processor-independent protocols. Finetuning is left out: its predictions move with
# the CPU's kernels (oneDNN AVX2 vs AVX-512: up to 12 points on a smoke model), see the methods page.
summary = report.summarise(rows[rows.protocol != "finetune"])
for r in summary.sort_values(["protocol", "dataset", "group"]).itertuples():
    print(f"{r.protocol:>8s} {r.dataset:>20s} {r.group:>14s} {r.metric:>24s} {r.value:6.1f}")
""", tags=["hide-input"]),
    code("""
n_tasks = this_fam.dropna(subset=["value"]).task.nunique()
wins = (this_fam.pivot_table(index="task", columns="family", values="value")
        .pipe(lambda t: int((t.get("self-supervised") > t.get("supervised")).sum()) if {"self-supervised", "supervised"} <= set(t.columns) else 0))
paper_t = paper_fam.pivot_table(index="task", columns="family", values="value")
paper_wins = int((paper_t["self-supervised"] > paper_t["supervised"]).sum())
n_sig, n_sig_ssl = report.n_significant(tests), report.n_significant(tests, +1)
glue("q1_wins", f"{wins}", display=False)
glue("q1_tasks", f"{n_tasks}", display=False)
glue("q1_paper_wins", f"{paper_wins}", display=False)
glue("q1_paper_tasks", f"{len(paper_t)}", display=False)
glue("q1_n_tests", f"{len(tests)}", display=False)
glue("q1_n_sig", f"{n_sig}", display=False)
glue("q1_n_sig_ssl", f"{n_sig_ssl}", display=False)
glue("q1_profile", cfg.profile, display=False)
glue("q1_n_recipe_tests", f"{len(recipe_tests)}", display=False)
glue("q1_n_recipe_sig_up", f"{report.n_significant(recipe_tests, +1)}", display=False)
glue("q1_n_recipe_sig_down", f"{report.n_significant(recipe_tests, -1)}", display=False)
pa4 = report.source_correlations(ppts, pmany).set_index("panel")
for key, panel in (("lin_chexpert", "linear CheXpert"), ("lin_eyepacs", "linear EyePACS"),
                   ("ft_chexpert", "finetune CheXpert"), ("ft_eyepacs", "finetune EyePACS")):
    glue(f"q1_a4_{key}_r", f"{pa4.loc[panel, 'r']:.2f}", display=False)
    glue(f"q1_a4_{key}_p", f"{pa4.loc[panel, 'p']:.2f}", display=False)
""", tags=["remove-cell"]),
    md("""
## Answer to Q1 in this run

In this run ({glue:text}`q1_profile` profile) the self-supervised mean is above the supervised mean on
{glue:text}`q1_wins` of {glue:text}`q1_tasks` tasks; in the paper's published numbers for the same tasks it is
above on {glue:text}`q1_paper_wins` of {glue:text}`q1_paper_tasks`. Of the {glue:text}`q1_n_tests` paired
comparisons, {glue:text}`q1_n_sig` are significant after correction ({glue:text}`q1_n_sig_ssl` in favour
of self-supervised pretraining). Recipe by recipe, {glue:text}`q1_n_recipe_sig_up` of
{glue:text}`q1_n_recipe_tests` comparisons with the supervised reference are significantly above it and
{glue:text}`q1_n_recipe_sig_down` significantly below. A difference is claimed only where the test supports it.

On the paper's numbers, ImageNet top-1 correlates with linear CheXpert at r = {glue:text}`q1_a4_lin_chexpert_r`
(p = {glue:text}`q1_a4_lin_chexpert_p`), linear EyePACS r = {glue:text}`q1_a4_lin_eyepacs_r`
(p = {glue:text}`q1_a4_lin_eyepacs_p`), finetune CheXpert r = {glue:text}`q1_a4_ft_chexpert_r`
(p = {glue:text}`q1_a4_ft_chexpert_p`) and finetune EyePACS r = {glue:text}`q1_a4_ft_eyepacs_r`
(p = {glue:text}`q1_a4_ft_eyepacs_p`).
"""),
]
write(cells, "q1_supervised_vs_selfsupervised")
