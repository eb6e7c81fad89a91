"""The paper's published numbers and the authors' raw results file, as rows of the results schema.

Why this exists: every number the book prints beside a number of this run must come from a row that
says where it came from. Two published sources are kept apart, because they do not always agree:

* ``paper_rows()``: the printed tables of Anton et al., J. Imaging 2022, 8(12):320 (Tables 3, 4, A1-A7),
  transcribed as printed (``source = "paper Table 3"`` etc.). Table 1 is ``dataset_table()``.
* ``authors_rows()``: the authors' ``results/full_data.csv`` (jonahanton/SSL_medicalimaging, last commit
  2022-12-08), kept verbatim in this folder and parsed here (``source = "authors' results file"``).

``disagreements()`` lists every printed value that the file does not reproduce at the printed precision;
``best_of_matches()`` shows which variant(s) lie behind the paper's one-row-per-family entries
(MIMIC-CheXpert = three learning rates, MoCo-CXR = two backbones). PROVENANCE.md has the details.

Units: accuracies in percent (few-shot, linear, finetune, ImageNet top-1); attentive diffusion, LPIPS
distances and invariance cosine similarities as the paper prints them (fractions / raw similarities).
Metric names used here: ``accuracy``, ``mean_per_class_accuracy`` (EyePACS linear/finetune),
``attentive_diffusion``, ``lpips_alex``, ``lpips_vgg``, ``lpips_squeeze``, ``lpips_mean`` (average of the
three), ``invariance_rotation``, ``invariance_hflip``, ``invariance_hue``, ``invariance_multiview``.
Paper rows for the families use the model names ``mimic_chexpert_best`` and ``moco_cxr_best``.
"""
from __future__ import annotations

from .names import (  # noqa: F401
    HERE, AUTHORS_FILE, AUTHORS_SOURCE, AUTHORS_CODE, PROFILE, ReferenceDataError, MODELS, FILE_MODELS,
    FILE_DATASETS, FAMILIES, FAMILY_NOTE, MODEL_GROUP, MODEL_DISPLAY, MODEL_DISPLAY_SHORT, DATASET_DISPLAY,
    DATASET_DISPLAY_SHORT, PAPER_DATASETS, FEWSHOT_WAYS, FEWSHOT_SETTING,
)
from .paper import PAPER_TABLES, paper_rows, dataset_table  # noqa: F401
from .authors import authors_models, authors_rows, reference_rows, identical_values  # noqa: F401
from .compare import best_of_matches, disagreements  # noqa: F401
from .correlations import published_correlations  # noqa: F401
