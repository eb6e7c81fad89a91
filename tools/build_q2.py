"""Writes notebooks/q2_domain_specific.ipynb (no outputs)."""
from pathlib import Path

import nbformat
from notebook_cells import code, md, notebook, parameters_cell, setup_cell

cells = [
    md("""
# Q2: Does domain-specific self-supervised pretraining help, in and out of domain?

The paper (section 5.2) compares the chest-X-ray self-supervised models (MIMIC-CheXpert, MoCo-CXR) with the
ImageNet models on in-domain (chest X-ray) and out-of-domain (fundus, histology) datasets (Figures 4 and 5).
"""),
    parameters_cell(),
    setup_cell(),
    code("""
rows = runs.run_grid(cfg, ["fewshot"])
rows = rows.assign(domain=[report.dataset_spec(d).domain for d in rows.dataset])
rows.groupby(["model", "domain"]).value.mean().unstack().round(2)
""", tags=["hide-input"]),
    code("""
# NBVAL_CHECK_OUTPUT
print(rows.groupby("domain").value.mean().round(1).to_string())
""", tags=["hide-input"]),
]
nbformat.write(notebook(cells), Path(__file__).resolve().parents[1] / "notebooks" / "q2_domain_specific.ipynb")
