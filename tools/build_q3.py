"""Writes notebooks/q3_what_features_encode.ipynb (no outputs)."""
from pathlib import Path

import nbformat
from notebook_cells import code, md, notebook, parameters_cell, setup_cell

cells = [
    md("""
# Q3: What do the pretrained features encode?

The paper (sections 4.4 and 5.3) probes the features with occlusion saliency and attentive diffusion,
deep-image-prior inversions scored by perceptual distance, and invariances (Tables A1-A7).
"""),
    parameters_cell(),
    setup_cell(),
    code("""
# NBVAL_CHECK_OUTPUT
print(f"{len(cfg.analysis_models)} analysis models")
""", tags=["hide-input"]),
]
nbformat.write(notebook(cells), Path(__file__).resolve().parents[1] / "notebooks" / "q3_what_features_encode.ipynb")
