"""Writes notebooks/q1_supervised_vs_selfsupervised.ipynb (no outputs)."""
from pathlib import Path

import nbformat
from notebook_cells import code, md, notebook, parameters_cell, setup_cell

cells = [
    md("""
# Q1: Do self-supervised ImageNet models transfer better than supervised ones?

The paper (Anton et al. 2022, section 5.1) compares five self-supervised ImageNet models with three
supervised ones on eight medical datasets, with few-shot, linear and finetune protocols (Tables 3 and 4).
This page recomputes that comparison for the models and datasets of the chosen profile.
"""),
    parameters_cell(),
    setup_cell(),
    md("## Few-shot (Table 3)\n\nPrototypical networks, 2-way (5-way for ChestX-ray14 and EyePACS) 20-shot, 15 queries, "
       "mean accuracy over the episodes with its 95% confidence interval. Every model sees the same episodes."),
    code("""
rows = runs.run_grid(cfg, ["fewshot"])
report.pivot(rows, protocol="fewshot")
""", tags=["hide-input"]),
    code("""
fig = report.bar_figure(rows, protocol="fewshot", title=f"Few-shot accuracy ({cfg.profile} profile)")
""", tags=["hide-input"]),
    code("""
# NBVAL_CHECK_OUTPUT
for r in rows.sort_values(["dataset", "model"]).itertuples():
    print(f"{r.model:>24s} {r.dataset:>22s} {r.value:6.1f}")
""", tags=["hide-input"]),
    code("""
best = rows.loc[rows.value.idxmax()]
glue("q1_best_model", report.model_spec(best.model).title, display=False)
glue("q1_best_value", f"{best.value:.1f}", display=False)
glue("q1_n_episodes", f"{cfg.n_episodes}", display=False)
""", tags=["remove-cell"]),
    md("""
In this run the highest few-shot accuracy, {glue:text}`q1_best_value`%, comes from
{glue:text}`q1_best_model` ({glue:text}`q1_n_episodes` episodes per dataset).
"""),
]
nb = notebook(cells)
nbformat.write(nb, Path(__file__).resolve().parents[1] / "notebooks" / "q1_supervised_vs_selfsupervised.ipynb")
