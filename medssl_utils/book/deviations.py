"""Where the authors' code did something other than the paper says, and the switch that reproduces it.

Why this exists: the book must say, for every such difference, what we run by default and how to run what
the authors ran. Each record names a real parameter (module, function or registry record, parameter,
default, the value that reproduces the code), so ``tests/test_pages.py`` can check that the switch exists
and that its default is the one stated here; the methods page renders the same records.

Provenance of the facts: the paper (Anton et al., J. Imaging 2022, 8(12):320, sections as cited) and the
project's reading of the authors' code (jonahanton/SSL_medicalimaging @77fceef), written up in
``reference/AUTHORS_CODE.md`` (section 5 table items and sections 0, 3 and 4, cited per record as ``notes``).
Facts only; the wording here is ours.

``status``: ``"exists"`` = the switch is in the code now; ``"planned"`` = not written yet (the test skips
it and lists it).
"""
from __future__ import annotations

from ..errors import MedsslError

import importlib
import json
import inspect
from dataclasses import dataclass
from typing import Any

STATUSES = ("exists", "planned")
_UNSET = object()


class DeviationError(MedsslError, LookupError):
    """A named switch does not exist where its record says; the message names module, target, parameter."""


@dataclass(frozen=True)
class Switch:
    """A parameter that changes behaviour: a function's keyword, or a dataset registry record's option."""

    module: str        # importable module, e.g. "medssl_utils.protocols.finetune"
    target: str        # attribute of the module: a function, or a DatasetSpec (its ``options`` hold the switch)
    parameter: str
    default: Any       # our default, as documented; the test checks the code agrees
    code_value: Any    # the value that reproduces the authors' code
    via: str = ""      # how a user sets it, when the parameter is reached through another call

    @property
    def where(self) -> str:
        return f"{self.module}.{self.target}({self.parameter}=...)"

    def resolve(self) -> Any:
        """The default the code has now (a function's keyword default or the record's option)."""
        try:
            mod = importlib.import_module(self.module)
        except ImportError as exc:
            raise DeviationError(f"module {self.module!r} cannot be imported ({exc})") from None
        obj = getattr(mod, self.target, _UNSET)
        if obj is _UNSET:
            raise DeviationError(f"{self.module} has no attribute {self.target!r}")
        options = getattr(obj, "options", None)
        if isinstance(options, dict) and hasattr(obj, "synthetic"):     # a DatasetSpec
            if self.parameter not in options:
                raise DeviationError(f"dataset {obj.name!r} ({self.module}.{self.target}) has no option "
                                     f"{self.parameter!r}; it has {sorted(options)}")
            return options[self.parameter]
        if not callable(obj):
            raise DeviationError(f"{self.module}.{self.target} is neither a function nor a DatasetSpec")
        params = inspect.signature(obj).parameters
        if self.parameter not in params:
            raise DeviationError(f"{self.module}.{self.target} has no parameter {self.parameter!r}; "
                                 f"it has {list(params)}")
        default = params[self.parameter].default
        if default is inspect.Parameter.empty:
            raise DeviationError(f"{self.module}.{self.target}: parameter {self.parameter!r} has no default")
        return default

    @property
    def usage(self) -> str:
        """How to set the authors' value: a notebook ``options`` entry for datasets, a keyword otherwise."""
        if self.via:
            return self.via
        try:
            obj = getattr(importlib.import_module(self.module), self.target)
            name = getattr(obj, "name", None) if hasattr(obj, "synthetic") else None
        except (ImportError, AttributeError):
            name = None
        if name:
            return "options=" + json.dumps({"datasets": {name: {self.parameter: self.code_value}}})
        return f"{self.target}(..., {self.parameter}={self.code_value!r})"


@dataclass(frozen=True)
class Deviation:
    key: str
    name: str
    paper_section: str     # where the paper speaks about it (or is silent)
    paper: str             # what the paper says
    code: str              # what the authors' code did
    ours: str              # our default and why
    switch: Switch
    notes: str             # AUTHORS_CODE.md section (and item)
    status: str = "exists"

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"deviation {self.key!r}: status {self.status!r}; expected one of {STATUSES}")


_F = "medssl_utils.protocols.finetune"
_L = "medssl_utils.protocols.linear"
_FS = "medssl_utils.protocols.fewshot"
_S = "medssl_utils.analysis.saliency"
_I = "medssl_utils.analysis.invariance"
_R = "medssl_utils.analysis.reconstruction"
_P = "medssl_utils.models.preprocessing"

DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "chexpert_uncertain", "CheXpert uncertain labels", "4.2.2",
        "Pleural Effusion positive, every other finding and no finding negative; uncertain mentions not discussed.",
        "Few-shot: uncertain (-1) -> positive (U-Ones). Linear and finetune: U(0.55, 0.85) cast to int, i.e. "
        "negative (U-Zeros in effect).",
        "uncertain = negative ('zeros'): only confirmed effusions are positive, which is also what the many-shot "
        "runs did.",
        Switch("medssl_utils.data.real.chexpert", "SPEC", "uncertain", "zeros", "ones"),
        "section 5 item 2; section 0 item 4"),
    Deviation(
        "pm_grouping", "iChallenge-PM label grouping", "4.2.2",
        "normal + high myopia negative, pathological myopia positive.",
        "When the published PM numbers were computed: normal negative, high + pathological myopia positive "
        "(changed in the repository on 2022-04-26, after those results).",
        "the paper's grouping.",
        Switch("medssl_utils.data.real.ichallenge", "PM", "pm_grouping", "normal_high_vs_pathological",
               "normal_vs_myopic"),
        "section 5 item 1; section 0 item 3"),
    Deviation(
        "chexpert_split", "CheXpert train/test split", "4.3.2 (silent)",
        "Not stated.",
        "train.csv shuffled (seed 42) and cut 60 % / 40 % (89,365 test rows), frontal and lateral views mixed, "
        "the official validation set ignored.",
        "the authors' 60/40 of train.csv (registry split random_60_40, stratified, our seed), since the paper is "
        "silent; official_valid=True uses the publisher's validation set as the test split instead.",
        Switch("medssl_utils.data.real.chexpert", "SPEC", "official_valid", False, False),
        "section 0 item 4; section 3"),
    Deviation(
        "finetune_restore_best", "Finetune: restore the best weights at early stopping", "4.3.2",
        "Early stopping with patience 3 on validation accuracy, checked every 200 steps.",
        "The saved 'best' state dict aliased the live tensors, so the model tested was the one at the stopping "
        "step, not the best one.",
        "restore the best validation checkpoint before testing (what early stopping means).",
        Switch(_F, "finetune", "restore_best", True, False),
        "section 5 item 3; section 0 item 7"),
    Deviation(
        "finetune_schedule", "Finetune: learning-rate schedule", "4.3.2",
        "The learning rate is fixed to 1e-2; no schedule is mentioned.",
        "CosineAnnealingLR(T_max=5000, the step cap; eta_min 0, no warm-up), stepped after every update, so "
        "step t used 1e-2 (1 + cos(pi t / 5000)) / 2; early stopping did not shorten the cycle.",
        "a constant 1e-2, as the paper states; 'cosine' anneals over finetune_max_steps as the code did.",
        Switch(_F, "finetune", "schedule", "constant", "cosine", via="options: {finetune: {schedule: cosine}}"),
        "section 4.3 (scheduler stepped after optimizer.step()); SSLmed finetune.py FinetuneModel.tune"),
    Deviation(
        "finetune_augment", "Finetune: where the random crop is taken", "4.3.2",
        "Random crop with resize and horizontal flip during training.",
        "RandomResizedCrop(224, bicubic; scale 0.08-1, ratio 3/4-4/3) and a flip on the raw image, then "
        "ToTensor and the model's normalisation; validation and test resized and centre-cropped.",
        "the same crop and flip on the preprocessed (resized, centre-cropped, normalised) tensor, so crops "
        "come from the centre square; 'authors' crops the raw image, one seeded generator per image and epoch.",
        Switch(_F, "finetune", "augment", "paper", "authors", via="options: {finetune: {augment: authors}}"),
        "section 3 (transforms, finetune train)"),
    Deviation(
        "saliency_bn_mode", "Saliency: BatchNorm mode", "4.4.1 (silent)",
        "Not stated.",
        "The backbone was never put in eval mode: BatchNorm normalised each single occluded image by its own "
        "statistics.",
        "eval mode (running statistics), as in every other feature extraction.",
        Switch(_S, "occlusion_saliency", "bn_mode", "eval", "train"),
        "section 5 item 4; section 0 item 5"),
    Deviation(
        "invariance_bn_mode", "Invariance: BatchNorm mode", "4.4.3 (silent)",
        "Not stated.",
        "Train-mode BatchNorm: features depend on the batch (1 clean image, k transformed copies, 256 images for "
        "the covariance).",
        "eval mode; the original ssl-invariances code also used eval mode.",
        Switch(_I, "features_of", "bn_mode", "eval", "train"),
        "section 5 item 4; section 0 item 5"),
    Deviation(
        "invariance_identity", "Invariance: identity transform in the mean", "4.4.3, Eq. (3)",
        "Mean cosine similarity over images and transform parameters.",
        "The identity (angle 0, no flip, hue 0) is averaged in; its similarity is 1, so a flip score of 0.50 "
        "means a flip similarity near 0.",
        "leave the identity out: it says nothing about invariance.",
        Switch(_I, "invariance", "include_identity", False, True),
        "section 5 item 7; section 0 item 6"),
    Deviation(
        "covariance_shrinkage", "Invariance: covariance estimate (eps / shrinkage)", "4.4.3",
        "Mean and covariance from 1000 random images (all if fewer); L from the Cholesky factor of the inverse.",
        "Plain covariance + 1e-6 I, rank deficient whenever images <= feature dimensions (always for 2048-d "
        "ResNet-50 on the small sets).",
        "Ledoit-Wolf shrinkage when images <= dimensions ('auto'), plain covariance otherwise; eps 1e-6 kept.",
        Switch(_I, "fit_whitening", "shrinkage", "auto", "none"),
        "section 5 item 6; section 0 item 6"),
    Deviation(
        "covariance_sampling", "Invariance: images for the covariance", "4.4.3",
        "1000 randomly chosen images (the whole dataset if it has fewer).",
        "max(1000, 10 % of N) images drawn with replacement.",
        "the paper's rule, without replacement.",
        Switch(_I, "fit_whitening", "sampling", "paper", "authors"),
        "section 4.6"),
    Deviation(
        "simclr_no_norm", "SimCLR-v1 without input normalisation", "4.1",
        "Every model gets ImageNet normalisation except SimCLR-v1 (not trained on normalised inputs) and "
        "MIMIC-CheXpert (histogram normalisation).",
        "The --no-norm flag is missing from the final runner lines for finetune and saliency, so SimCLR-v1 got "
        "ImageNet-normalised inputs there.",
        "[0, 1] input for SimCLR-v1 in every protocol (registry preprocessing 'none').",
        Switch(_P, "make_preprocess", "normalisation", None, "imagenet",
               via="options: {models: {simclr_v1: {normalisation: imagenet}}} (applies to every protocol of the "
                   "run; the authors' runs did this for finetune and saliency only)"),
        "section 5 item 9; section 0 item 8"),
    Deviation(
        "moco_cxr_normalisation", "MoCo-CXR input normalisation", "4.1",
        "ImageNet normalisation (MoCo-CXR is not among the exceptions).",
        "ImageNet normalisation, as the paper says, although MoCo-CXR was pretrained with its own chest-X-ray "
        "statistics (mean 0.5020, std 0.085585).",
        "ImageNet normalisation (paper = code); normalisation='cxr' feeds the model's own statistics as a "
        "sensitivity check.",
        Switch(_P, "make_preprocess", "normalisation", None, None,
               via="the default; options: {models: {moco_cxr_r18: {normalisation: cxr}, moco_cxr_d121: "
                   "{normalisation: cxr}}} for the models' own statistics"),
        "section 5 item 9; section 0 item 8"),
    Deviation(
        "dip_unnormalised", "Deep image prior: unnormalised input", "4.4.2 (silent)",
        "Not stated.",
        "The [0, 1] image went to every model without its normalisation (also SimCLR-v1 and MIMIC-CheXpert).",
        "each model's own normalisation, so the inverted features are the ones the model computes elsewhere.",
        Switch(_R, "invert_features", "normalise_input", True, False),
        "section 5 item 9; section 4.5"),
    Deviation(
        "dip_steps", "Deep image prior: number of updates", "4.4.2 (silent)",
        "Not stated.",
        "--max_iter 3000 with a 'while n_iter <= max_iter' loop: 3001 updates.",
        "3000 updates.",
        Switch(_R, "invert_features", "n_steps", 3000, 3001),
        "section 4.5"),
    Deviation(
        "linear_c_grid", "Linear: the C grid", "4.3.2",
        "The L2 regularisation constant from 45 log-spaced values between 1e-6 and 1e5.",
        "45 log-spaced weight decays in [1e-6, 1e5] with C = 1/wd, i.e. C in [1e-5, 1e6], swept from the largest "
        "C down, ties keep the larger C.",
        "C = logspace(-6, 5, 45), swept upwards, ties keep the smaller C.",
        Switch(_L, "LinearSettings", "c_grid_convention", "paper", "code",
               via="options: {linear: {c_grid_convention: code}}"),
        "section 5 item 13; section 4.2"),
    Deviation(
        "linear_max_iter", "Linear: solver iteration cap", "4.3.2 (silent)",
        "Not stated.",
        "sklearn's default max_iter=100, which often stops before convergence at large C.",
        "1000 iterations; the result records whether each fit converged.",
        Switch(_L, "LinearSettings", "max_iter", 1000, 100, via="options: {linear: {max_iter: 100}}"),
        "section 4.2"),
    Deviation(
        "linear_standardize", "Linear: feature standardisation", "4.3.2 (silent)",
        "Not stated.",
        "Raw features.",
        "features centred and scaled by the train split's mean and SD, so every fit is well conditioned and "
        "converges to the same optimum on every machine (raw features with the authors' solver settings "
        "changed the selected C between OpenBLAS kernels).",
        Switch(_L, "LinearSettings", "standardize", True, False, via="options: {linear: {standardize: false}}"),
        "section 4.2"),
    Deviation(
        "linear_solver", "Linear: solver and tolerance", "4.3.2 (silent)",
        "Not stated.",
        "lbfgs with sklearn's default tol=1e-4.",
        "Newton-Cholesky (lbfgs when the model has more than 1,024 weights) at tol=1e-8: converged fits "
        "whose selected C and predictions do not depend on the BLAS kernel or thread count.",
        Switch(_L, "LinearSettings", "solver", "auto", "lbfgs",
               via="options: {linear: {solver: lbfgs, tol: 1.0e-4}}"),
        "section 4.2"),
    Deviation(
        "fewshot_pool", "Few-shot: image pool of the large datasets", "4.3.1 (silent)",
        "Episodes drawn from the dataset.",
        "CheXpert, ChestX-ray14 and EyePACS: only the first 10,001 images of the shuffled training CSV form the "
        "pool; the small datasets use train + test.",
        "every image of the dataset is in the pool. The authors' pool is a profile switch: the sets with a "
        "pool limit in their registry record (CheXpert, ChestX-ray14, EyePACS and their MedSynth stand-ins) "
        "then draw episodes from their first 10,001 non-test rows.",
        Switch(_FS, "fewshot_inputs", "pool", "all", "authors",
               via="options: {fewshot: {pool: authors}}"),
        "section 5 item 11; section 4.1"),
    Deviation(
        "eyepacs_pairs", "EyePACS multi-view pairs", "4.4.3",
        "Two views (left and right eye) of the same patient.",
        "Only pairs whose two eyes have the same grade.",
        "every left/right pair of a patient.",
        Switch("medssl_utils.data.real.eyepacs", "SPEC", "pairs_same_level", False, True),
        "section 3 (multi-view variants)"),
    Deviation(
        "fewshot_resize", "Few-shot preprocessing of the small datasets", "4.3.2 (224 px centre crop)",
        "Bicubic resampling to 224 px and a 224 x 224 centre crop.",
        "Small datasets: Resize([257, 257]) (aspect ratio distorted, bilinear) then a 224 crop; large ones: "
        "bicubic short side 224.",
        "the same bicubic short-side resize and centre crop for every dataset.",
        Switch(_FS, "fewshot_inputs", "resize", "paper", "authors",
               via="options: {fewshot: {resize: authors}} (few-shot features of the sets flagged "
                   "fewshot_square_resize use make_preprocess(fewshot_small_resize=257))"),
        "section 5 item 10; section 3 (transforms)"),
    Deviation(
        "mimic_invariance_histnorm", "MIMIC-CheXpert normalisation of transformed images (invariance)", "4.1",
        "MIMIC-CheXpert expects histogram normalisation.",
        "The clean image was histogram-normalised but the transformed copies got ImageNet normalisation, so "
        "MIMIC-CheXpert's synthetic invariances are about 0.",
        "the model's own normalisation for clean and transformed images alike.",
        Switch(_I, "features_of", "transformed_normalisation", None, "imagenet",
               via="options: {analysis: {invariance: {transformed_normalisation: imagenet}}}"),
        "section 5 item 5; section 0 item 6"),
)


def by_key(key: str) -> Deviation:
    for d in DEVIATIONS:
        if d.key == key:
            return d
    raise KeyError(f"unknown deviation {key!r}; expected one of {[d.key for d in DEVIATIONS]}")


def check(dev: Deviation) -> tuple[bool, str]:
    """(ok, message): the switch exists and its default is the one the record states."""
    try:
        actual = dev.switch.resolve()
    except DeviationError as exc:
        return False, str(exc)
    if actual != dev.switch.default:
        return False, (f"{dev.switch.where}: default is {actual!r}, but the deviation record {dev.key!r} says "
                       f"{dev.switch.default!r}")
    return True, "ok"
