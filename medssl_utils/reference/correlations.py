"""Correlations the paper states (and the ones it only shows in figures)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .names import (
    AUTHORS_FILE, DATASET_DISPLAY, DATASET_DISPLAY_SHORT, FAMILIES, FILE_DATASETS, FILE_MODELS, MODELS,
    MODEL_DISPLAY, MODEL_DISPLAY_SHORT, PAPER_DATASETS, ReferenceDataError,
)
from .paper import PAPER_TABLES, dataset_table, paper_rows
from .authors import authors_models, authors_rows, identical_values, reference_rows
from .compare import best_of_matches, disagreements


_CORR_COLUMNS = ["where", "source", "what", "x", "y", "x_protocol", "x_metric", "x_dataset", "y_protocol",
                 "y_metric", "y_dataset", "models", "r", "p", "claim", "note"]


def published_correlations() -> pd.DataFrame:
    """Every Pearson r / p the paper states in its text, plus one row per correlation its figures show only as
    images (r, p = NaN) so the book can recompute them all and print the stated value beside.

    Only one r/p pair is in the paper's text (s5.3, multi-view invariance vs CheXpert performance). Figure 7 and
    Figures A1-A4 overlay their r/p on the plot images, which the text copy does not contain; their claims are
    kept as words. Three values the authors' notebook printed (Figure A4's analysis) are added with
    source 'authors' notebook' (quoted in AUTHORS_CODE.md §6)."""
    rows = []

    def add(where, source, what, x, y, models, r=np.nan, p=np.nan, claim="", note=""):
        rows.append({"where": where, "source": source, "what": what, "x": f"{x[0]}/{x[1]} on {x[2]}",
                     "y": f"{y[0]}/{y[1]} on {y[2]}", "x_protocol": x[0], "x_metric": x[1], "x_dataset": x[2],
                     "y_protocol": y[0], "y_metric": y[1], "y_dataset": y[2], "models": models, "r": r, "p": p,
                     "claim": claim, "note": note})

    fs = lambda ds: ("fewshot", "accuracy", ds)  # noqa: E731
    add("s5.3 (also Figure A1)", "paper", "multi-view invariance vs transfer performance on CheXpert",
        ("invariance", "invariance_multiview", "chexpert"), fs("chexpert"), "not stated", 0.82, 0.0068,
        "clear correlation between multi-view invariance and transfer performance",
        "from the authors' file, few-shot CheXpert vs multi-view CheXpert over the 9 models that have a value "
        "other than mimic_chexpert_lr0.01 gives r=0.820, p=0.0068; with all 10 models r=0.24 (p=0.50)")
    add("Figure 7 caption; s5.3", "paper", "attentive diffusion vs few-shot accuracy on CheXpert",
        ("saliency", "attentive_diffusion", "chexpert"), fs("chexpert"), "all models",
        claim="'clear linear relationship' for in-domain data and domain-specific models; the caption explains "
              "that r close to -1 with p close to 0 is a strong negative correlation",
        note="r and p are overlaid on the figure image only")
    ds_for_inv = [("invariance_rotation", d) for d in ("shenzhen", "montgomery", "eyepacs", "ichallenge_amd",
                                                        "ichallenge_pm")] + \
                 [("invariance_hflip", d) for d in ("shenzhen", "montgomery", "chestx14", "chexpert")] + \
                 [("invariance_hue", d) for d in ("eyepacs", "bach")] + \
                 [("invariance_multiview", "eyepacs")]
    for metric, d in ds_for_inv:
        add("Figure A1", "paper", f"{metric} vs few-shot accuracy on {d}", ("invariance", metric, d), fs(d),
            "models with an invariance value", claim="no significant correlation (high p values)",
            note="r and p are overlaid on the figure image only")
    for d in PAPER_DATASETS:
        add("Figure A2; s5.3", "paper", f"attentive diffusion vs few-shot accuracy on {d}",
            ("saliency", "attentive_diffusion", d), fs(d), "all models",
            claim=("linear relation for in-domain data" if d in ("chexpert", "chestx14", "montgomery", "shenzhen")
                   else "no relation between attentive diffusion and transfer accuracy out of domain"),
            note="r and p are overlaid on the figure image only; 'transfer performance' taken as few-shot")
        add("Figure A3; s5.3", "paper", f"mean LPIPS distance vs few-shot accuracy on {d}",
            ("reconstruction", "lpips_mean", d), fs(d), "all models",
            claim="no linear fit appropriate (no fit with reduced chi-square below 1.5); no significant correlation",
            note="r and p are overlaid on the figure image only; 'transfer performance' taken as few-shot")
        add("Figure A4; s5.1", "paper", f"ImageNet top-1 vs few-shot accuracy on {d}",
            ("imagenet", "accuracy", "imagenet"), fs(d), "the 8 ImageNet-pretrained models",
            claim="no significant correlations",
            note="r and p are overlaid on the figure image only; 'transfer performance' taken as few-shot")
    nb = "authors' notebook transfer_performance_top_1_imagenet_correlation.ipynb (AUTHORS_CODE.md §6)"
    for d, r, p, extra in (("shenzhen", -0.672, 0.068, {}), ("cifar10", 0.835, 0.0099, {"n_way": 2}),
                           ("eyepacs", -0.39, np.nan, {})):
        add("Figure A4 analysis", nb, f"ImageNet top-1 vs few-shot accuracy on {d}",
            ("imagenet", "accuracy", "imagenet"), fs(d), "the 8 ImageNet-pretrained models", r, p,
            claim="printed in the notebook output", note=json.dumps(extra) if extra else "")
    return pd.DataFrame(rows, columns=_CORR_COLUMNS)


__all__ = [
    "paper_rows", "authors_rows", "reference_rows", "dataset_table", "disagreements", "best_of_matches",
    "published_correlations", "identical_values", "authors_models", "MODELS", "FILE_MODELS", "FILE_DATASETS",
    "FAMILIES", "MODEL_DISPLAY", "MODEL_DISPLAY_SHORT", "DATASET_DISPLAY", "DATASET_DISPLAY_SHORT",
    "PAPER_DATASETS", "PAPER_TABLES", "ReferenceDataError", "AUTHORS_FILE",
]
