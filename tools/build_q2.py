"""Writes notebooks/q2_domain_specific.ipynb (no outputs)."""

from notebook_cells import code, md, parameters_cell, setup_cell, write

cells = [
    md("""
# Q2: Does domain-specific self-supervised pretraining help, in and out of domain?

The paper (section 5.2) compares the chest-X-ray self-supervised models (MIMIC-CheXpert, MoCo-CXR) with the
ImageNet models on in-domain (chest X-ray) and out-of-domain (fundus, histology) datasets, and answers: *yes,
provided the downstream task is in the same domain; out of domain their performance drops significantly*
(Figures 4 and 5). In the `mini` profile the domain-specific models are the mini-zoo's analogues: MoCo on the
synthetic chest-X-ray source set, initialised from the supervised model (MoCo-CXR-like), and supervised then
MoCo on that set (MIMIC-CheXpert-like).
"""),
    parameters_cell(),
    setup_cell(),
    code("""
rows = grid.run(cfg, grid.TRANSFER)
this = report.scaled_task_rows(rows)
paper = report.paper_scaled_task_rows(list(cfg.datasets))
""", tags=["hide-input"]),
    md("""
## In-domain vs out-of-domain by model type (Figure 4)

As the paper's Figure 4 defines it: performance is scaled between 0 and 1 within each task (dataset and protocol)
across all models, averaged over each model type, then over the datasets of the domain; error bars are 1 sigma
across the individual models averaged over (population SD). The model types are the self-supervised ImageNet
models, the supervised ones and MIMIC-CheXpert only: the paper leaves MoCo-CXR out of this figure for its clearly
inferior results (section 5.2). A model counts as MIMIC-CheXpert by what it stands for in the registry, so in the
`mini` profile the mini-zoo's MIMIC-CheXpert recipe plays that part. The paper's tables print one MIMIC-CheXpert
row (the best of its three variants), so its bar has no spread.
"""),
    code("""
fig4 = report.domain_figure(this, paper, title="Figure 4: model types in and out of domain")
""", tags=["hide-input"]),
    md("""
## The domain-specific models task by task (Figure 5)
"""),
    code("""
fig5 = report.domain_specific_figure(this, paper, title="Figure 5: domain-specific models, scaled per task")
""", tags=["hide-input"]),
    md("""
## Paired tests: domain-specific vs ImageNet self-supervised

Same episodes and test items for both; seeds and episodes resampled together; Holm correction over the tasks
of each protocol.
"""),
    code("""
tests = pd.concat([report.family_tests(cfg, rows, p, a="domain-specific", b="self-supervised")
                   for p in ("fewshot", "linear", "finetune")], ignore_index=True)
if len(tests):
    tests = tests.assign(domain=[report.domain_of(d) for d in tests.dataset])
report.tests_table(tests, a="domain-specific", b="SSL") if len(tests) else "no domain-specific models in this run"
""", tags=["hide-input"]),
    code("""
# NBVAL_CHECK_OUTPUT
# Few-shot and linear tasks only: finetuning moves with the CPU's kernels (see the methods page).
dom = this[this.protocol != "finetune"].groupby(["domain", "family"]).scaled.mean().unstack()
print(dom.round(2).to_string())
""", tags=["hide-input"]),
    code("""
def gap(df, domain):   # Figure 4's bars: MIMIC-CheXpert minus SSL, mean over the protocols (claim C5)
    return report.figure4_gap(report.domain_type_summary(df), domain)

def sig_count(domain, sign):
    return report.n_significant(tests[tests.domain == domain], sign) if len(tests) else 0

glue("q2_gap_in", f"{gap(this, 'in'):+.2f}", display=False)
glue("q2_gap_out", f"{gap(this, 'out'):+.2f}", display=False)
glue("q2_paper_gap_in", f"{gap(paper, 'in'):+.2f}", display=False)
glue("q2_paper_gap_out", f"{gap(paper, 'out'):+.2f}", display=False)
glue("q2_sig_better_in", f"{sig_count('in', +1)}", display=False)
glue("q2_sig_worse_out", f"{sig_count('out', -1)}", display=False)
glue("q2_n_in", f"{int((tests.domain == 'in').sum()) if len(tests) else 0}", display=False)
glue("q2_n_out", f"{int((tests.domain == 'out').sum()) if len(tests) else 0}", display=False)
""", tags=["remove-cell"]),
    md("""
## Answer to Q2 in this run

On Figure 4's scaled performance, MIMIC-CheXpert minus ImageNet self-supervised is {glue:text}`q2_gap_in` in domain
and {glue:text}`q2_gap_out` out of domain in this run; in the paper's published numbers for the same tasks it
is {glue:text}`q2_paper_gap_in` and {glue:text}`q2_paper_gap_out`. The paired tests find the domain-specific
models significantly better on {glue:text}`q2_sig_better_in` of {glue:text}`q2_n_in` in-domain tasks and
significantly worse on {glue:text}`q2_sig_worse_out` of {glue:text}`q2_n_out` out-of-domain tasks.
"""),
]
write(cells, "q2_domain_specific")
