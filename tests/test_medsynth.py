"""MedSynth acceptance: registry records, determinism, cache, view pairs, and that every set is learnable."""
from __future__ import annotations

import numpy as np
import pytest

from medssl_utils.data import DatasetError, available, get_spec, load_dataset
from medssl_utils.data.medsynth import example_grid
from medssl_utils.data.medsynth.common import make_loader, splat

# name -> (stands_for, number of classes, few-shot ways, many-shot protocols, metric, domain)
EXPECTED = {
    "medsynth-chexpert": ("chexpert", 2, 2, ("linear", "finetune"), "accuracy", "in"),
    "medsynth-chestx14": ("chestx14", 7, 5, (), "accuracy", "in"),
    "medsynth-montgomery": ("montgomery", 2, 2, (), "accuracy", "in"),
    "medsynth-shenzhen": ("shenzhen", 2, 2, (), "accuracy", "in"),
    "medsynth-cxr-source": (None, 6, 2, (), "accuracy", "in"),
    "medsynth-eyepacs": ("eyepacs", 5, 5, ("linear", "finetune"), "mean_per_class_accuracy", "out"),
    "medsynth-amd": ("ichallenge_amd", 2, 2, (), "accuracy", "out"),
    "medsynth-pm": ("ichallenge_pm", 2, 2, (), "accuracy", "out"),
    "medsynth-bach": ("bach", 4, 2, (), "accuracy", "out"),
}
SMALL = {"n_per_class": 6, "scale": 1.0}


def test_registry_records_match_the_roles_of_the_real_sets():
    synthetic = sorted(n for n in available() if get_spec(n).synthetic)
    assert synthetic == sorted(EXPECTED)  # the nine sets, and the placeholder toy set is gone
    for name, (real, k, ways, many, metric, domain) in EXPECTED.items():
        spec = get_spec(name)
        assert "(synthetic)" in spec.title
        assert spec.stands_for == real
        assert len(spec.classes) == k and ways <= k
        assert (spec.fewshot_ways, spec.manyshot, spec.metric, spec.domain) == (ways, many, metric, domain)
        assert spec.split == "random_80_20"
        assert {"n_per_class", "scale"} <= set(spec.options)
        assert spec.multiview == (name in {"medsynth-chexpert", "medsynth-eyepacs", "medsynth-cxr-source"})


def test_label_structure_and_invariances_copy_the_real_record():
    for name, (real, *_rest) in EXPECTED.items():
        if real is None or real not in available():
            continue
        spec, real_spec = get_spec(name), get_spec(real)
        assert spec.classes == real_spec.classes, name
        assert spec.invariances == real_spec.invariances, name
        assert (spec.modality, spec.domain, spec.fewshot_ways, spec.manyshot, spec.metric, spec.multiview) == \
            (real_spec.modality, real_spec.domain, real_spec.fewshot_ways, real_spec.manyshot, real_spec.metric,
             real_spec.multiview), name
        assert (spec.fewshot_pool_limit, spec.fewshot_square_resize) == \
            (real_spec.fewshot_pool_limit, real_spec.fewshot_square_resize), name


def test_authors_fewshot_groups_are_the_code_notes_lists():
    """Large sets (pool of 10,001): CheXpert, ChestX-ray14, EyePACS; small (square 257 px): the other five."""
    large = {n for n in available() if get_spec(n).fewshot_pool_limit == 10_001 and not get_spec(n).synthetic}
    small = {n for n in available() if get_spec(n).fewshot_square_resize and not get_spec(n).synthetic}
    assert large == {"chexpert", "chestx14", "eyepacs"}
    assert small == {"montgomery", "shenzhen", "bach", "ichallenge_amd", "ichallenge_pm"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_same_seed_same_bytes_other_seed_other_images(name):
    a = load_dataset(name, image_size=32, seed=3, **SMALL)
    b = load_dataset(name, image_size=32, seed=3, **SMALL)
    c = load_dataset(name, image_size=32, seed=4, **SMALL)
    assert a.images.dtype == np.uint8 and a.images.shape == (6 * len(a.classes), 32, 32, 3)
    assert a.images.tobytes() == b.images.tobytes() and a.ids == b.ids and a.pairs == b.pairs
    assert np.array_equal(a.labels, b.labels)
    assert a.images.tobytes() != c.images.tobytes()
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert np.bincount(a.labels).tolist() == [6] * len(a.classes)
    assert a.images.std() > 5  # not blank


def test_fingerprint_names_version_size_seed_and_options():
    a = load_dataset("medsynth-bach", image_size=32, seed=0, **SMALL)
    b = load_dataset("medsynth-bach", image_size=40, seed=0, **SMALL)
    c = load_dataset("medsynth-bach", image_size=32, seed=0, n_per_class=6, scale=0.5)
    assert len({a.fingerprint, b.fingerprint, c.fingerprint}) == 3
    assert "size=32" in a.fingerprint and "seed=0" in a.fingerprint and ":v" in a.fingerprint
    assert np.bincount(c.labels).tolist() == [3] * 4  # scale multiplies n_per_class
    assert b.images.shape[1:] == (40, 40, 3)


def test_cache_is_written_once_atomically_and_reused(tmp_path):
    calls = []

    def render(rng, labels, size, *, name):
        calls.append(1)
        return rng.integers(0, 255, (len(labels), size, size, 3), dtype=np.uint8), [(0, 1)], \
            [f"{name}-{i}" for i in range(len(labels))]

    spec = get_spec("medsynth-amd")
    loader = make_loader(render, version=7)
    first = loader(spec, cache_dir=tmp_path, image_size=24, seed=1, n_per_class=5)
    files = list((tmp_path / "medsynth").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and "-v7-" in files[0].name
    second = loader(spec, cache_dir=tmp_path, image_size=24, seed=1, n_per_class=5)
    assert len(calls) == 1  # the second call read the cache
    assert second.images.tobytes() == first.images.tobytes() and second.ids == first.ids
    assert second.pairs == first.pairs and second.fingerprint == first.fingerprint
    loader(spec, cache_dir=tmp_path, image_size=24, seed=2, n_per_class=5)
    assert len(calls) == 2 and len(list((tmp_path / "medsynth").iterdir())) == 2  # no temp files left behind


def test_real_generator_cache_round_trip_and_corrupt_file_is_one_clear_error(tmp_path):
    a = load_dataset("medsynth-chexpert", cache_dir=tmp_path, image_size=32, **SMALL)
    (path,) = (tmp_path / "medsynth").glob("*.npz")
    b = load_dataset("medsynth-chexpert", cache_dir=tmp_path, image_size=32, **SMALL)
    assert a.images.tobytes() == b.images.tobytes() and a.pairs == b.pairs
    path.write_bytes(b"not an npz")
    with pytest.raises(DatasetError, match="unreadable"):
        load_dataset("medsynth-chexpert", cache_dir=tmp_path, image_size=32, **SMALL)


@pytest.mark.parametrize("name", ["medsynth-chexpert", "medsynth-eyepacs", "medsynth-cxr-source"])
def test_view_pairs_join_two_views_of_one_patient(name):
    ds = load_dataset(name, image_size=32, n_per_class=20, scale=1.0)
    assert len(ds.pairs) > 0
    seen = set()
    for i, j in ds.pairs:
        assert 0 <= i < len(ds) and 0 <= j < len(ds) and i != j
        assert ds.labels[i] == ds.labels[j]
        pi, vi = ds.ids[i].rsplit("-", 1)
        pj, vj = ds.ids[j].rsplit("-", 1)
        assert pi == pj and vi != vj  # same patient, other view
        assert not np.array_equal(ds.images[i], ds.images[j])
        seen.update((i, j))
    assert len(seen) == 2 * len(ds.pairs)  # each image in at most one pair


def test_sets_without_views_have_no_pairs():
    for name in ("medsynth-chestx14", "medsynth-bach", "medsynth-amd"):
        assert load_dataset(name, image_size=32, **SMALL).pairs == []


@pytest.mark.parametrize("bad", [{"n_per_class": 0}, {"scale": -1.0}, {"n_per_class": 2.5}])
def test_bad_options_are_one_clear_error(bad):
    with pytest.raises(DatasetError, match="n_per_class|scale"):
        load_dataset("medsynth-pm", image_size=32, **bad)
    with pytest.raises(DatasetError, match="image_size"):
        load_dataset("medsynth-pm", image_size=4, **SMALL)


def test_splat_matches_direct_gaussians():
    rng = np.random.default_rng(0)
    n, size = 3, 20
    img = np.array([0, 0, 2])
    cy, cx = rng.uniform(0.2, 0.8, 3), rng.uniform(0.2, 0.8, 3)
    sg, am = np.array([0.03, 0.05, 0.04]), np.array([1.0, 0.5, 2.0])
    got = splat(n, size, img, cy, cx, sg, am)
    c = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(c, c, indexing="ij")
    want = np.zeros((n, size, size))
    for k in range(3):
        want[img[k]] += am[k] * np.exp(-((yy - cy[k]) ** 2 + (xx - cx[k]) ** 2) / (2 * sg[k] ** 2))
    assert np.abs(got - want).max() < 0.02 * am.max()  # only the far tails (beyond 3 sigma) are cut


def _cv_linear(x, y, folds=4):
    """Ridge classifier on standardised pixels: a closed-form linear baseline, fast and deterministic."""
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    model = make_pipeline(StandardScaler(), RidgeClassifier(alpha=1000.0))
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    with threadpool_limits(1):
        return cross_val_score(model, x, y, cv=cv).mean()


def _random_conv_features(images: np.ndarray, n_filters: int = 24) -> np.ndarray:
    """Fixed random 5x5 filters + ReLU, average-pooled to 4x4 and max-pooled globally.

    The cheapest learner that can see small local patterns (dots, blobs) wherever they are, which a
    linear model on raw pixels cannot when the pattern moves from image to image.
    """
    import torch

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(n_filters, 3, 5, 5, generator=g)
    w -= w.mean(dim=(1, 2, 3), keepdim=True)  # zero-mean filters respond to patterns, not brightness
    x = torch.tensor(images, dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    x = x - x.mean(dim=(2, 3), keepdim=True)
    with torch.no_grad():
        r = torch.relu(torch.nn.functional.conv2d(x, w, padding=2))
        avg = torch.nn.functional.adaptive_avg_pool2d(r, 4).flatten(1)
        mx = r.amax(dim=(2, 3))
    return torch.cat([avg, mx], 1).numpy()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cheap_learners_are_above_chance(name):
    """Learnability on small samples at 32 px: raw down-sampled pixels (linear) or random conv features."""
    k = len(get_spec(name).classes)
    n = 80 if k <= 2 else 40
    ds = load_dataset(name, image_size=32, seed=11, n_per_class=n, scale=1.0)
    pixels = ds.images.reshape(len(ds), 16, 2, 16, 2, 3).mean(axis=(2, 4)).reshape(len(ds), -1)
    acc_pix = _cv_linear(pixels, ds.labels)
    acc_conv = _cv_linear(_random_conv_features(ds.images), ds.labels)
    chance = 1.0 / k
    msg = f"{name}: pixels {acc_pix:.2f}, conv {acc_conv:.2f}, chance {chance:.2f}"
    assert max(acc_pix, acc_conv) > chance + 0.1, msg
    assert min(acc_pix, acc_conv) < 0.995  # not trivially separable by both


def test_example_grid_is_labelled_synthetic():
    import matplotlib

    matplotlib.use("Agg")
    fig = example_grid(["medsynth-chexpert", "medsynth-bach"], per_class=2, image_size=32)
    assert "SYNTHETIC" in fig._suptitle.get_text()
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 2 * 2 + 4 * 2
    with pytest.raises(DatasetError):
        example_grid([], per_class=2)
