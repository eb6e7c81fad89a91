"""The registry records of the nine MedSynth sets: same classes and protocol roles as the real datasets.

Class names and measured invariances are those of the real record (``stands_for``); a test checks it.
Sizes (``n_per_class``) follow the roles, not the real counts: CheXpert and EyePACS are the many-shot
sets, the others few-shot sized, and ``medsynth-cxr-source`` is the large in-domain pretraining pool.
``scale`` multiplies ``n_per_class`` (the CI profile uses about 0.25).
"""
from __future__ import annotations

from functools import partial

from ..registry import DatasetSpec, register
from . import chest, fundus, histology
from .common import make_loader

_SYN = "procedurally generated (MedSynth), no patient data"


def _chest_loader(policy, style, pair_fraction=0.0):
    return make_loader(partial(chest.render_chest, policy=policy, style=style, pair_fraction=pair_fraction),
                       chest.VERSION)


# ---------------------------------------------------------------------------------------------------- chest X-ray
CHESTX14_CLASSES = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumothorax")
SOURCE_CLASSES = ("no finding", "atelectasis", "cardiomegaly", "consolidation", "edema", "pleural effusion")

register(DatasetSpec(
    name="medsynth-chexpert", title="MedSynth-CheXpert (synthetic)", modality="chest X-ray", domain="in",
    classes=("no pleural effusion", "pleural effusion"),
    label_policy="synthetic: positive = basal fluid with a meniscus (pleural-effusion-like); negatives may show "
                 "other findings (cardiomegaly, atelectasis, consolidation, edema, nodule), like CheXpert many-to-one",
    fewshot_ways=2, manyshot=("linear", "finetune"), metric="accuracy",
    fewshot_pool_limit=10_001,
    loader=_chest_loader(chest.policy_single((None, "effusion"),
                                             {"cardiomegaly": 0.15, "atelectasis": 0.12, "consolidation": 0.12,
                                              "edema": 0.1, "nodule": 0.1}),
                         chest.CHEXPERT_STYLE, pair_fraction=0.5),
    options={"n_per_class": 800, "scale": 1.0}, synthetic=True, stands_for="chexpert", multiview=True,
    invariances=("hflip", "multiview"),
    licence=_SYN))

register(DatasetSpec(
    name="medsynth-chestx14", title="MedSynth-ChestX-ray14 (synthetic)", modality="chest X-ray", domain="in",
    classes=CHESTX14_CLASSES,
    label_policy="synthetic: exactly one finding per image (the real set keeps single-finding images of 7 classes)",
    fewshot_ways=5, manyshot=(), metric="accuracy",
    fewshot_pool_limit=10_001,
    loader=_chest_loader(chest.policy_single(("atelectasis", "cardiomegaly", "effusion", "infiltrate", "mass",
                                              "nodule", "pneumothorax")), chest.CHESTX14_STYLE),
    options={"n_per_class": 150, "scale": 1.0}, synthetic=True, stands_for="chestx14", invariances=("hflip",),
    licence=_SYN))

for _name, _title, _real, _style in (("medsynth-montgomery", "MedSynth-Montgomery (synthetic)", "montgomery",
                                      chest.MONTGOMERY_STYLE),
                                     ("medsynth-shenzhen", "MedSynth-Shenzhen (synthetic)", "shenzhen",
                                      chest.SHENZHEN_STYLE)):
    register(DatasetSpec(
        name=_name, title=_title, modality="chest X-ray", domain="in", classes=("normal", "abnormal (tuberculosis)"),
        label_policy="synthetic: positive = upper-lobe patchy opacities, some with cavities (TB-like); "
                     "acquisition style differs from the CXR source",
        fewshot_ways=2, manyshot=(), metric="accuracy",
        fewshot_square_resize=True,
        loader=_chest_loader(chest.policy_single((None, "tb")), _style),
        options={"n_per_class": 150, "scale": 1.0}, synthetic=True, stands_for=_real,
        invariances=("rotation", "hflip"), licence=_SYN))

register(DatasetSpec(
    name="medsynth-cxr-source", title="MedSynth CXR source (synthetic)", modality="chest X-ray", domain="in",
    classes=SOURCE_CLASSES,
    label_policy="synthetic: one CheXpert-competition finding per image (or none); the in-domain pretraining "
                 "pool standing in for MIMIC-CXR-JPG/CheXpert (stands_for is None: that pool is not an "
                 "evaluation dataset of the registry)",
    fewshot_ways=2, manyshot=(), metric="accuracy",
    loader=_chest_loader(chest.policy_single((None, "atelectasis", "cardiomegaly", "consolidation", "edema",
                                              "effusion"), {"nodule": 0.1}),
                         chest.CHEXPERT_STYLE, pair_fraction=0.3),
    options={"n_per_class": 600, "scale": 1.0}, synthetic=True, stands_for=None, multiview=True,
    licence=_SYN))


# ---------------------------------------------------------------------------------------------------- fundus
def _fundus_loader(lesions, style, pair_fraction=0.0):
    return make_loader(partial(fundus.render_fundus, lesions=lesions, style=style, pair_fraction=pair_fraction),
                       fundus.VERSION)


register(DatasetSpec(
    name="medsynth-eyepacs", title="MedSynth-EyePACS (synthetic)", modality="fundus", domain="out",
    classes=("no DR", "mild DR", "moderate DR", "severe DR", "proliferative DR"),
    label_policy="synthetic: diabetic-retinopathy-like grade 0-4; microaneurysm dots, haemorrhages and exudates "
                 "grow with grade, new-vessel tufts at grade 4; left/right eyes of one patient share the grade",
    fewshot_ways=5, manyshot=("linear", "finetune"), metric="mean_per_class_accuracy",
    fewshot_pool_limit=10_001,
    loader=_fundus_loader(fundus.dr_lesions, fundus.EYEPACS_STYLE, pair_fraction=1.0),
    options={"n_per_class": 300, "scale": 1.0}, synthetic=True, stands_for="eyepacs", multiview=True,
    invariances=("rotation", "hue", "multiview"),
    licence=_SYN))

register(DatasetSpec(
    name="medsynth-amd", title="MedSynth-iChallenge-AMD (synthetic)", modality="fundus", domain="out",
    classes=("non-AMD", "AMD"),
    label_policy="synthetic: positive = a cluster of yellow drusen at the macula (healthy eyes may show 0-2)",
    fewshot_ways=2, manyshot=(), metric="accuracy",
    fewshot_square_resize=True,
    loader=_fundus_loader(fundus.amd_lesions, fundus.AMD_STYLE),
    options={"n_per_class": 200, "scale": 1.0}, synthetic=True, stands_for="ichallenge_amd", invariances=("rotation",),
    licence=_SYN))

register(DatasetSpec(
    name="medsynth-pm", title="MedSynth-iChallenge-PM (synthetic)", modality="fundus", domain="out",
    classes=("normal or high myopia", "pathological myopia"),
    label_policy="synthetic: {normal + high myopia} vs {pathological myopia}, as the paper; high myopia shows "
                 "tessellation and a small peripapillary crescent, pathological myopia a wide atrophic halo "
                 "and patchy atrophy",
    fewshot_ways=2, manyshot=(), metric="accuracy",
    fewshot_square_resize=True,
    loader=_fundus_loader(fundus.pm_lesions, fundus.PM_STYLE),
    options={"n_per_class": 200, "scale": 1.0}, synthetic=True, stands_for="ichallenge_pm", invariances=("rotation",),
    licence=_SYN))


# ---------------------------------------------------------------------------------------------------- histology
register(DatasetSpec(
    name="medsynth-bach", title="MedSynth-BACH (synthetic)", modality="histology", domain="out",
    classes=histology.CLASSES,
    label_policy="synthetic: 4 ordinal classes (normal, benign, in situ, invasive) told apart by gland "
                 "architecture, nuclear density, size and atypia; H&E stain vectors jittered per image",
    fewshot_ways=2, manyshot=(), metric="accuracy",
    fewshot_square_resize=True,
    loader=make_loader(histology.render_histology, histology.VERSION),
    options={"n_per_class": 100, "scale": 1.0}, synthetic=True, stands_for="bach", invariances=("hue",), licence=_SYN))
