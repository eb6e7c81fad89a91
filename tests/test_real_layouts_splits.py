"""Issue 19, defect 6: one ``data_root`` layout rule for the eight real datasets, one-line layout errors, and
patient-level random splits where the publisher names patients (image level as the authors' switch)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medssl_utils.data import DatasetError, get_spec, load_dataset
from medssl_utils.data.manifests import load_manifest, make_manifest, save_manifest, split_for
from medssl_utils.data.real import NAMES
from medssl_utils.data.registry import expected_layout

try:
    from tests.fixtures import real_datasets as fx
except ImportError:  # pytest's default rootdir-less import puts tests/ itself on sys.path
    from fixtures import real_datasets as fx

GROUPED = ("chexpert", "chestx14", "eyepacs")   # the publishers that name patients


def old_make_manifest(ds, split: str, seed: int = 0, val_fraction: float = 0.2) -> pd.DataFrame:
    """The per-image split as the package made it before patient grouping (commit 6dd3320), kept verbatim:
    the image-level switch and every dataset without patients must still give exactly this."""
    def pick(labels, index, frac, rng):
        picked = []
        for c in np.unique(labels):
            members = index[labels == c]
            picked.append(rng.permutation(members)[:int(round(frac * len(members)))])
        return np.concatenate(picked) if picked else np.array([], dtype=int)

    rng, n, labels = np.random.default_rng(seed), len(ds), ds.labels
    if split == "official":
        base = np.asarray(ds.given_split, dtype=object)
    else:
        base = np.full(n, "train", dtype=object)
        base[pick(labels, np.arange(n), {"random_80_20": 0.2, "random_60_40": 0.4}[split], rng)] = "test"
    train_idx = np.flatnonzero(base == "train")
    out = base.copy()
    out[pick(labels[train_idx], train_idx, val_fraction, rng)] = "val"
    return pd.DataFrame({"id": list(ds.ids), "label": labels.astype(int), "split": out.astype(str)})


def true_patient(name: str, image_id: str, truth) -> str:
    """The patient each fixture image belongs to, from what the writer wrote (not from the loader)."""
    if name == "chexpert":
        return {r["id"]: r["patient"] for r in truth["train"] + truth["valid"]}[image_id]
    if name == "chestx14":                     # <patient>_<follow-up>.png; the CSV's Patient ID is the integer
        return str(int(image_id.split("_")[0]))
    return image_id.rsplit("_", 1)[0]          # EyePACS <patient>_<eye>


def _write(name: str, root: Path, n: int):
    return fx.WRITERS[name](root, n)


# ---------------------------------------------------------------- patient-level splits
@pytest.mark.parametrize("name,opts", [("chexpert", {}), ("chexpert", {"official_valid": True}), ("chestx14", {}),
                                       ("eyepacs", {"official_test": False}), ("eyepacs", {})])
def test_no_patient_on_two_sides(tmp_path, name, opts):
    """Before: images were split one by one (on these fixtures 9 of 21 CheXpert patients straddled)."""
    truth = _write(name, tmp_path, 6)
    ds = load_dataset(name, data_root=tmp_path, **opts)
    patients = [true_patient(name, i, truth) for i in ds.ids]
    assert len(set(patients)) < len(patients)                 # the fixture does have multi-image patients
    for seed in range(4):
        m = make_manifest(ds, split=split_for(ds, get_spec(name).split), seed=seed)
        sides = m.assign(patient=patients).groupby("patient").split.nunique()
        assert (sides == 1).all(), f"seed {seed}: patients on two sides: {list(sides[sides > 1].index)}"
        assert set(m.split) == {"train", "val", "test"}
        assert set(m.loc[m.split == "test", "label"]) == set(ds.labels)      # still stratified
        assert m["group"].tolist() == patients                               # the manifest says how it grouped
        assert make_manifest(ds, split=split_for(ds, get_spec(name).split), seed=seed).equals(m)  # by seed
    if ds.given_split is None:
        frac = (m.split == "test").mean()
        assert abs(frac - {"random_80_20": 0.2, "random_60_40": 0.4}[split_for(ds, get_spec(name).split)]) < 0.12
    else:
        assert m.loc[m.split == "test", "id"].tolist() == [i for i, s in zip(ds.ids, ds.given_split) if s == "test"]


def test_chexpert_frontal_lateral_pairs_stay_together(tmp_path):
    """The multi-view pairs (one study) never straddle under the default; they did under the per-image split."""
    fx.write_chexpert(tmp_path, 6)
    ds = load_dataset("chexpert", data_root=tmp_path)
    old = old_make_manifest(load_dataset("chexpert", data_root=tmp_path, split_by="image"), "random_60_40")
    straddle = {s: sum(m.split[i] != m.split[j] for i, j in ds.pairs)
                for s, m in (("grouped", make_manifest(ds, split="random_60_40")), ("image", old))}
    assert straddle["grouped"] == 0 and straddle["image"] > 0


def test_chexpert_study_grouping(tmp_path):
    truth = fx.write_chexpert(tmp_path, 6)
    study = {r["id"]: r["study"] for r in truth["train"]}
    ds = load_dataset("chexpert", data_root=tmp_path, split_by="study")
    m = make_manifest(ds, split="random_60_40")
    assert (m.assign(study=[study[i] for i in ds.ids]).groupby("study").split.nunique() == 1).all()
    assert m["group"].str.fullmatch(r"patient\d{5}/study\d+").all()


@pytest.mark.parametrize("name", GROUPED)
def test_image_level_switch_is_the_old_split(tmp_path, name):
    _write(name, tmp_path, 6)
    opts = {"official_test": False} if name == "eyepacs" else {}
    ds = load_dataset(name, data_root=tmp_path, split_by="image", **opts)
    assert ds.groups is None
    split = split_for(ds, get_spec(name).split)
    for seed in (0, 3):
        m = make_manifest(ds, split=split, seed=seed)
        assert list(m.columns) == ["id", "label", "split"]
        assert m.equals(old_make_manifest(ds, split, seed))


@pytest.mark.parametrize("name", [n for n in NAMES if n not in GROUPED] + ["medsynth-chexpert", "medsynth-pm"])
def test_datasets_without_patients_keep_the_old_split(tmp_path, name):
    """MedSynth and the releases that name no patients: byte-for-byte the split they had."""
    if get_spec(name).synthetic:
        ds = load_dataset(name, cache_dir=tmp_path / "cache", image_size=16, seed=0, scale=0.2)
    else:
        _write(name, tmp_path, 5)
        ds = load_dataset(name, data_root=tmp_path)
    split = split_for(ds, get_spec(name).split)
    assert ds.groups is None
    for seed in (0, 1):
        m = make_manifest(ds, split=split, seed=seed)
        assert m.to_csv(index=False) == old_make_manifest(ds, split, seed).to_csv(index=False)


def test_grouped_manifest_round_trip(tmp_path):
    fx.write_chestx14(tmp_path, 4)
    ds = load_dataset("chestx14", data_root=tmp_path)
    m = make_manifest(ds, split="random_80_20")
    save_manifest(m, tmp_path / "m.csv")
    back = load_manifest(tmp_path / "m.csv")
    assert back.equals(m) and back["group"].tolist() == [str(int(i.split("_")[0])) for i in ds.ids]


def test_chestx14_patient_column_needed_only_for_patient_split(tmp_path):
    fx.write_chestx14(tmp_path, 3)
    csv = tmp_path / "chestx14" / "Data_Entry_2017.csv"
    pd.read_csv(csv).drop(columns=["Patient ID"]).to_csv(csv, index=False)
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['Patient ID'\].*split_by='image'"):
        load_dataset("chestx14", data_root=tmp_path)
    assert load_dataset("chestx14", data_root=tmp_path, split_by="image").groups is None


@pytest.mark.parametrize("name", GROUPED)
def test_split_by_is_a_checked_option(tmp_path, name):
    assert get_spec(name).options["split_by"] == "patient"
    _write(name, tmp_path, 2)
    with pytest.raises(DatasetError, match="split_by='visit'"):
        load_dataset(name, data_root=tmp_path, split_by="visit")


def test_runs_take_split_by_from_options(tmp_path):
    """The switch reaches the run's manifest through ``options.datasets`` like the other loader options."""
    from medssl_utils import config
    from medssl_utils.pipeline import inputs

    root = tmp_path / "data"
    fx.write_chexpert(root, 6)
    got = {}
    for unit in ("patient", "image"):
        cfg = config.resolve("smoke", data_root=str(root), datasets=["chexpert"], cache_dir=str(tmp_path / "cache"),
                             results_dir=str(tmp_path / "results"),
                             options={"datasets": {"chexpert": {"split_by": unit}}})
        got[unit] = inputs.manifest(cfg, "chexpert")[0]
    assert "group" in got["patient"] and "group" not in got["image"]
    ds = load_dataset("chexpert", data_root=root, split_by="image")
    assert got["image"].equals(old_make_manifest(ds, "random_60_40", cfg.seed))


# ---------------------------------------------------------------- one layout rule
def _same(a, b) -> bool:
    return a.ids == b.ids and a.labels.tolist() == b.labels.tolist() and a.pairs == b.pairs


FORMS = [(n, f) for n in NAMES for f in ("no_top", "wrapper") if f != "no_top" or get_spec(n).top]


@pytest.mark.parametrize("name", NAMES)
def test_rule_is_written_down(name):
    spec = get_spec(name)
    assert spec.marks and expected_layout(spec).startswith(f"data_root/{spec.folder}/")
    doc = __import__(spec.loader.__module__, fromlist=["_"]).__doc__
    assert "LAYOUT_RULE" in doc and f"data_root/{spec.folder}/" in doc


@pytest.mark.parametrize("name,form", FORMS)
def test_accepted_layouts_load_the_same(tmp_path, name, form):
    """As published (top folder kept); also the top folder dropped, or inside one wrapper folder."""
    _write(name, tmp_path / "published", 3)
    want = load_dataset(name, data_root=tmp_path / "published")
    _write(name, tmp_path / "other", 3)
    fx.relayout(tmp_path / "other", name, form)
    got = load_dataset(name, data_root=tmp_path / "other")
    assert _same(got, want) and all(p.is_file() for p in got.paths)
    got[0]


def _short(msg: str, tmp: Path) -> str:
    return msg.replace(str(tmp), "<tmp>")


@pytest.mark.parametrize("name", NAMES)
def test_wrong_layout_is_one_line_naming_the_rule(tmp_path, name):
    """Two folders too deep: refused in one line that shows the expected first files/folders."""
    _write(name, tmp_path / "x", 2)
    deep = tmp_path / "data" / get_spec(name).folder / "a" / "b"
    deep.parent.mkdir(parents=True)
    shutil.move(str(tmp_path / "x" / get_spec(name).folder), str(deep))
    with pytest.raises(DatasetError) as err:
        load_dataset(name, data_root=tmp_path / "data")
    msg = str(err.value)
    assert "\n" not in msg and len(_short(msg, tmp_path)) < 300, msg
    assert expected_layout(get_spec(name)) in msg and "found a/" in msg and "as published" in msg


def test_missing_dataset_folder_names_the_layout(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset("montgomery", data_root=tmp_path)
    assert "data_root/montgomery/MontgomerySet/CXR_png/" in str(err.value)


def test_chexpert_images_elsewhere_is_one_short_line(tmp_path):
    """Before: a 1,500-character list of ten missing paths and no word on the layout."""
    fx.write_chexpert(tmp_path, 4, csv_at_root=True)
    (tmp_path / "chexpert" / "CheXpert-v1.0").rename(tmp_path / "chexpert" / "images")
    with pytest.raises(DatasetError) as err:
        load_dataset("chexpert", data_root=tmp_path)
    msg = str(err.value)
    n = len(pd.read_csv(tmp_path / "chexpert" / "train.csv"))
    assert "\n" not in msg and len(_short(msg, tmp_path)) < 300, msg
    assert f"{n} of {n} listed image(s) missing" in msg and "data_root/chexpert/CheXpert-v1.0/" in msg
    assert msg.count("view1_frontal.jpg") <= 1


@pytest.mark.parametrize("name,write_kw,delete,counted", [
    ("chestx14", {}, "images", "listed image(s) missing"), ("eyepacs", {}, "train", "listed image(s) missing"),
    ("montgomery", {"no_suffix": True}, None, "and 10 more"), ("shenzhen", {"contradict": 6}, None, "and 4 more"),
])
def test_loader_errors_stay_one_short_line(tmp_path, name, write_kw, delete, counted):
    fx.WRITERS[name](tmp_path, 6, **write_kw)
    base = tmp_path / get_spec(name).folder
    if delete:
        for p in (base / delete).iterdir():
            if p.name.endswith(("_000.png", "_left.jpeg")):
                p.unlink()
    with pytest.raises(DatasetError) as err:
        load_dataset(name, data_root=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and len(_short(msg, tmp_path)) < 300, msg
    assert counted in msg                       # counted, not listed
