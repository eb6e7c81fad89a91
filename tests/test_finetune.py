"""Finetune protocol (medssl_utils.protocols.finetune): learning, determinism, early stopping, restore."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from medssl_utils.models.architectures import build_headless
from medssl_utils.protocols import finetune as ft
from medssl_utils.protocols.finetune import FinetuneError, finetune, random_resized_crop_flip

torch.set_num_threads(1)
SIZE = 16


def small_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _data(n, seed, size=SIZE):
    """Class 1 images are brighter: learnable in a few dozen steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 3, size, size, generator=g) * 0.5 + (y.float() * 1.5 - 0.75).view(-1, 1, 1, 1)
    return TensorDataset(x, y)


def _run(module=None, **kw):
    args = dict(max_steps=60, batch_size=16, eval_every=20, progress=False, device="cpu")
    args.update(kw)
    return finetune(module if module is not None else small_cnn(), 8, 2, _data(96, 1), _data(32, 2),
                    _data(40, 3), **args)


def test_learns_a_learnable_task():
    res = _run()
    assert res.test_accuracy > 0.9 and res.test_metric == res.test_accuracy
    assert res.test_proba.shape == (40, 2) and np.allclose(res.test_proba.sum(1), 1, atol=1e-5)
    assert res.test_correct.sum() == round(res.test_accuracy * 40)
    hist = res.history_frame()
    assert list(hist["step"]) == [20, 40, 60] and list(hist.columns) == ["step", "train_loss", "val_metric"]
    assert np.isfinite(hist["train_loss"]).all() and hist["val_metric"].between(0, 1).all()
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    assert res.steps == 60 and not res.stopped_early


def test_deterministic_for_a_seed_and_caller_module_untouched():
    module = small_cnn()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    a, b = _run(module, seed=3), _run(module, seed=3)
    assert a.history == b.history
    np.testing.assert_array_equal(a.test_proba, b.test_proba)
    c = _run(module, seed=4)
    assert [h["train_loss"] for h in c.history] != [h["train_loss"] for h in a.history]
    for k, v in module.state_dict().items():
        assert torch.equal(v, before[k])


class _ScriptedVal:
    """Replaces the metric for the first len(values) calls (the val checks), then the real one (test)."""
    def __init__(self, values):
        self.values, self.real = list(values), ft.score

    def __call__(self, metric, y_true, y_pred):
        return self.values.pop(0) if self.values else self.real(metric, y_true, y_pred)


def test_early_stopping_patience_and_ties(monkeypatch):
    # check 1: 0.5, 2: 0.6 (best), 3: 0.55, 4: 0.6 (a tie resets the count and becomes the best), 5-7 lower
    monkeypatch.setattr(ft, "score", _ScriptedVal([0.5, 0.6, 0.55, 0.6, 0.5, 0.58, 0.59, 0.9]))
    res = _run(max_steps=400, eval_every=10, patience=3)
    assert res.stopped_early and res.steps == 70
    assert res.best_step == 40 and res.best_val == 0.6
    assert [h["step"] for h in res.history] == [10, 20, 30, 40, 50, 60, 70]


def test_restore_best_loads_the_best_checkpoint(monkeypatch):
    scripted = [0.5, 0.9, 0.4, 0.4, 0.4]                      # best at step 20 of 10-step checks; stop at 50
    monkeypatch.setattr(ft, "score", _ScriptedVal(scripted))
    restored = _run(max_steps=400, eval_every=10, patience=3, restore_best=True)
    monkeypatch.setattr(ft, "score", _ScriptedVal(scripted))
    code = _run(max_steps=400, eval_every=10, patience=3, restore_best=False)
    monkeypatch.setattr(ft, "score", _ScriptedVal(scripted[:2]))
    upto_best = _run(max_steps=20, eval_every=10)            # same seed: same trajectory, stopped at the best
    assert restored.restored_best and not code.restored_best
    assert restored.steps == code.steps == 50 and restored.best_step == 20
    np.testing.assert_allclose(restored.test_proba, upto_best.test_proba, atol=1e-6)
    assert not np.allclose(code.test_proba, upto_best.test_proba, atol=1e-4)   # the authors' code: last weights


def test_augmentation_is_seeded_and_shape_preserving():
    x = torch.randn(6, 3, 20, 20)
    a = random_resized_crop_flip(x, torch.Generator().manual_seed(0))
    b = random_resized_crop_flip(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, random_resized_crop_flip(x, torch.Generator().manual_seed(1)))
    # the whole image at ratio 1 is only (maybe) flipped: the resample is an identity
    whole = random_resized_crop_flip(x, torch.Generator().manual_seed(2), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    for i in range(6):
        assert torch.allclose(whole[i], x[i], atol=1e-5) or torch.allclose(whole[i], x[i].flip(-1), atol=1e-5)


def test_real_resnet18_backbone_runs_on_cpu():
    torch.manual_seed(0)
    res = finetune(build_headless("resnet18"), 512, 2, _data(32, 1, 32), _data(16, 2, 32), _data(16, 3, 32),
                   max_steps=4, batch_size=8, eval_every=2, progress=False, device="cpu", augment=None)
    assert res.steps == 4 and len(res.history) == 2 and res.test_pred.shape == (16,)


def test_bad_input_is_a_clear_error():
    with pytest.raises(FinetuneError, match="val dataset is empty"):
        finetune(small_cnn(), 8, 2, _data(16, 1), _data(0, 2), _data(8, 3), progress=False)
    with pytest.raises(FinetuneError, match="unknown augment"):
        _run(augment="mixup")
    with pytest.raises(FinetuneError, match=r"labels must lie in 0..1"):
        finetune(small_cnn(), 8, 2, TensorDataset(torch.randn(8, 3, 8, 8), torch.arange(8)), _data(4, 2),
                 _data(4, 3), max_steps=2, progress=False)
    with pytest.raises(FinetuneError, match="unknown metric"):
        _run(metric="f1")


# ------------------------------------------------------------------ issue #15: the authors' schedule and augmentation
def test_cosine_schedule_matches_the_authors_cosine_annealing():
    """Authors: CosineAnnealingLR(T_max=steps) stepped after every update; step t used lr (1 + cos(pi t / T)) / 2."""
    steps, lr = 8, 1e-2
    res = _run(max_steps=steps, eval_every=4, schedule="cosine", lr=lr)
    rates = res.learning_rates
    assert rates.shape == (steps,) and res.summary()["schedule"] == "cosine"
    assert rates[0] == lr                                              # first step: the full rate
    assert rates[steps // 2] == pytest.approx(lr / 2, rel=1e-12)       # middle: half
    assert rates[-1] == pytest.approx(lr * (1 + np.cos(np.pi * (steps - 1) / steps)) / 2, rel=1e-12)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched, torch_rates = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps), []
    for _ in range(steps):
        torch_rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(rates, torch_rates, rtol=1e-9)
    const = _run(max_steps=steps, eval_every=4)
    assert const.summary()["schedule"] == "constant" and (const.learning_rates == lr).all()
    assert const.history != res.history


def test_unknown_schedule_is_refused():
    with pytest.raises(FinetuneError, match="unknown schedule 'linear'"):
        _run(schedule="linear")


def _images(n, seed, side=24):
    """Raw PIL images (not square, so a crop of the raw image differs from one of the centre square)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    imgs = [Image.fromarray((np.clip(rng.normal(0.3 + 0.4 * c, 0.2, (side, side + 8, 3)), 0, 1) * 255).astype(np.uint8))
            for c in y]
    return imgs, y


def _split(n, seed):
    from medssl_utils.models.preprocessing import make_preprocess

    imgs, y = _images(n, seed)
    return ft.ImageSplit(imgs.__getitem__, y, make_preprocess("imagenet", SIZE))


def test_authors_augmentation_crops_the_raw_image_deterministically():
    base = _split(6, 0)
    aug = base.with_raw_augment(ft.authors_crop_flip, seed=5)
    assert base.augment is None                                        # a copy: the caller's split is untouched
    first = [aug[i][0] for i in range(6)]
    assert all(t.shape == (3, SIZE, SIZE) for t in first)
    assert all(torch.equal(a, aug[i][0]) for i, a in enumerate(first))    # same (seed, epoch, item): same crop
    assert not torch.equal(first[0], base[0][0])
    aug.set_epoch(1)
    assert not all(torch.equal(a, aug[i][0]) for i, a in enumerate(first))
    other = base.with_raw_augment(ft.authors_crop_flip, seed=6)
    assert not all(torch.equal(a, other[i][0]) for i, a in enumerate(first))
    # the whole raw image at its own ratio is only resized (and maybe flipped)
    from PIL import Image
    from torchvision.transforms import functional as TF

    img = Image.fromarray((np.random.default_rng(1).random((20, 20, 3)) * 255).astype(np.uint8))
    whole = TF.to_tensor(ft.authors_crop_flip(img, 12, torch.Generator().manual_seed(0), scale=(1, 1), ratio=(1, 1)))
    resized = TF.to_tensor(TF.resize(img, [12, 12], interpolation=TF.InterpolationMode.BICUBIC))
    assert torch.equal(whole, resized) or torch.equal(whole, resized.flip(-1))


def test_authors_augmentation_in_finetune_is_seeded_and_differs_from_paper():
    train, val, test = _split(48, 1), _split(16, 2), _split(16, 3)
    kw = dict(max_steps=6, batch_size=8, eval_every=3, progress=False, device="cpu")
    a = finetune(small_cnn(), 8, 2, train, val, test, augment="authors", seed=2, **kw)
    b = finetune(small_cnn(), 8, 2, train, val, test, augment="authors", seed=2, **kw)
    paper = finetune(small_cnn(), 8, 2, train, val, test, augment="paper", seed=2, **kw)
    assert a.history == b.history and np.array_equal(a.test_proba, b.test_proba)
    assert a.summary()["augment"] == "authors"
    assert [h["train_loss"] for h in a.history] != [h["train_loss"] for h in paper.history]
    assert train.augment is val.augment is test.augment is None        # eval splits never augmented
    with pytest.raises(FinetuneError, match="train_ds must be an ImageSplit"):
        _run(augment="authors")


def test_a_split_preprocesses_each_item_once_and_finetunes_as_without_the_memo(monkeypatch):
    opened = []
    train, val, test = _split(48, 1), _split(16, 2), _split(16, 3)
    image = train.image
    train.image = lambda i: opened.append(i) or image(i)
    kw = dict(max_steps=12, batch_size=8, eval_every=4, progress=False, device="cpu")
    kept = finetune(small_cnn(), 8, 2, train, val, test, seed=2, **kw)
    assert sorted(opened) == list(range(48))                 # 2 epochs, each image opened once
    monkeypatch.setattr(ft.ImageSplit, "MEMO_BYTES", 0)      # a split too large to keep: preprocessed every time
    opened.clear()
    train, val, test = _split(48, 1), _split(16, 2), _split(16, 3)
    train.image = lambda i: opened.append(i) or image(i)
    fresh = finetune(small_cnn(), 8, 2, train, val, test, seed=2, **kw)
    assert len(opened) == 96
    assert kept.history == fresh.history and np.array_equal(kept.test_proba, fresh.test_proba)
