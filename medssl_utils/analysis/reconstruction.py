"""Feature inversion with a deep image prior, and the perceptual distance of the result (paper section 4.4.2).

Facts taken from the paper and the authors' code (AUTHORS_CODE.md §4.5, after Zhao et al. [35] and
Ulyanov et al. [46]):
- target: the backbone's last spatial map before pooling (``feature_map``: ResNet ``layer4``, DenseNet
  ``denseblock4`` before ``norm5``), computed in eval mode;
- generator: the DIP "skip" encoder-decoder, 6 levels with 16/32/64/128/128/128 channels, 4 skip channels
  per level, filters 7/7/5/5/3/3, average-pool downsampling, nearest upsampling, zero padding, LeakyReLU,
  no output sigmoid; input: fixed noise U(0, 1) * 0.1 with 32 channels at 256 x 256, output cropped to 224;
- loss: MSE between the feature maps; Adam, learning rate 1e-3, 3000 iterations; output clipped to [0, 1];
- LPIPS [47] with AlexNet, VGG and SqueezeNet trunks (version 0.1 linear heads), inputs scaled to [-1, 1];
  the reported "average" is the mean of the three nets.

Switch for a deviation of the authors' code: they fed the *unnormalised* [0, 1] image to every model, so
the features they inverted were not the ones the model produces on its own preprocessing. The paper says
nothing, and every other experiment uses each model's own normalisation, so the default here is
``normalise_input=True``; ``normalise_input=False`` reproduces the authors. Their loop ran 3001 updates
(``while n_iter <= max_iter``); pass ``n_steps=3001`` to match that exactly.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from ..models.architectures import feature_map
from ._common import AnalysisError, as_image_tensor, batchnorm_mode, module_device

# AUTHORS_CODE.md §4.5 (the authors' reconstruction.py arguments).
PAPER_STEPS = 3000
PAPER_LR = 1e-3
DIP_CHANNELS = (16, 32, 64, 128, 128, 128)
DIP_SKIP = 4
DIP_FILTERS = (7, 7, 5, 5, 3, 3)
DIP_NOISE_CHANNELS = 32
DIP_NOISE_SCALE = 0.1


# --------------------------------------------------------------------------------------------------
# The "skip" generator
# --------------------------------------------------------------------------------------------------
def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=(k - 1) // 2)      # zero padding keeps the size (odd k)


def _block(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [_conv(cin, cout, k), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]


class _Level(nn.Module):
    """One scale: a skip branch at this resolution beside a branch that halves, recurses and doubles back."""

    def __init__(self, cin: int, channels: Sequence[int], skip: int, filters: Sequence[int]):
        super().__init__()
        down, k = channels[0], filters[0]
        self.skip = nn.Sequential(*_block(cin, skip, 1)) if skip else None
        self.down = nn.Sequential(_conv(cin, down, k), nn.AvgPool2d(2), nn.BatchNorm2d(down), nn.LeakyReLU(0.2),
                                  *_block(down, down, k))
        self.inner = _Level(down, channels[1:], skip, filters[1:]) if len(channels) > 1 else None
        deeper_out = channels[1] if self.inner is not None else down
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.merge = nn.Sequential(nn.BatchNorm2d(skip + deeper_out), *_block(skip + deeper_out, down, k),
                                   *_block(down, down, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deeper = self.down(x)
        if self.inner is not None:
            deeper = self.inner(deeper)
        deeper = self.up(deeper)
        joined = torch.cat([self.skip(x), deeper], dim=1) if self.skip is not None else deeper
        return self.merge(joined)


class SkipGenerator(nn.Module):
    """DIP encoder-decoder with skip connections; input side must be a multiple of 2**levels."""

    def __init__(self, in_channels: int = DIP_NOISE_CHANNELS, out_channels: int = 3,
                 channels: Sequence[int] = DIP_CHANNELS, skip: int = DIP_SKIP,
                 filters: Sequence[int] = DIP_FILTERS):
        super().__init__()
        if len(channels) != len(filters) or not channels:
            raise AnalysisError(f"SkipGenerator: channels {tuple(channels)} and filters {tuple(filters)} must be "
                                "non-empty and of the same length (one per level)")
        if any(f % 2 == 0 for f in filters):
            raise AnalysisError(f"SkipGenerator: filters {tuple(filters)} must be odd (size-preserving padding)")
        self.levels = len(channels)
        self.body = _Level(in_channels, channels, skip, filters)
        self.head = nn.Conv2d(channels[0], out_channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(z))


def noise_side(image_size: int, levels: int) -> int:
    """Side of the noise input: a multiple of 2**levels >= image_size, with at least 4 x 4 at the bottom.

    224 px and 6 levels give 256 (the authors' size, 4 x 4 at the bottom). The floor of 4 keeps the
    deepest train-mode BatchNorm from seeing a single value per channel on small images.
    """
    m = 2 ** levels
    return m * max(4, -(-image_size // m))


# --------------------------------------------------------------------------------------------------
# Inversion
# --------------------------------------------------------------------------------------------------
class Reconstruction(NamedTuple):
    image: np.ndarray     # (3, S, S) float32 in [0, 1]: the generator's last output, clipped
    losses: np.ndarray    # (n_steps,) feature MSE before each update


def invert_features(module: nn.Module, image01: torch.Tensor, normalise: Callable | None = None, *,
                    n_steps: int = PAPER_STEPS, lr: float = PAPER_LR, normalise_input: bool = True,
                    seed: int = 0, channels: Sequence[int] = DIP_CHANNELS, skip: int = DIP_SKIP,
                    filters: Sequence[int] = DIP_FILTERS, noise_channels: int = DIP_NOISE_CHANNELS,
                    noise_scale: float = DIP_NOISE_SCALE, device: str | torch.device | None = None,
                    progress: bool = True) -> Reconstruction:
    """Fit a fresh DIP generator so that the backbone's feature map of its output matches the image's.

    The backbone stays in eval mode and is not modified (no parameter gets a gradient). The noise and the
    generator's initial weights come from ``seed``. ``normalise_input`` (default True, see module doc):
    both the original and the generated image go through ``normalise`` before the backbone; False feeds
    them unnormalised, as the authors did. The output is the top-left S x S of the generator's
    ``noise_side`` output; for small images pass fewer levels (e.g. 4 for 64 px: 64 x 64 noise instead of
    256 x 256). Cost measured on one shared CPU thread: ~4 s/step for the paper generator + ResNet-50 at
    224 px (3000 steps ~3.3 h), ~0.5 s/step for a 4-level generator + ResNet-18 at 64 px.
    """
    x01 = as_image_tensor(image01)
    _, height, width = x01.shape
    if n_steps < 1:
        raise AnalysisError(f"n_steps={n_steps}; expected >= 1")
    if lr <= 0:
        raise AnalysisError(f"lr={lr}; expected > 0")
    if normalise_input and normalise is None:
        raise AnalysisError("normalise_input=True needs a normalise callable (e.g. Preprocess.normalise); "
                            "pass normalise_input=False to feed [0, 1] images as the authors did")
    prep = normalise if normalise_input else (lambda t: t)
    if normalise_input:
        _check_differentiable(prep)
    dev = module_device(module, device)

    gen_rng = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = SkipGenerator(noise_channels, 3, channels, skip, filters)
    side = noise_side(max(height, width), generator.levels)
    z = (torch.rand((1, noise_channels, side, side), generator=gen_rng) * noise_scale).to(dev)
    generator.to(dev).train()
    params = list(generator.parameters())
    optimiser = torch.optim.Adam(params, lr=lr)

    losses = np.empty(n_steps, dtype=np.float64)
    steps = range(n_steps)
    if progress:
        from ..progress import bar
        steps = bar(steps, desc="deep image prior", unit="step", leave=False)
    with batchnorm_mode(module, "eval"):
        with torch.no_grad():
            target = feature_map(module, prep(x01)[None].to(dev)).detach()
        for step in steps:
            out = generator(z)[:, :, :height, :width]
            loss = torch.mean((feature_map(module, prep(out)) - target) ** 2)
            grads = torch.autograd.grad(loss, params)   # gradients for the generator only
            for p, g in zip(params, grads):
                p.grad = g
            optimiser.step()
            losses[step] = float(loss.detach())
        with torch.no_grad():
            final = generator(z)[0, :, :height, :width].clamp(0.0, 1.0)
    return Reconstruction(image=final.cpu().numpy().astype(np.float32), losses=losses)


def _check_differentiable(normalise: Callable) -> None:
    """The generator is trained through ``normalise``: it must pass gradients (histogram equalisation does not)."""
    probe = torch.full((1, 3, 8, 8), 0.5, requires_grad=True)
    try:
        ok = normalise(probe).requires_grad
    except RuntimeError:
        ok = False
    if not ok:
        raise AnalysisError("normalise_input=True but this normalise does not pass gradients (e.g. histogram "
                            "equalisation), so the generator cannot be trained through it; use "
                            "normalise_input=False (the authors' choice: unnormalised [0, 1] input)")


# --------------------------------------------------------------------------------------------------
# Perceptual distance
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Trunk:
    lpips_net: str      # lpips.LPIPS(net=...)
    filename: str       # torchvision's checkpoint name; the 8 hex digits are the start of its sha256
    builder: str        # torchvision.models function


LPIPS_TRUNKS = (
    _Trunk("alex", "alexnet-owt-7be5be79.pth", "alexnet"),
    _Trunk("vgg", "vgg16-397923af.pth", "vgg16"),
    _Trunk("squeeze", "squeezenet1_1-b8a52dc0.pth", "squeezenet1_1"),
)
# Names the substitute metrics go by: chosen so they can never be read as LPIPS.
SUBSTITUTE_METRICS = ("one_minus_ssim", "mse")


def _hash_prefix(filename: str) -> str:
    return filename.rsplit("-", 1)[1].split(".")[0]


def _check_hash(path: Path) -> None:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if not h.hexdigest().startswith(_hash_prefix(path.name)):
        raise AnalysisError(f"{path}: sha256 {h.hexdigest()[:16]}... does not start with "
                            f"{_hash_prefix(path.name)}, the hash in torchvision's file name; not the ImageNet weights")


def _build_lpips(net: str, weights_path: Path) -> nn.Module:
    """lpips.LPIPS with its shipped v0.1 linear heads and the torchvision ImageNet trunk from ``weights_path``.

    ``lpips`` builds its trunk with torchvision's ``pretrained=True``, which downloads; here the trunk is
    built random (``pnet_rand=True``, no download) and then every trunk parameter is overwritten from the file.
    """
    import warnings

    import lpips

    with warnings.catch_warnings():     # torchvision's deprecation notice for lpips's `pretrained=False`
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    trunk = model.net.state_dict()
    new = {}
    for key in trunk:                         # "slice2.3.weight" <- torchvision "features.3.weight"
        source = "features." + key.split(".", 1)[1]
        if source not in state:
            raise AnalysisError(f"{weights_path}: key {source!r} missing; expected torchvision "
                                f"{net} weights with a 'features' module")
        if tuple(state[source].shape) != tuple(trunk[key].shape):
            raise AnalysisError(f"{weights_path}: {source!r} has shape {tuple(state[source].shape)}, "
                                f"expected {tuple(trunk[key].shape)}")
        new[key] = state[source]
    model.net.load_state_dict(new, strict=True)
    return model.eval()


@lru_cache(maxsize=3)
def _cached_lpips(net: str, path: str, mtime_ns: int, size: int) -> nn.Module:
    _check_hash(Path(path))
    return _build_lpips(net, Path(path))


def lpips_weights_present(weights_dir: str | Path | None) -> dict[str, Path]:
    """The LPIPS nets whose torchvision trunk file is in ``weights_dir`` (name -> path)."""
    if weights_dir is None:
        return {}
    found = {}
    for trunk in LPIPS_TRUNKS:
        p = Path(weights_dir) / trunk.filename
        if p.is_file():
            found[trunk.lpips_net] = p
    return found


def _as_chw(img, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(img, dtype=np.float32))
    return as_image_tensor(t, name)


def perceptual_distance(a, b, weights_dir: str | Path | None = None, *,
                        require_lpips: bool = False) -> dict[str, float]:
    """Distances between two [0, 1] images (3, H, W): LPIPS when its trunks are available, else a substitute.

    Always returned: ``one_minus_ssim`` (1 - SSIM, skimage, data range 1) and ``mse`` -- a clearly named
    substitute, never LPIPS. ``lpips_alex`` / ``lpips_vgg`` / ``lpips_squeeze`` are added for each net whose
    torchvision ImageNet trunk (file name and sha256 prefix as torchvision publishes them) is in
    ``weights_dir``, and ``lpips_mean`` (the paper's "average") only when all three are. A randomly
    initialised trunk is never used. ``require_lpips=True`` makes missing trunk files an error.
    Resize both images beforehand (the authors: bicubic 224 + centre crop).
    """
    from skimage.metrics import structural_similarity

    ta, tb = _as_chw(a, "a"), _as_chw(b, "b")
    if ta.shape != tb.shape:
        raise AnalysisError(f"perceptual_distance: images differ in shape {tuple(ta.shape)} vs {tuple(tb.shape)}")
    na, nb = ta.permute(1, 2, 0).double().numpy(), tb.permute(1, 2, 0).double().numpy()
    win = min(7, min(na.shape[:2]) - (1 - min(na.shape[:2]) % 2))
    if win < 3:
        raise AnalysisError(f"perceptual_distance: images of {na.shape[:2]} px are too small for SSIM (>= 3 px)")
    ssim = structural_similarity(na, nb, channel_axis=-1, data_range=1.0, win_size=win)
    out = {"one_minus_ssim": float(1.0 - ssim), "mse": float(np.mean((na - nb) ** 2))}

    present = lpips_weights_present(weights_dir)
    if require_lpips and len(present) < len(LPIPS_TRUNKS):
        missing = [t.filename for t in LPIPS_TRUNKS if t.lpips_net not in present]
        raise AnalysisError(f"require_lpips=True but weights_dir={weights_dir!s} lacks the torchvision trunk "
                            f"weights {missing}; LPIPS cannot be computed without them")
    values = []
    for trunk in LPIPS_TRUNKS:
        if trunk.lpips_net not in present:
            continue
        p = present[trunk.lpips_net].resolve()
        st = p.stat()
        model = _cached_lpips(trunk.lpips_net, str(p), st.st_mtime_ns, st.st_size)
        with torch.no_grad():
            d = float(model(ta[None] * 2 - 1, tb[None] * 2 - 1).reshape(()))
        out[f"lpips_{trunk.lpips_net}"] = d
        values.append(d)
    if len(values) == len(LPIPS_TRUNKS):
        out["lpips_mean"] = float(np.mean(values))
    return out


def headline_metric(distances: dict[str, float]) -> str:
    """The key to plot: ``lpips_mean`` when LPIPS was computed with all three trunks, else ``one_minus_ssim``."""
    return "lpips_mean" if "lpips_mean" in distances else "one_minus_ssim"
