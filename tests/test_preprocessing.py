"""Each paper model gets its own input preprocessing (paper 4.1): ImageNet statistics, SimCLR-v1 unnormalised
[0, 1], MIMIC-CheXpert histogram-equalised to 0-255, MoCo-CXR ImageNet by default with a CXR switch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from medssl_utils.models import ModelError, get_spec
from medssl_utils.models.preprocessing import (CXR_MEAN, CXR_STD, IMAGENET_MEAN, IMAGENET_STD, histogram_equalise,
                                               make_preprocess)


def _image(seed: int = 0, size: tuple[int, int] = (40, 52), grey: bool = False) -> Image.Image:
    rng = np.random.default_rng(seed)
    if grey:
        return Image.fromarray(rng.integers(0, 256, size=size, dtype=np.uint8)).convert("RGB")
    return Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8))


def _preprocess(name: str, **options):
    spec = get_spec(name)
    return make_preprocess(spec.preprocessing, 32, **options)


def _unit(img: Image.Image, size: int = 32) -> torch.Tensor:
    """Independent reference: bicubic shorter-side resize, centre crop, [0, 1]."""
    img = TF.resize(img, size, interpolation=InterpolationMode.BICUBIC)
    return TF.to_tensor(TF.center_crop(img, [size, size]))


def test_imagenet_statistics():
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406) and IMAGENET_STD == (0.229, 0.224, 0.225)
    pre = _preprocess("moco_v2")
    img = _image(1)
    expected = (_unit(img) - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    torch.testing.assert_close(pre(img), expected)
    # an image of the ImageNet mean colour maps to about zero
    mean_img = Image.new("RGB", (40, 40), tuple(int(round(255 * m)) for m in IMAGENET_MEAN))
    assert pre(mean_img).abs().max() < 0.5 / 255 / min(IMAGENET_STD) + 1e-6


@pytest.mark.parametrize("name", ["supervised_r50", "supervised_r18", "supervised_d121", "moco_v2", "swav", "byol",
                                  "pirl", "moco_cxr_r18", "moco_cxr_d121"])
def test_imagenet_normalised_models(name):
    assert get_spec(name).preprocessing == "imagenet"


def test_simclr_v1_gets_unnormalised_unit_input():
    pre = _preprocess("simclr_v1")
    img = _image(2)
    x = pre(img)
    torch.testing.assert_close(x, _unit(img))
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.9  # the full [0, 1] range, not standardised


def test_mimic_chexpert_gets_histogram_equalised_0_255():
    for name in ("mimic_chexpert_lr0.01", "mimic_chexpert_lr0.1", "mimic_chexpert_lr1.0"):
        assert get_spec(name).preprocessing == "histeq"
    pre = _preprocess("mimic_chexpert_lr0.1")
    img = _image(3, grey=True)
    x, unit = pre(img), _unit(img)
    assert x.shape == (3, 32, 32)
    assert float(x.max()) == pytest.approx(255.0) and x.min() >= 0
    # a monotone map of the input values (equalisation keeps the order of intensities)
    order = torch.argsort(unit.flatten())
    assert (torch.diff(x.flatten()[order]) >= -1e-4).all()
    # the output histogram is flat: quantiles of the output follow a straight line 0..255
    q = np.quantile(x.numpy(), [0.1, 0.25, 0.5, 0.75, 0.9])
    np.testing.assert_allclose(q, 255 * np.array([0.1, 0.25, 0.5, 0.75, 0.9]), atol=12)


def test_histogram_spans_the_images_own_range():
    """As CovidPrognosis: the 256 bins cover min..max of the image, so a low-contrast image keeps its levels."""
    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.uniform(0.2, 0.4, size=(3, 64, 64)).astype(np.float32))
    out = histogram_equalise(x)
    assert len(torch.unique(out)) > 200  # a fixed 0..1 range would leave ~51 bins over this image
    assert float(out.max()) == pytest.approx(255.0)
    batch = torch.stack([x, x.flip(-1) * 0.5])
    torch.testing.assert_close(make_preprocess("histeq", 64).normalise(batch)[1], histogram_equalise(batch[1]))


def test_moco_cxr_imagenet_by_default_cxr_on_request():
    img = _image(5, grey=True)
    default, cxr = _preprocess("moco_cxr_d121"), _preprocess("moco_cxr_d121", normalisation="cxr")
    unit = _unit(img)
    torch.testing.assert_close(default(img), (unit - torch.tensor(IMAGENET_MEAN).view(3, 1, 1))
                               / torch.tensor(IMAGENET_STD).view(3, 1, 1))
    torch.testing.assert_close(cxr(img), (unit - torch.tensor(CXR_MEAN).view(3, 1, 1)) / torch.tensor(CXR_STD).view(3, 1, 1))
    assert default.key != cxr.key  # the feature cache tells them apart


def test_keys_differ_between_kinds_and_bad_kind_fails():
    keys = {make_preprocess(k, 224).key for k in ("imagenet", "none", "histeq", "cxr")}
    assert len(keys) == 4
    with pytest.raises(ModelError, match="unknown preprocessing 'zscore'"):
        make_preprocess("imagenet", 224, normalisation="zscore")


def test_authors_square_fewshot_resize_distorts_the_aspect_ratio():
    """fewshot_small_resize=257 is the authors' Resize([257, 257]) (bilinear) + CenterCrop(224)."""
    from torchvision import transforms as T

    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (300, 420, 3), dtype=np.uint8))   # not square
    ours = make_preprocess("none", 224, fewshot_small_resize=257)
    theirs = T.Compose([T.Resize([257, 257]), T.CenterCrop(224), T.ToTensor()])
    assert torch.allclose(ours(img), theirs(img), atol=1e-6)
    default = make_preprocess("none", 224)
    assert ours.key != default.key and "square257" in ours.key
    assert not torch.allclose(default(img), ours(img))
    assert make_preprocess("none", 32, fewshot_small_resize=257).square == 37      # scaled to the input side
    with pytest.raises(Exception, match="fewshot_small_resize"):
        make_preprocess("none", 224, fewshot_small_resize=200)
