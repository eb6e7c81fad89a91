"""Names: registry names, the names in the authors' file and the names the paper prints; one row helper."""
from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from ..errors import MedsslError


HERE = Path(__file__).parent
AUTHORS_FILE = HERE / "SSL_medicalimaging_full_data.csv"
AUTHORS_SOURCE = "authors' results file"
AUTHORS_CODE = "jonahanton/SSL_medicalimaging@77fceef"
PROFILE = "published"


class ReferenceDataError(MedsslError):
    pass


MODELS = ("simclr_v1", "moco_v2", "swav", "byol", "pirl", "supervised_r50", "supervised_r18", "supervised_d121",
          "mimic_chexpert_lr0.01", "mimic_chexpert_lr0.1", "mimic_chexpert_lr1.0", "moco_cxr_r18", "moco_cxr_d121")

# Authors' file "Models" column -> registry name. In the authors' code "mimic-cxr" means MoCo-CXR.
FILE_MODELS = {
    "simclrv1": "simclr_v1", "mocov2": "moco_v2", "swav": "swav", "byol": "byol", "pirl": "pirl",
    "supervised r50": "supervised_r50", "supervised r18": "supervised_r18", "supervised d121": "supervised_d121",
    "mimic-chexpert lr=0.01": "mimic_chexpert_lr0.01", "mimic-chexpert lr=0.1": "mimic_chexpert_lr0.1",
    "mimic-chexpert lr=1.0": "mimic_chexpert_lr1.0", "mimic-cxr r18": "moco_cxr_r18", "mimic-cxr d121": "moco_cxr_d121",
}

# Dataset names used in the authors' file -> registry name (stoic, cifar10, imagenet kept as extra names).
FILE_DATASETS = {
    "shenzhencxr": "shenzhen", "montgomerycxr": "montgomery", "bach": "bach", "iChallengeAMD": "ichallenge_amd",
    "iChallengePM": "ichallenge_pm", "chexpert": "chexpert", "stoic": "stoic", "diabetic retinopathy": "eyepacs",
    "chestx": "chestx14", "cifar10": "cifar10", "imagenet": "imagenet",
}

# The paper prints one row per family; the family stands for these variants.
FAMILIES = {
    "mimic_chexpert_best": ("mimic_chexpert_lr0.01", "mimic_chexpert_lr0.1", "mimic_chexpert_lr1.0"),
    "moco_cxr_best": ("moco_cxr_r18", "moco_cxr_d121"),
}
FAMILY_NOTE = {
    "mimic_chexpert_best": "paper s4.1: three MIMIC-CheXpert models (MoCo lr 0.01, 0.1, 1.0) are considered, "
                           "'however often only the results for the best performing one is presented'",
    "moco_cxr_best": "paper s4.1: MoCo-CXR ResNet-18 and DenseNet-121 are both considered; the tables print one "
                     "MoCo-CXR row",
}

MODEL_GROUP = {**{m: "ssl" for m in MODELS[:5]}, **{m: "supervised" for m in MODELS[5:8]},
               **{m: "domain_specific" for m in MODELS[8:]},
               **{f: "domain_specific" for f in FAMILIES}}

# How the paper prints model names: Table 3 (long) and Table 4 / appendix tables (short).
MODEL_DISPLAY = {
    "simclr_v1": "SimCLR-v1", "moco_v2": "MoCo-v2", "swav": "SwAV", "byol": "BYOL", "pirl": "PIRL",
    "supervised_r50": "Supervised (r50)", "supervised_r18": "Supervised (r18)", "supervised_d121": "Supervised (d121)",
    "mimic_chexpert_lr0.01": "MIMIC-CheXpert (lr 0.01)", "mimic_chexpert_lr0.1": "MIMIC-CheXpert (lr 0.1)",
    "mimic_chexpert_lr1.0": "MIMIC-CheXpert (lr 1.0)", "moco_cxr_r18": "MoCo-CXR (r18)",
    "moco_cxr_d121": "MoCo-CXR (d121)", "mimic_chexpert_best": "MIMIC-CheXpert", "moco_cxr_best": "MoCo-CXR",
}
MODEL_DISPLAY_SHORT = {**MODEL_DISPLAY, "simclr_v1": "SimCLR", "moco_v2": "MoCo"}
_PAPER_LABEL_TO_MODEL = {**{v: k for k, v in MODEL_DISPLAY.items()}, "SimCLR": "simclr_v1", "MoCo": "moco_v2"}

# Dataset names as printed: Table 1 (long), Table 3 column headers (short).
DATASET_DISPLAY = {
    "chexpert": "CheXpert", "shenzhen": "Shenzhen-CXR", "montgomery": "Montgomery-CXR", "chestx14": "ChestX-ray14",
    "bach": "BACH", "eyepacs": "EyePACS", "ichallenge_amd": "iChallenge-AMD", "ichallenge_pm": "iChallenge-PM",
    "stoic": "STOIC", "cifar10": "CIFAR10", "imagenet": "ImageNet",
}
DATASET_DISPLAY_SHORT = {**DATASET_DISPLAY, "shenzhen": "Shenzhen", "montgomery": "Montgomery", "chestx14": "ChestX",
                         "ichallenge_amd": "iC-AMD", "ichallenge_pm": "iC-PM"}
PAPER_DATASETS = ("chexpert", "shenzhen", "montgomery", "chestx14", "bach", "eyepacs", "ichallenge_amd",
                  "ichallenge_pm")
# Every column header the paper prints (incl. its typo "Montomery") -> registry name.
_PAPER_HEADER_TO_DATASET = {**{v: k for k, v in DATASET_DISPLAY.items()},
                            **{v: k for k, v in DATASET_DISPLAY_SHORT.items()}, "Montomery": "montgomery"}

FEWSHOT_WAYS = {"chestx14": 5, "eyepacs": 5}          # all others 2-way (paper s4.3.1)
FEWSHOT_SETTING = {"n_shot": 20, "n_query": 15, "episodes": 600, "seed": 0,
                   "ci": "1.96 * population std / sqrt(600) of per-episode accuracies"}

# Facts attached to rows (AUTHORS_CODE.md §0, §3, §5); they explain numbers, they change none.
_DATASET_NOTES = {
    ("fewshot", "ichallenge_pm"): {"pm_label_mapping": "normal vs (high myopia + pathological): the mapping in "
                                   "the authors' code when the PM numbers were committed (before 05f38d1); the "
                                   "paper's s4.2.2 describes (normal + high myopia) vs pathological"},
    ("fewshot", "chexpert"): {"chexpert_uncertain": "U-Ones (uncertain -> positive), Pleural Effusion vs rest"},
    ("linear", "chexpert"): {"chexpert_uncertain": "effectively U-Zeros (uniform(0.55,0.85) cast to int), "
                             "Pleural Effusion vs rest"},
    ("finetune", "chexpert"): {"chexpert_uncertain": "effectively U-Zeros (uniform(0.55,0.85) cast to int), "
                               "Pleural Effusion vs rest"},
}
# Test-set sizes of the authors' splits (AUTHORS_CODE.md §3) for many-shot rows; ImageNet val for top-1.
_N_ITEMS = {("linear", "chexpert"): 89365, ("finetune", "chexpert"): 89365,
            ("linear", "eyepacs"): 53576, ("finetune", "eyepacs"): 53576, ("imagenet", "imagenet"): 50000}
_N_BY_PROTOCOL = {"fewshot": 600, "invariance": 100, "saliency": 1, "reconstruction": 1}
_MANYSHOT_METRIC = {"chexpert": "accuracy", "eyepacs": "mean_per_class_accuracy"}
_LPIPS = {"alexnet": "lpips_alex", "vgg": "lpips_vgg", "squeezenet": "lpips_squeeze", "average": "lpips_mean"}


def _question(protocol: str, model: str) -> str:
    if protocol in ("saliency", "reconstruction", "invariance"):
        return "Q3"
    return "Q2" if MODEL_GROUP.get(model) == "domain_specific" else "Q1"


def _dec(text: str, where: str) -> Decimal | None:
    """Parse a number exactly as written (so rounding comparisons are exact); empty -> None."""
    text = (text or "").strip()
    if text == "" or text.lower() == "nan":
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ReferenceDataError(f"{where}: expected a number, got {text!r}") from None


def _decimals(d: Decimal) -> int:
    return max(0, -d.as_tuple().exponent)


def _row(*, protocol, model, dataset, metric, value, source, extra, ci_half=None, code_version="") -> dict:
    n = _N_ITEMS.get((protocol, dataset), _N_BY_PROTOCOL.get(protocol, np.nan))
    extra = {**extra, **_DATASET_NOTES.get((protocol, dataset), {})}
    if protocol == "fewshot":
        extra = {"n_way": FEWSHOT_WAYS.get(dataset, 2), **FEWSHOT_SETTING, **extra}
    if (protocol, dataset) in _N_ITEMS and protocol != "imagenet":
        extra["n_note"] = "test items of the authors' split (AUTHORS_CODE.md §3)"
    v = float(value)
    return {
        "question": _question(protocol, model), "protocol": protocol, "model": model, "dataset": dataset,
        "metric": metric, "value": v,
        "ci_low": float(value - ci_half) if ci_half is not None else np.nan,
        "ci_high": float(value + ci_half) if ci_half is not None else np.nan,
        "n": n, "seed": 0 if protocol in ("fewshot", "invariance") else np.nan,
        "profile": PROFILE, "source": source, "cache_key": "", "code_version": code_version,
        "extra": json.dumps(extra, sort_keys=True),
    }
