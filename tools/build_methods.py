"""Writes notebooks/methods.ipynb (no outputs): protocol constants, result schema and deviations, from the code."""

from notebook_cells import code, md, parameters_cell, setup_cell, write

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
from medssl_utils.book import pages
""", tags=["remove-cell"]),
    md("""
## Parameters

Every notebook starts with the same parameters cell; a profile (`medssl_utils/profiles/*.yml`) or
`papermill -p` / `medssl run -p` sets them. The cell, this table and the profile checks are all generated from
one declaration per parameter (`medssl_utils.config.Config`).
"""),
    code("""
pages.show(config.parameters_table(cfg))
""", tags=["hide-input"]),
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
switches are not written yet. Records: `medssl_utils.book.deviations.DEVIATIONS`.
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

## Same numbers on every machine

Processors differ in the floating-point kernels they run: OpenBLAS picks one per processor (some machines
override it with `OPENBLAS_CORETYPE`), oneDNN picks AVX2 or AVX-512 code for PyTorch's convolutions, and thread
counts differ. What this does to each protocol, measured on the project's 2-core machines (2026-12-02):

- **Few-shot**: nearest-prototype decisions on cached features; the regression-checked means (0.1 points)
  came out identical in a fresh clone run with OpenBLAS's Haswell kernel and PyTorch's oneDNN, ATen and MKL
  code held to AVX2, against notebooks made with the processor's own AVX-512 kernels.
- **Linear**: with the authors' solver settings (lbfgs, tolerance 1e-4, raw features) the selected C changed
  between OpenBLAS kernels on 34 of 84 test problems (synthetic near-ties plus the smoke and mini features).
  The defaults here standardise the features on train and converge each fit (Newton-Cholesky, tolerance 1e-8):
  the selected C, the predictions and the probabilities to 8 decimals were then identical on all 84 problems
  under two kernels (Haswell, SkylakeX) and one or two threads. `tests/test_linear_determinism.py` checks 24
  of them under three kernels (adding Sandybridge) on every run.
- **Finetune**: deterministic on one machine, but a short finetune amplifies the ~1e-7 differences between
  oneDNN's AVX2 and AVX-512 kernels into other predictions: on the smoke profile the randomly initialised
  model's CheXpert† accuracy was 64.1 % with one and 75.8 % with the other (supervised: 85.2 vs 82.8 %);
  running in float64 did not remove it (77.3 vs 74.2 %). Compare finetune numbers across machines with their
  confidence intervals; the regression tests check only the few-shot, linear and Q3 numbers.
"""),
]
write(cells, "methods")
