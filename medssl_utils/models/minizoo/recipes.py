"""Pretraining recipes of the mini-zoo: one small backbone, the paper's method families, several seeds.

Each recipe is a list of stages (method, data, steps, batch size, learning rate, ...). A stage trains a
``Learner``: the backbone plus the method's heads, whose ``loss(batch, labels, gen)`` returns a scalar and
whose ``after_step`` does the method's bookkeeping (EMA target, prototype normalisation). Augmentations are
batched tensor ops drawn from a ``torch.Generator``, so a (recipe, seed) pair always gives the same run.

The step budgets come from the mini-zoo spike on this machine: supervised training works from ~12 epochs,
SimCLR needs >= ~600 steps at batch 128, BYOL did not learn in 268 steps (so it gets a warmup, a higher
learning rate and a lower EMA momentum here). The domain recipes copy the structure of the paper's two
chest-X-ray models at toy scale (paper section 3 / 5.2):
  * MoCo-CXR (Sowrirajan et al.): MoCo-v2 on the chest-X-ray source, initialised from the supervised model
    ("from ImageNet"); short training (the paper stresses it was only 20 epochs).
  * MIMIC-CheXpert (Sriram et al.): supervised training on the chest-X-ray labels, then a longer MoCo stage on
    the same images. Deviation: the original uses MIMIC-CXR for the supervised stage and MIMIC + CheXpert for
    MoCo, and histogram-normalised inputs; here both stages use ``medsynth-cxr-source`` and ImageNet
    normalisation (named in ``Recipe.notes``).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import MedsslError as ModelError
from ..preprocessing import IMAGENET_MEAN, IMAGENET_STD


# ----------------------------------------------------------------------------------------------------------
# batched augmentations
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Aug:
    """Random-resized crop (+ flip, + small rotation), colour jitter with prob ``p_jitter``, greyscale."""

    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    rotate_deg: float = 0.0
    p_jitter: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    p_grey: float = 0.2


AUGS: dict[str, Aug] = {
    # SimCLR-style views for the natural-image corpus (CIFAR variant: no blur at 32 px).
    "ssl": Aug(scale=(0.3, 1.0)),   # 0.3, not 0.08-0.2: tiny crops of a sparse fractal are often background
    # light augmentation for supervised training.
    "sup": Aug(scale=(0.35, 1.0), p_jitter=0.5, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02, p_grey=0.0),
    # chest X-ray views: MoCo-CXR's setting keeps grey levels meaningful (crop, flip, small rotation,
    # brightness/contrast only; no hue/saturation since the images are grey).
    "cxr_ssl": Aug(scale=(0.3, 1.0), rotate_deg=10.0, p_jitter=0.8, brightness=0.3, contrast=0.3,
                   saturation=0.0, hue=0.0, p_grey=0.0),
    "cxr_sup": Aug(scale=(0.5, 1.0), rotate_deg=10.0, p_jitter=0.5, brightness=0.2, contrast=0.2,
                   saturation=0.0, hue=0.0, p_grey=0.0),
}


def _u(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _grey(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def augment(x: torch.Tensor, aug: Aug, gen: torch.Generator, out_size: int | None = None) -> torch.Tensor:
    """Batch (N, 3, S, S) in [0, 1] -> augmented batch (N, 3, out, out) in [0, 1]; one draw per image."""
    n, out, dev = x.shape[0], out_size or x.shape[-1], x.device   # draws stay on the CPU generator's stream
    area = _u(n, *aug.scale, gen)
    logr = _u(n, math.log(aug.ratio[0]), math.log(aug.ratio[1]), gen)
    w = torch.sqrt(area * torch.exp(logr)).clamp(max=1.0)
    h = torch.sqrt(area / torch.exp(logr)).clamp(max=1.0)
    cx = (2 * torch.rand(n, generator=gen) - 1) * (1 - w)
    cy = (2 * torch.rand(n, generator=gen) - 1) * (1 - h)
    sx = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if aug.flip else torch.ones(n)
    ang = _u(n, -aug.rotate_deg, aug.rotate_deg, gen) * math.pi / 180
    cos, sin = torch.cos(ang), torch.sin(ang)
    theta = torch.stack([torch.stack([w * sx * cos, -h * sin, cx], 1),
                         torch.stack([w * sx * sin, h * cos, cy], 1)], 1)
    grid = F.affine_grid(theta.to(dev), [n, 3, out, out], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    jit = (torch.rand(n, generator=gen) < aug.p_jitter).float().view(n, 1, 1, 1)
    b = (1 + _u(n, -aug.brightness, aug.brightness, gen).view(n, 1, 1, 1) * jit).to(dev)
    c = (1 + _u(n, -aug.contrast, aug.contrast, gen).view(n, 1, 1, 1) * jit).to(dev)
    s = (1 + _u(n, -aug.saturation, aug.saturation, gen).view(n, 1, 1, 1) * jit).to(dev)
    hue = (_u(n, -aug.hue, aug.hue, gen) * jit.view(n) * 2 * math.pi).to(dev)
    x = (x * b).clamp(0, 1)
    m = _grey(x).mean(dim=(2, 3), keepdim=True)
    x = ((x - m) * c + m).clamp(0, 1)
    g = _grey(x)
    x = ((x - g) * s + g).clamp(0, 1)
    if aug.hue > 0:  # rotate the chroma plane of YIQ
        yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=dev)
        q = torch.einsum("ij,njhw->nihw", yiq, x)
        ch, sh = torch.cos(hue).view(n, 1, 1), torch.sin(hue).view(n, 1, 1)
        i2, q2 = q[:, 1] * ch - q[:, 2] * sh, q[:, 1] * sh + q[:, 2] * ch
        q = torch.stack([q[:, 0], i2, q2], 1)
        x = torch.einsum("ij,njhw->nihw", torch.linalg.inv(yiq), q).clamp(0, 1)
    if aug.p_grey > 0:
        gm = (torch.rand(n, generator=gen) < aug.p_grey).float().view(n, 1, 1, 1).to(dev)
        x = gm * _grey(x).expand_as(x) + (1 - gm) * x
    return x


def normalise(x: torch.Tensor) -> torch.Tensor:
    """ImageNet normalisation: the mini-zoo models' registered preprocessing ("imagenet")."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def views(x: torch.Tensor, aug_key: str, gen: torch.Generator, k: int = 2, out_size: int | None = None):
    return [normalise(augment(x, AUGS[aug_key], gen, out_size)) for _ in range(k)]


# ----------------------------------------------------------------------------------------------------------
# learners
# ----------------------------------------------------------------------------------------------------------

class Learner(nn.Module):
    """Backbone + method heads. Subclasses define ``loss``; ``after_step`` defaults to nothing."""

    def __init__(self, backbone: nn.Module, stage: "Stage") -> None:
        super().__init__()
        self.backbone = backbone
        self.stage = stage

    def loss(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, step: int) -> torch.Tensor:
        raise NotImplementedError

    def after_step(self, step: int) -> None:
        return None

    def param_groups(self) -> list[dict]:
        """SGD parameter groups; ``lr_mult`` scales the schedule's lr for a group (BYOL's predictor)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr_mult": 1.0}]


class SupervisedLearner(Learner):
    def __init__(self, backbone, stage, n_classes: int) -> None:
        super().__init__(backbone, stage)
        self.head = nn.Linear(backbone.feature_dim, n_classes)

    def loss(self, x, y, gen, step):
        (v,) = views(x, self.stage.aug, gen, k=1)
        return F.cross_entropy(self.head(self.backbone(v)).float(), y)


class SimCLRLearner(Learner):
    def __init__(self, backbone, stage, n_classes: int) -> None:
        from lightly.loss import NTXentLoss
        from lightly.models.modules import SimCLRProjectionHead

        super().__init__(backbone, stage)
        d = backbone.feature_dim
        self.head = SimCLRProjectionHead(d, 2 * d, stage.p("proj_dim", 64))
        self.criterion = NTXentLoss(temperature=stage.p("temperature", 0.2))

    def loss(self, x, y, gen, step):
        v0, v1 = views(x, self.stage.aug, gen)
        z = self.head(self.backbone(torch.cat([v0, v1])))
        return self.criterion(*z.float().chunk(2))


class MoCoLearner(Learner):
    """MoCo-v2: MLP head, EMA key encoder, a queue of negatives (lightly's NTXent memory bank)."""

    def __init__(self, backbone, stage, n_classes: int) -> None:
        from lightly.loss import NTXentLoss
        from lightly.models.modules import MoCoProjectionHead

        super().__init__(backbone, stage)
        d, out = backbone.feature_dim, stage.p("proj_dim", 64)
        self.head = MoCoProjectionHead(d, 2 * d, out)
        self.key_backbone = copy.deepcopy(backbone)
        self.key_head = copy.deepcopy(self.head)
        for p in list(self.key_backbone.parameters()) + list(self.key_head.parameters()):
            p.requires_grad_(False)
        self.criterion = NTXentLoss(temperature=stage.p("temperature", 0.2),
                                    memory_bank_size=(stage.p("queue", 4096), out))

    def loss(self, x, y, gen, step):
        vq, vk = views(x, self.stage.aug, gen)
        if self.stage.p("symmetric", False):
            return self._symmetric_loss(vq, vk)
        q = self.head(self.backbone(vq))
        with torch.no_grad():
            k = self.key_head(self.key_backbone(vk))
        return self.criterion(q.float(), k.float())

    def _symmetric_loss(self, v0, v1):
        """Both views are queries and keys (MoCo-v2+ as small-scale SSL libraries train it): twice the signal
        per step. Both directions see the same queue snapshot, and both keys are enqueued after, so no view's
        own key is ever its negative (calling lightly's loss twice would enqueue between the two calls)."""
        q0, q1 = F.normalize(self.head(self.backbone(torch.cat([v0, v1]))).float(), dim=1).chunk(2)
        with torch.no_grad():
            k0, k1 = F.normalize(self.key_head(self.key_backbone(torch.cat([v0, v1]))).float(), dim=1).chunk(2)
        bank = self.criterion.memory_bank(k0, update=False)[1].to(q0)
        t = self.stage.p("temperature", 0.2)

        def nce(q, k):
            logits = torch.cat([(q * k).sum(1, keepdim=True), q @ bank], dim=1) / t
            return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))

        loss = 0.5 * (nce(q0, k1) + nce(q1, k0))
        self.criterion.memory_bank(torch.cat([k0, k1]), update=True)
        return loss

    @torch.no_grad()
    def after_step(self, step):
        from lightly.models.utils import update_momentum

        m = self.stage.p("momentum", 0.99)
        if self.stage.p("momentum_to_one", False):   # cosine schedule to 1, as BYOL and MoCo-v2+ do
            from lightly.utils.scheduler import cosine_schedule

            m = cosine_schedule(step, self.stage.steps, m, 1.0)
        update_momentum(self.backbone, self.key_backbone, m)
        update_momentum(self.head, self.key_head, m)


class BYOLLearner(Learner):
    """BYOL: online projector + predictor, EMA target whose momentum rises from ``momentum`` to 1 (cosine)."""

    def __init__(self, backbone, stage, n_classes: int) -> None:
        from lightly.loss import NegativeCosineSimilarity
        from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead

        super().__init__(backbone, stage)
        d, out = backbone.feature_dim, stage.p("proj_dim", 128)
        self.projector = BYOLProjectionHead(d, 4 * d, out)
        self.predictor = BYOLPredictionHead(out, 4 * d, out)
        self.target_backbone = copy.deepcopy(backbone)
        self.target_projector = copy.deepcopy(self.projector)
        for p in list(self.target_backbone.parameters()) + list(self.target_projector.parameters()):
            p.requires_grad_(False)
        self.criterion = NegativeCosineSimilarity()

    def loss(self, x, y, gen, step):
        v0, v1 = views(x, self.stage.aug, gen)
        p = self.predictor(self.projector(self.backbone(torch.cat([v0, v1]))))
        with torch.no_grad():
            z = self.target_projector(self.target_backbone(torch.cat([v0, v1])))
        p0, p1 = p.float().chunk(2)
        z0, z1 = z.float().chunk(2)
        return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))

    def param_groups(self) -> list[dict]:
        """``predictor_lr_mult`` != 1 gives the predictor its own lr (a faster predictor, as SimSiam's and
        DirectPred's analyses recommend); at 1 the single group keeps the committed checkpoints' exact run."""
        mult = float(self.stage.p("predictor_lr_mult", 1.0))
        if mult == 1.0:
            return super().param_groups()
        pred = {id(p) for p in self.predictor.parameters()}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in pred]
        return [{"params": rest, "lr_mult": 1.0}, {"params": list(self.predictor.parameters()), "lr_mult": mult}]

    @torch.no_grad()
    def after_step(self, step):
        from lightly.models.utils import update_momentum
        from lightly.utils.scheduler import cosine_schedule

        m = cosine_schedule(step, self.stage.steps, self.stage.p("momentum", 0.99), 1.0)
        update_momentum(self.backbone, self.target_backbone, m)
        update_momentum(self.projector, self.target_projector, m)


class SwAVLearner(Learner):
    """SwAV: 2 full-size + ``n_low`` 16 px crops, Sinkhorn codes, prototypes frozen for the first steps."""

    def __init__(self, backbone, stage, n_classes: int) -> None:
        from lightly.loss import SwaVLoss
        from lightly.models.modules import SwaVProjectionHead, SwaVPrototypes

        super().__init__(backbone, stage)
        d, out = backbone.feature_dim, stage.p("proj_dim", 64)
        self.head = SwaVProjectionHead(d, 2 * d, out)
        self.prototypes = SwaVPrototypes(out, stage.p("prototypes", 100), stage.p("frozen_steps", 50))
        self.criterion = SwaVLoss(temperature=stage.p("temperature", 0.1),
                                  sinkhorn_epsilon=stage.p("epsilon", 0.05))

    def loss(self, x, y, gen, step):
        self.prototypes.normalize()
        hi = views(x, self.stage.aug, gen, k=2)
        lo = views(x, "swav_low", gen, k=self.stage.p("n_low", 2), out_size=self.stage.p("low_size", 16))
        hi_p = [self.prototypes(F.normalize(z, dim=1), step).float()
                for z in self.head(self.backbone(torch.cat(hi))).chunk(2)]
        lo_p = [self.prototypes(F.normalize(z, dim=1), step).float()
                for z in self.head(self.backbone(torch.cat(lo))).chunk(len(lo))] if lo else []
        return self.criterion(hi_p, lo_p)


AUGS["swav_low"] = Aug(scale=(0.08, 0.4))

LEARNERS: dict[str, type[Learner]] = {
    "sup": SupervisedLearner, "simclr": SimCLRLearner, "moco": MoCoLearner, "byol": BYOLLearner,
    "swav": SwAVLearner,
}


# ----------------------------------------------------------------------------------------------------------
# recipes
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    method: str                  # key of LEARNERS
    data: str                    # "fractal" (the natural-image corpus) | "cxr" (medsynth-cxr-source)
    steps: int
    batch_size: int
    lr: float
    aug: str                     # key of AUGS
    warmup: int = 0              # linear warmup steps, then cosine decay to 0
    weight_decay: float = 5e-4
    momentum: float = 0.9        # SGD momentum
    bf16: bool = True            # bfloat16 autocast for the forward passes (~1.5x faster on this AVX512-BF16
                                 # CPU); losses are computed in float32
    params: tuple[tuple[str, Any], ...] = ()   # method hyper-parameters (temperature, queue, EMA momentum...)

    def p(self, key: str, default: Any) -> Any:
        return dict(self.params).get(key, default)


@dataclass(frozen=True)
class Recipe:
    key: str                     # registry names are mini-<key>-s<seed>
    title: str
    family: str                  # registry family
    method: str                  # ModelSpec.method
    pretrain_data: str
    stages: tuple[Stage, ...]
    init_from: str | None = None  # recipe key whose same-seed published checkpoint initialises the backbone
    notes: str = ""
    preprocessing: str = "imagenet"
    extra: dict[str, Any] = field(default_factory=dict)


# Budgets (second build, 2026-12-01, quiet 2-core machine, two 1-thread workers: 0.46 s/step supervised at
# batch 256; 0.43 SimCLR, 0.34 MoCo, 0.59 BYOL, 0.60 SwAV at batch 128). They follow the spike: supervised ~24
# epochs of the corpus, every self-supervised recipe >= 600 steps at batch 128 (the spike's threshold for
# SimCLR), BYOL the most steps since it was the slowest to start learning. With these budgets every recipe beats
# random init on its source-task probe by more than the seed spread (BYOL only just). The first build (under
# heavy load, 200-600 steps at batch 32-128) left BYOL, SwAV and the MoCo-CXR analogue at random-init level on
# their probes; its records are kept in the manifest under "superseded", as are the MoCo pilots.
# Third change (2026-12-05, issue 17 item 4): MoCo-v2 and SwAV take the 32 px settings of the small-scale SSL
# literature that won the recipe pilots (benchmarks/minizoo_recipe_pilots.py): MoCo's symmetric loss at lr 0.3
# (0.50 s/step), SwAV's two full-size crops (0.37 s/step). The MoCo-CXR and MIMIC analogues keep the one-way
# loss of the MoCo-CXR paper's code; their budgets and records are unchanged. Fourth change (2026-12-06, issue 17
# item 4): BYOL's target starts at EMA 0.9 and its predictor learns 10x faster (pilot byol-m09-pred10).
_MOCO = (("temperature", 0.2), ("momentum", 0.9), ("queue", 1024), ("symmetric", True))
_MOCO_CXR = (("temperature", 0.2), ("momentum", 0.99), ("queue", 1024))  # the queue stays below the 2,880 images
RECIPES: dict[str, Recipe] = {r.key: r for r in (
    Recipe("sup", "Mini supervised", "supervised", "supervised (cross-entropy)", "FractalDB-mini",
           (Stage("sup", "fractal", 600, 256, 0.1, "sup", warmup=20),)),
    Recipe("simclr", "Mini SimCLR", "self-supervised", "SimCLR", "FractalDB-mini",
           (Stage("simclr", "fractal", 700, 128, 0.3, "ssl", warmup=30, params=(("temperature", 0.2),)),)),
    Recipe("moco", "Mini MoCo-v2", "self-supervised", "MoCo-v2", "FractalDB-mini",
           (Stage("moco", "fractal", 800, 128, 0.3, "ssl", warmup=30, params=_MOCO),),
           notes="A short-schedule MoCo-v2 with the symmetric loss of the small-scale literature (MoCo-v2+ in "
                 "solo-learn: both views are queries and keys, both enqueued): key-encoder momentum 0.9 and a "
                 "1,024-key queue instead of 0.999 / 65,536, lr 0.3. The first recipe (one-way loss, lr 0.1) "
                 "reached neutral kNN 7.8% at 1x against 13.2% (seed 0; recipe pilots, "
                 "benchmarks/minizoo_recipe_pilots.py); the literature's key momentum (0.99, cosine to 1) did "
                 "worse in 800 steps (6.6%), as did a 4,096-key queue in the second build (seed 2 at random-init "
                 "level). Earlier pilots are in the manifest under 'superseded'."),
    Recipe("byol", "Mini BYOL", "self-supervised", "BYOL", "FractalDB-mini",
           (Stage("byol", "fractal", 700, 128, 0.3, "ssl", warmup=50, weight_decay=5e-5,
                  params=(("momentum", 0.9), ("predictor_lr_mult", 10.0))),),
           notes="BYOL gets a warmup and a small weight decay (the spike's BYOL did not learn in 268 steps, the "
                 "first build's 500 steps at batch 32 stayed at random-init level), a target that follows fast "
                 "at the start (EMA 0.9, cosine to 1; the BYOL paper's ablation still learns at 0.9) and a "
                 "predictor learning 10x faster than the encoder (SimSiam's and DirectPred's analyses: the "
                 "predictor must keep up with the features it predicts). The second recipe (EMA from 0.97, one "
                 "learning rate) beat random init on its source probe by only 0.1 point more than the seed "
                 "spread at 1x (8.0 / 13.8 / 4.5%); the recipe pilots (benchmarks/minizoo_recipe_pilots.py, "
                 "byol-m09-pred10) gave 13.6 / 31.0 / 16.6% and neutral kNN 8.2 / 12.2 / 7.9% against "
                 "4.9 / 5.6 / 5.9%. Its records are in the manifest under 'superseded'."),
    Recipe("swav", "Mini SwAV", "self-supervised", "SwAV", "FractalDB-mini",
           (Stage("swav", "fractal", 600, 128, 0.3, "ssl", warmup=30,
                  params=(("prototypes", 100), ("frozen_steps", 60), ("n_low", 0))),),
           notes="100 prototypes (one per corpus class; the original used 3,000 for ImageNet), 2 full-size crops "
                 "and no small crops, prototypes frozen for the first corpus epoch (60 steps), no queue (the "
                 "original adds one below batch 256). The 32 px setting of the small-scale SSL literature "
                 "(solo-learn's CIFAR SwAV: 2 crops of 32 px). The first recipe's two extra 16 px crops gave "
                 "half the neutral-probe accuracy at 1x (kNN 8.6% against 16.4%, seed 0; recipe pilots, "
                 "benchmarks/minizoo_recipe_pilots.py), and 300 prototypes did worse (8.2%)."),
    Recipe("mococxr", "Mini MoCo-CXR", "domain-specific", "MoCo-v2 on chest X-rays (from supervised)",
           "medsynth-cxr-source", (Stage("moco", "cxr", 600, 128, 0.1, "cxr_ssl", warmup=30, params=_MOCO_CXR),),
           init_from="sup",
           notes="MoCo-CXR analogue: MoCo-v2 on medsynth-cxr-source starting from the same-seed mini "
                 "supervised model (the original started from ImageNet weights and ran 20 epochs on CheXpert; "
                 "here 600 x 128 = 27 epochs of the 2,880-image pretraining split). The first build's 450 x 64 "
                 "did not beat random init on the cxr probe (manifest 'superseded')."),
    Recipe("mimic", "Mini MIMIC-CheXpert", "domain-specific", "supervised on chest X-rays, then MoCo",
           "medsynth-cxr-source", (Stage("sup", "cxr", 200, 128, 0.1, "cxr_sup", warmup=10),
                                   Stage("moco", "cxr", 500, 128, 0.1, "cxr_ssl", warmup=20, params=_MOCO_CXR)),
           notes="MIMIC-CheXpert analogue: supervised on medsynth-cxr-source labels, then MoCo-v2 on the same "
                 "images. Deviations: one chest-X-ray source for both stages (the original: MIMIC-CXR, then "
                 "MIMIC + CheXpert); ImageNet normalisation instead of histogram normalisation."),
)}

SEEDS = (0, 1, 2)
# Recipe order within a seed: the recipes most likely to fail to learn (BYOL, SwAV: the slowest starters in
# the spike and the first build) come first, and the zoo is built seed-major (every recipe's seed 0 first), so
# a recipe that needs a larger budget shows up in the first minutes of a build, not the last.
BUILD_ORDER = ("byol", "swav", "sup", "simclr", "moco", "mococxr", "mimic")


def model_name(recipe: str, seed: int) -> str:
    return f"mini-{recipe}-s{seed}"


def parse_name(name: str) -> tuple[str, int]:
    """'mini-simclr-s1' -> ('simclr', 1); a clear error for anything else."""
    parts = name.split("-")
    if len(parts) != 3 or parts[0] != "mini" or parts[1] not in RECIPES or not parts[2][1:].isdigit() \
            or parts[2][0] != "s":
        raise ModelError(f"mini-zoo model name {name!r}: expected 'mini-<recipe>-s<seed>' with recipe in "
                         f"{sorted(RECIPES)}")
    return parts[1], int(parts[2][1:])


def build_learner(stage: Stage, backbone: nn.Module, n_classes: int) -> Learner:
    return LEARNERS[stage.method](backbone, stage, n_classes)


def lr_at(stage: Stage, step: int) -> float:
    """Linear warmup over ``stage.warmup`` steps, then cosine decay to 0 at ``stage.steps``."""
    if step < stage.warmup:
        return stage.lr * (step + 1) / stage.warmup
    t = (step - stage.warmup) / max(1, stage.steps - stage.warmup)
    return stage.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
