"""Finetuning: the whole backbone plus a linear head, trained end to end (paper section 4.3.2, "Finetune").

Paper constants: SGD with Nesterov momentum 0.9, lr 1e-2, weight decay 1e-8, at most 5000 steps,
batch 64, early stopping with patience 3 on validation accuracy checked every 200 steps, random
resized crop + horizontal flip during training. The paper trained DenseNet-121 models with batch 16
(GPU memory); that is the caller's ``batch_size``, not a rule here.

Authors' code (AUTHORS_CODE.md §4.3): a validation score below the best adds one to the
patience counter, anything else resets it (so ties count as a new best); everything trains, BatchNorm
included; and the "best" weights were never restored at the stop (the saved state dict aliased the
live tensors). ``restore_best=False`` reproduces that.

Two more differences from the paper's text, both switches (methods page, deviations):

* Learning rate. The paper: "the learning rate is fixed to 10^-2" and no schedule, so ``schedule="constant"``
  is the default. The authors' ``FinetuneModel.tune`` (SSLmed finetune.py, inherited from ERT's) wraps SGD in
  ``CosineAnnealingLR(optimizer, T_max=self.steps)``, ``steps`` = 5000 = the step cap, ``eta_min`` = 0, no
  warm-up, stepped once per optimiser step after ``optimizer.step()`` (AUTHORS_CODE.md §4.3); early stopping does
  not shorten ``T_max``. ``schedule="cosine"`` is that: step t (0-based) uses lr * (1 + cos(pi t / max_steps)) / 2.
* Augmentation. Authors (AUTHORS_CODE.md §3, "finetune train"): ``RandomResizedCrop(224, BICUBIC)`` (torchvision's
  defaults scale (0.08, 1), ratio (3/4, 4/3)) then ``RandomHorizontalFlip()`` on the raw PIL image, then
  ToTensor and the model's normalisation; val and test: resize + centre crop, never augmented.
  ``augment="authors"`` does that, which needs a training set that can hand out raw images (``ImageSplit``);
  ``augment="paper"`` (default) crops and flips the already preprocessed tensor, so the crop comes from the
  centre-cropped square rather than the whole image.
"""
from __future__ import annotations

from ..errors import MedsslError

import copy
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from ..features import resolve_device
from .linear import METRICS, accuracy, mean_per_class_accuracy, score


class FinetuneError(MedsslError):
    pass


RRC_SCALE = (0.08, 1.0)        # torchvision RandomResizedCrop defaults, which the authors kept (AUTHORS_CODE.md §3)
RRC_RATIO = (3 / 4, 4 / 3)


def _crop_box(h: int, w: int, u: torch.Tensor, pos: torch.Tensor, scale, ratio) -> tuple[int, int, int, int]:
    """(top, left, height, width) of torchvision's RandomResizedCrop.get_params from pre-drawn uniforms:
    ``u`` (10, 2) for the 10 attempts (area, log ratio), ``pos`` (2,) for the position."""
    area = h * w
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for a in range(10):   # torchvision's 10 attempts, then a centre crop at the clamped ratio
        target = area * (scale[0] + (scale[1] - scale[0]) * float(u[a, 0]))
        r = math.exp(log_r[0] + (log_r[1] - log_r[0]) * float(u[a, 1]))
        cw, ch = int(round(math.sqrt(target * r))), int(round(math.sqrt(target / r)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(float(pos[0]) * (h - ch + 1)), int(float(pos[1]) * (w - cw + 1)), ch, cw
    ch, cw = h, w
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def random_resized_crop_flip(x: torch.Tensor, generator: torch.Generator, *, scale=RRC_SCALE,
                             ratio=RRC_RATIO) -> torch.Tensor:
    """torchvision's RandomResizedCrop (bicubic, same output side) + RandomHorizontalFlip, on a batch.

    Works on already-normalised tensors: resampling is linear, so it commutes with the per-channel
    affine normalisation. Parameters come from ``generator`` so a seed fixes every crop.
    """
    n, _, h, w = x.shape
    out = torch.empty_like(x)
    u = torch.rand((n, 10, 2), generator=generator, dtype=torch.float64)
    pos = torch.rand((n, 2), generator=generator, dtype=torch.float64)
    flips = torch.rand(n, generator=generator) < 0.5
    for i in range(n):
        top, left, ch, cw = _crop_box(h, w, u[i], pos[i], scale, ratio)
        crop = x[i:i + 1, :, top:top + ch, left:left + cw]
        crop = F.interpolate(crop, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
        out[i] = crop[0].flip(-1) if flips[i] else crop[0]
    return out


def authors_crop_flip(img: Image.Image, size: int, generator: torch.Generator, *, scale=RRC_SCALE,
                      ratio=RRC_RATIO) -> Image.Image:
    """The authors' training transform on the raw image: RandomResizedCrop(size, BICUBIC) + RandomHorizontalFlip
    (AUTHORS_CODE.md §3), with every draw from ``generator``."""
    w, h = img.size
    u = torch.rand((10, 2), generator=generator, dtype=torch.float64)
    pos = torch.rand(2, generator=generator, dtype=torch.float64)
    flip = bool(torch.rand(1, generator=generator)[0] < 0.5)
    top, left, ch, cw = _crop_box(h, w, u, pos, scale, ratio)
    out = TF.resized_crop(img, top, left, ch, cw, [size, size], interpolation=InterpolationMode.BICUBIC)
    return TF.hflip(out) if flip else out


AUGMENTATIONS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "paper": random_resized_crop_flip,
}
# augmentations of the raw image, before resize and normalisation: the training set applies them (ImageSplit)
RAW_AUGMENTATIONS: dict[str, Callable[[Image.Image, int, torch.Generator], Image.Image]] = {
    "authors": authors_crop_flip,
}
AUGMENT_MODES = (*AUGMENTATIONS, *RAW_AUGMENTATIONS)
SCHEDULES = ("constant", "cosine")


def learning_rate(schedule: str, lr: float, step: int, max_steps: int) -> float:
    """The rate of optimiser step ``step`` (0-based). "cosine" = torch's CosineAnnealingLR(T_max=max_steps,
    eta_min=0) stepped after each update, in closed form, as the authors ran it."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * step / max_steps))
    raise FinetuneError(f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")


class ImageSplit(Dataset):
    """(preprocessed tensor, label) pairs of one split, built from raw images on demand.

    ``with_raw_augment`` gives a copy that augments the raw image before resize and normalisation. Each item's
    draws come from its own generator seeded by (seed, epoch, item), so the crops depend on neither the
    order of access nor the worker count; the trainer calls ``set_epoch`` at each pass.
    """

    MEMO_BYTES = 256 * 2 ** 20   # preprocessed items kept, per split: a mini split (about 13 MB) fits, a paper one does not

    def __init__(self, image: Callable[[int], Image.Image], labels: Sequence[int], preprocess):
        self.image, self.labels, self.preprocess = image, np.asarray(labels, dtype=np.int64), preprocess
        self.augment: Callable | None = None
        self.seed, self.epoch = 0, 0
        self._memo: dict[int, torch.Tensor] = {}   # without augmentation an item is the same tensor every epoch
        self._memo_bytes = 0

    def __len__(self) -> int:
        return len(self.labels)

    def with_raw_augment(self, augment: Callable[[Image.Image, int, torch.Generator], Image.Image],
                         seed: int) -> "ImageSplit":
        out = copy.copy(self)
        out.augment, out.seed, out.epoch = augment, int(seed), 0
        return out

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def item_generator(self, i: int) -> torch.Generator:
        state = np.random.SeedSequence([self.seed, self.epoch, int(i)]).generate_state(2, dtype=np.uint32)
        return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))

    def __getitem__(self, i: int):
        if self.augment is None:
            x = self._memo.get(i)
            if x is None:
                x = self.preprocess(self.image(i))
                size = x.nelement() * x.element_size()
                if self._memo_bytes + size <= self.MEMO_BYTES:
                    self._memo[i], self._memo_bytes = x, self._memo_bytes + size
            return x, int(self.labels[i])   # the loader stacks items into a new batch, so sharing is safe
        img = self.augment(self.image(i).convert("RGB"), self.preprocess.size, self.item_generator(i))
        return self.preprocess.normalise(TF.to_tensor(img)), int(self.labels[i])


@dataclass
class FinetuneResult:
    test_pred: np.ndarray            # (n_test,)
    test_proba: np.ndarray           # (n_test, n_classes) softmax
    test_labels: np.ndarray
    test_correct: np.ndarray         # (n_test,) bool, per-item outcomes for bootstrap / paired tests
    metric: str
    test_metric: float               # fraction
    test_accuracy: float
    test_mean_per_class_accuracy: float
    steps: int                       # optimiser steps run
    best_step: int                   # step of the best validation score (0 = before training)
    best_val: float
    stopped_early: bool
    restored_best: bool
    history: list[dict] = field(default_factory=list)   # one row per check: step, train_loss, val_metric
    seconds: float = 0.0
    switches: dict = field(default_factory=dict)
    learning_rates: np.ndarray = field(default_factory=lambda: np.zeros(0))   # (steps,) the rate of each update
    model: nn.Module | None = None   # the final network (backbone + head) on the CPU, eval mode

    def history_frame(self):
        import pandas as pd

        return pd.DataFrame(self.history, columns=["step", "train_loss", "val_metric"])

    def summary(self) -> dict:
        return {"steps": self.steps, "best_step": self.best_step, "best_val": self.best_val,
                "stopped_early": self.stopped_early, "restored_best": self.restored_best, **self.switches}


def _split_labels(name: str, ds: Dataset) -> None:
    if ds is None or len(ds) == 0:
        raise FinetuneError(f"{name} dataset is empty: finetune needs train, val and test items")


def _predict(model: nn.Module, ds: Dataset, dev: torch.device, batch_size: int, autocast) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    probs, labels = [], []
    with torch.inference_mode(), autocast:
        for x, y in DataLoader(ds, batch_size=batch_size, shuffle=False):
            x = x.to(dev).contiguous(memory_format=torch.channels_last)
            probs.append(torch.softmax(model(x).float(), dim=1).cpu())
            labels.append(torch.as_tensor(y))
    return torch.cat(probs).numpy(), torch.cat(labels).numpy()


def finetune(module: nn.Module, feature_dim: int, n_classes: int, train_ds: Dataset, val_ds: Dataset,
             test_ds: Dataset, *, lr: float = 1e-2, momentum: float = 0.9, nesterov: bool = True,
             weight_decay: float = 1e-8, max_steps: int = 5000, batch_size: int = 64, eval_every: int = 200,
             patience: int = 3, restore_best: bool = True, metric: str = "accuracy",
             augment: str | Callable | None = "paper", schedule: str = "constant", device: str | torch.device = "auto",
             amp: bool = True, seed: int = 0, progress: bool = True, eval_batch_size: int | None = None) -> FinetuneResult:
    """Train a copy of ``module`` (headless backbone, (N,3,S,S) -> (N,feature_dim)) plus a linear head.

    Datasets yield ``(tensor (3,S,S) preprocessed, int label)``. ``augment``: "paper" (random resized
    crop + flip of the preprocessed tensor), "authors" (the same on the raw image; ``train_ds`` must be an
    ``ImageSplit``), None (none) or a callable ``(batch, torch.Generator) -> batch``. ``schedule``:
    "constant" (paper) or "cosine" (authors; see ``learning_rate``). Every
    ``eval_every`` steps (and at the last step) the val ``metric`` is computed; ``patience`` checks in
    a row below the best stop training. ``restore_best`` loads the best checkpoint's weights before
    testing (paper's early stopping; False = the authors' code). ``amp``: fp16 autocast on a GPU only
    (CPU stays fp32 for determinism). The caller's module is not modified. Deterministic for a seed
    on the CPU.
    """
    if metric not in METRICS:
        raise FinetuneError(f"unknown metric {metric!r}; expected one of {METRICS}")
    for name, v in (("max_steps", max_steps), ("batch_size", batch_size), ("eval_every", eval_every),
                    ("patience", patience), ("n_classes", n_classes), ("feature_dim", feature_dim)):
        if int(v) < 1:
            raise FinetuneError(f"{name} must be >= 1 (got {v})")
    for name, ds in (("train", train_ds), ("val", val_ds), ("test", test_ds)):
        _split_labels(name, ds)
    if schedule not in SCHEDULES:
        raise FinetuneError(f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")
    aug_fn = augment
    if isinstance(augment, str):
        if augment not in AUGMENT_MODES:
            raise FinetuneError(f"unknown augment {augment!r}; expected one of {list(AUGMENT_MODES)}, None "
                                "or a callable")
        aug_fn = AUGMENTATIONS.get(augment)
        if augment in RAW_AUGMENTATIONS:
            if not hasattr(train_ds, "with_raw_augment"):
                raise FinetuneError(f"augment={augment!r} crops the raw image, so train_ds must be an ImageSplit "
                                    f"(got {type(train_ds).__name__}); use augment='paper' for tensor datasets")
            train_ds = train_ds.with_raw_augment(RAW_AUGMENTATIONS[augment], seed + 1)
    dev = resolve_device(device)
    autocast = torch.autocast(device_type="cuda", dtype=torch.float16) if (amp and dev.type == "cuda") else nullcontext()
    eval_bs = eval_batch_size or 2 * batch_size
    t0 = time.perf_counter()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = copy.deepcopy(module)
        for p in backbone.parameters():
            p.requires_grad_(True)
        model = nn.Sequential(backbone, nn.Linear(feature_dim, n_classes)).to(dev)
        model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, nesterov=nesterov,
                              weight_decay=weight_decay)
        scaler = torch.amp.GradScaler("cuda") if (amp and dev.type == "cuda") else None
        gen = torch.Generator().manual_seed(seed)
        aug_gen = torch.Generator().manual_seed(seed + 1)
        loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True, drop_last=len(train_ds) >= batch_size,
                            generator=gen)

        def val_score() -> float:
            p, y = _predict(model, val_ds, dev, eval_bs, autocast)
            return score(metric, y, p.argmax(1))

        history: list[dict] = []
        best_val, best_step, best_state = -np.inf, 0, None
        bad, step, losses, stopped, epoch, rates = 0, 0, [], False, 0, []
        bar = _progress(max_steps, progress)
        while step < max_steps and not stopped:
            model.train()
            if hasattr(train_ds, "set_epoch"):
                train_ds.set_epoch(epoch)
            epoch += 1
            for x, y in loader:
                if aug_fn is not None:
                    x = aug_fn(x, aug_gen)
                x = x.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
                y = torch.as_tensor(y)
                if int(y.min()) < 0 or int(y.max()) >= n_classes:
                    raise FinetuneError(f"train labels must lie in 0..{n_classes - 1} (n_classes); got "
                                        f"{int(y.min())}..{int(y.max())}")
                y = y.to(dev)
                with autocast:
                    loss = F.cross_entropy(model(x), y)
                if not torch.isfinite(loss):
                    raise FinetuneError(f"training loss became {loss.item()} at step {step + 1}; lower lr "
                                        f"(got {lr}) or check the inputs")
                opt.zero_grad(set_to_none=True)
                rate = learning_rate(schedule, lr, step, max_steps)
                for group in opt.param_groups:
                    group["lr"] = rate
                rates.append(rate)
                if scaler is None:
                    loss.backward()
                    opt.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                step += 1
                losses.append(loss.item())
                bar.update(1)
                if step % eval_every == 0 or step == max_steps:
                    v = val_score()
                    history.append({"step": step, "train_loss": float(np.mean(losses)), "val_metric": v})
                    losses = []
                    if v >= best_val:    # authors: only a strictly lower score counts against patience
                        best_val, best_step, bad = v, step, 0
                        if restore_best:
                            best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
                    else:
                        bad += 1
                        if bad >= patience:
                            stopped = True
                    model.train()
                if stopped or step >= max_steps:
                    break
        bar.close()
        restored = False
        if restore_best and best_state is not None and best_step != step:
            model.load_state_dict(best_state)
            restored = True
        proba, labels = _predict(model, test_ds, dev, eval_bs, autocast)

    pred = proba.argmax(1)
    return FinetuneResult(
        test_pred=pred, test_proba=proba, test_labels=labels, test_correct=pred == labels, metric=metric,
        test_metric=score(metric, labels, pred), test_accuracy=accuracy(labels, pred),
        test_mean_per_class_accuracy=mean_per_class_accuracy(labels, pred), steps=step, best_step=best_step,
        best_val=float(best_val), stopped_early=stopped, restored_best=restored, history=history,
        seconds=time.perf_counter() - t0, model=model.cpu().eval(), learning_rates=np.asarray(rates),
        switches={"lr": lr, "momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay,
                  "batch_size": batch_size, "max_steps": max_steps, "eval_every": eval_every,
                  "patience": patience, "restore_best": restore_best,
                  "augment": augment if isinstance(augment, str) or augment is None else "custom",
                  "schedule": schedule, "seed": seed},
    )


def _progress(total: int, enabled: bool):
    from ..progress import bar

    return bar(total=total, desc="finetune", enabled=enabled, leave=False)
