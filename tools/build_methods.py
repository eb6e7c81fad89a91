"""Writes notebooks/methods.ipynb (no outputs): protocol constants, result schema and deviations, from the code."""
from pathlib import Path

import nbformat
from notebook_cells import code, md, notebook, parameters_cell, setup_cell

cells = [
    md("""
# Methods

The protocols follow the paper (section 4.3 for few-shot, linear and finetune; section 4.4 for the
analysis tools). The tables below are read from the code: module constants and keyword defaults
(`inspect.signature`), so they cannot drift from what runs. "Paper" is what the paper states, with the
authors' code's value where the paper is silent; "This profile" shows the value the current profile uses
where it scales a constant down to run on a CPU.
"""),
    parameters_cell(),
    setup_cell(),
    code("""
from medssl_utils import pages
""", tags=["remove-cell"]),
    md("## Protocol constants"),
    code("""
constants = pages.protocol_constants(cfg)
pages.show(constants)
""", tags=["hide-input"]),
    md("""
Few-shot ways per dataset (section 4.3.1) and which datasets get the many-shot protocols (section 4.3.2),
from the registry:
"""),
    code("""
pages.show(pages.fewshot_ways_table())
""", tags=["hide-input"]),
    code("""
fs = constants.set_index("Constant")
glue("m_shots", fs.loc["support images per class (shots)", "Our default"], display=False)
glue("m_query", fs.loc["query images per class", "Our default"], display=False)
glue("m_episodes", fs.loc["episodes", "Our default"], display=False)
glue("m_profile_episodes", f"{cfg.n_episodes}", display=False)
""", tags=["remove-cell"]),
    md("""
Every few-shot episode has {glue:text}`m_shots` support and {glue:text}`m_query` query images per class;
the paper draws {glue:text}`m_episodes` episodes per dataset and this profile {glue:text}`m_profile_episodes`.
"""),
    md("""
## The results table

Every number the book shows is a row of one table; this run's rows and the paper's published values share
its columns (`medssl_utils.results.SCHEMA`).
"""),
    code("""
pages.show(pages.schema_table())
""", tags=["hide-input"]),
    md("""
## Deviations: paper, authors' code, and our defaults

Where the authors' code (jonahanton/SSL_medicalimaging) did something other than the paper states, or
something the paper does not state, our default follows the paper (or the sound choice where it is silent)
and a named switch reproduces the code. The "Default in code" column is read from the code now; "planned"
switches are not written yet. Records: `medssl_utils.deviations.DEVIATIONS`.
"""),
    code("""
dev = pages.deviations_table()
pages.show(dev)
""", tags=["hide-input"]),
    code("""
glue("m_n_dev", f"{len(dev)}", display=False)
glue("m_n_exists", f"{int((dev.Status == 'exists').sum())}", display=False)
""", tags=["remove-cell"]),
    md("""
Of the {glue:text}`m_n_dev` deviations listed, {glue:text}`m_n_exists` have a switch in the code now.
"""),
]
nbformat.write(notebook(cells), Path(__file__).resolve().parents[1] / "notebooks" / "methods.ipynb")
