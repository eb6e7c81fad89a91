"""The eight native-layout loaders on tiny fake copies of the publishers' layouts (tests/fixtures)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medssl_utils.data import DatasetError, get_spec, load_dataset
from medssl_utils.data.manifests import make_manifest
from medssl_utils.data.real import NAMES
from medssl_utils.data.real._common import image_problem
from medssl_utils.data.real.nlm_tb import reading_finding

try:
    from tests.fixtures import real_datasets as fx
except ImportError:  # pytest's default rootdir-less import puts tests/ itself on sys.path
    from fixtures import real_datasets as fx

# Table 1 of the paper (number of images per dataset).
TABLE1 = {"chexpert": 224_316, "shenzhen": 662, "montgomery": 138, "chestx14": 112_120, "bach": 400,
          "eyepacs": 35_126, "ichallenge_amd": 400, "ichallenge_pm": 400}
N = 3


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("real")
    return root, fx.write_all(root, N)


def by_id(ds) -> dict[str, int]:
    return dict(zip(ds.ids, ds.labels.tolist()))


# ---------------------------------------------------------------- registry records
@pytest.mark.parametrize("name", NAMES)
def test_spec_is_complete(name):
    s = get_spec(name)
    assert s.name == name and s.title and s.label_policy and s.url.startswith("https://") and s.licence
    assert s.folder and not s.synthetic
    assert s.domain == ("in" if s.modality == "chest X-ray" else "out")
    assert s.modality in ("chest X-ray", "fundus", "histology")
    assert s.fewshot_ways == (5 if name in ("chestx14", "eyepacs") else 2) <= len(s.classes)
    assert s.manyshot == (("linear", "finetune") if name in ("chexpert", "eyepacs") else ())
    assert s.metric == ("mean_per_class_accuracy" if name == "eyepacs" else "accuracy")
    assert s.split in ("random_80_20", "random_60_40", "official")
    assert s.multiview == (name in ("chexpert", "eyepacs"))
    assert s.n_images_paper == TABLE1[name]
    assert s.options["on_bad_image"] == "raise"


# ---------------------------------------------------------------- CheXpert
def _pe_label(cell: str, uncertain: str) -> int | None:
    return {"1.0": 1, "0.0": 0, "": 0, "-1.0": {"zeros": 0, "ones": 1, "ignore": None}[uncertain]}[cell]


@pytest.mark.parametrize("uncertain", ["zeros", "ones", "ignore"])
def test_chexpert_uncertain_policy(data_root, uncertain):
    root, truth = data_root
    ds = load_dataset("chexpert", data_root=root, uncertain=uncertain)
    want = {r["id"]: _pe_label(r["pe"], uncertain) for r in truth["chexpert"]["train"]}
    want = {k: v for k, v in want.items() if v is not None}
    assert by_id(ds) == want
    n_unc = sum(r["pe"] == "-1.0" for r in truth["chexpert"]["train"])
    assert n_unc > 0 and sum(ds.labels) == sum(r["pe"] == "1.0" for r in truth["chexpert"]["train"]) + (
        n_unc if uncertain == "ones" else 0)


def test_chexpert_default_is_paper_wording(data_root):
    root, _ = data_root
    assert get_spec("chexpert").options["uncertain"] == "zeros"
    assert get_spec("chexpert").split == "random_60_40"
    ds = load_dataset("chexpert", data_root=root)
    assert ds.given_split is None
    img = ds[0][0]
    assert img.mode == "RGB" and img.size == (fx.SIZE, fx.SIZE)
    arr = np.asarray(img)
    assert np.array_equal(arr[..., 0], arr[..., 1])  # grey stacked to three channels


def test_chexpert_pairs_frontal_lateral_of_one_study(data_root):
    root, truth = data_root
    rows = {r["id"]: r for r in truth["chexpert"]["train"]}
    ds = load_dataset("chexpert", data_root=root)
    assert ds.pairs
    seen_laterals = set()
    for i, j in ds.pairs:
        a, b = rows[ds.ids[i]], rows[ds.ids[j]]
        assert a["view"] == "Frontal" and b["view"] == "Lateral" and a["study"] == b["study"]
        frontals = sorted(k for k, r in rows.items() if r["study"] == a["study"] and r["view"] == "Frontal")
        assert ds.ids[i] == frontals[0]
        seen_laterals.add(ds.ids[j])
    pairable = {k for k, r in rows.items() if r["view"] == "Lateral"
                and any(o["study"] == r["study"] and o["view"] == "Frontal" for o in rows.values())}
    assert seen_laterals == pairable and len(ds.pairs) == len(pairable)
    assert len(pairable) < sum(r["view"] == "Lateral" for r in rows.values())  # the lateral-only study


def test_chexpert_frontal_only(data_root):
    root, truth = data_root
    ds = load_dataset("chexpert", data_root=root, views="frontal")
    frontal = {r["id"] for r in truth["chexpert"]["train"] if r["view"] == "Frontal"}
    assert set(ds.ids) == frontal and ds.pairs == []
    assert len(ds) < len(load_dataset("chexpert", data_root=root))


def test_chexpert_official_valid_split(data_root):
    root, truth = data_root
    ds = load_dataset("chexpert", data_root=root, official_valid=True)
    split = dict(zip(ds.ids, ds.given_split))
    assert {k for k, s in split.items() if s == "test"} == {r["id"] for r in truth["chexpert"]["valid"]}
    m = make_manifest(ds, split="official")
    assert set(m.loc[m.split == "test", "id"]) == {r["id"] for r in truth["chexpert"]["valid"]}


@pytest.mark.parametrize("kw", [{"csv_at_root": True}, {"variant": "CheXpert-v1.0-small"}])
def test_chexpert_csv_locations(tmp_path, kw):
    truth = fx.write_chexpert(tmp_path, 2, **kw)
    ds = load_dataset("chexpert", data_root=tmp_path)
    assert set(ds.ids) == {r["id"] for r in truth["train"]}


@pytest.mark.parametrize("column,value,expected", [("Pleural Effusion", 2.0, "Pleural Effusion value '2.0'"),
                                                   ("Pleural Effusion", "yes", "Pleural Effusion value 'yes'"),
                                                   ("Frontal/Lateral", "Oblique", "Frontal/Lateral is 'Oblique'")])
def test_chexpert_bad_cell(tmp_path, column, value, expected):
    fx.write_chexpert(tmp_path, 2)
    csv = tmp_path / "chexpert" / "CheXpert-v1.0" / "train.csv"
    df = pd.read_csv(csv, dtype={column: object})
    df.loc[3, column] = value
    df.to_csv(csv, index=False)
    with pytest.raises(DatasetError, match=r"train\.csv line 5: " + expected.replace(".", r"\.")):
        load_dataset("chexpert", data_root=tmp_path)


def test_eyepacs_bad_level(tmp_path):
    fx.write_eyepacs(tmp_path, 1)
    csv = tmp_path / "eyepacs" / "trainLabels.csv"
    df = pd.read_csv(csv)
    df.loc[0, "level"] = 7
    df.to_csv(csv, index=False)
    with pytest.raises(DatasetError, match=r"trainLabels\.csv line 2: level .*7.*expected an integer 0-4"):
        load_dataset("eyepacs", data_root=tmp_path)


# ---------------------------------------------------------------- ChestX-ray14
@pytest.mark.parametrize("kaggle_layout", [False, True])
def test_chestx14_single_label_seven_classes(tmp_path, kaggle_layout):
    truth = fx.write_chestx14(tmp_path, N, kaggle_layout=kaggle_layout)
    ds = load_dataset("chestx14", data_root=tmp_path)
    want = {k: fx.CHESTX_CLASSES.index(f) for k, f in truth.items() if f in fx.CHESTX_CLASSES}
    assert by_id(ds) == want
    assert len(want) < len(truth)  # distractors were there and were left out
    assert np.bincount(ds.labels).tolist() == [N] * 7
    assert all(p.is_file() for p in ds.paths)


# ---------------------------------------------------------------- Montgomery / Shenzhen
TB = [("montgomery", fx.write_montgomery), ("shenzhen", fx.write_shenzhen)]


@pytest.mark.parametrize("name,write", TB)
@pytest.mark.parametrize("label_source", ["filename", "text"])
def test_tb_labels_both_sources(tmp_path, name, write, label_source):
    truth = write(tmp_path, N)
    ds = load_dataset(name, data_root=tmp_path, label_source=label_source)
    assert by_id(ds) == truth and 0 in truth.values() and 1 in truth.values()


@pytest.mark.parametrize("name,write", TB)
def test_tb_filename_without_readings(tmp_path, name, write):
    truth = write(tmp_path, N, readings=False)
    assert by_id(load_dataset(name, data_root=tmp_path)) == truth
    with pytest.raises(DatasetError, match="ClinicalReadings"):
        load_dataset(name, data_root=tmp_path, label_source="text")


@pytest.mark.parametrize("name,write", TB)
def test_tb_text_source_reads_the_text(tmp_path, name, write):
    truth = write(tmp_path, N, no_suffix=True)
    assert by_id(load_dataset(name, data_root=tmp_path, label_source="text")) == truth
    with pytest.raises(DatasetError, match="without the _0/_1 label suffix"):
        load_dataset(name, data_root=tmp_path)


@pytest.mark.parametrize("name,write", TB)
@pytest.mark.parametrize("label_source", ["filename", "text"])
def test_tb_disagreement_raises(tmp_path, name, write, label_source):
    truth = write(tmp_path, N, contradict=2)
    with pytest.raises(DatasetError, match=r"disagree for 2 file\(s\)") as err:
        load_dataset(name, data_root=tmp_path, label_source=label_source)
    for stem in list(truth)[:2]:
        assert stem in str(err.value)


@pytest.mark.parametrize("text,finding", [
    ("Patient's Sex: F\nPatient's Age: 040Y\nnormal\n", "normal"),
    ("Patient's Sex: M\nPatient's Age: 052Y\n\nright upper lobe TB\n", "right upper lobe tb"),
    ("male 35yrs\nnormal", "normal"), ("Female 23yrs  normal.", "normal"),
    ("female 40yrs\nSTB,ATB in the left upper field", "stb,atb in the left upper field"),
])
def test_reading_finding(text, finding):
    assert reading_finding(text) == finding


# ---------------------------------------------------------------- BACH
def test_bach_ordinal_labels(data_root):
    root, truth = data_root
    ds = load_dataset("bach", data_root=root)
    assert by_id(ds) == truth["bach"] and sorted(set(ds.labels)) == [0, 1, 2, 3]
    assert ds.classes[0] == "normal" and ds.classes[-1] == "invasive carcinoma"
    assert ds[0][0].mode == "RGB"


def test_bach_ground_truth_csv(tmp_path):
    truth = fx.write_bach(tmp_path, 2, ground_truth=False)
    assert by_id(load_dataset("bach", data_root=tmp_path)) == truth
    fx.write_bach(tmp_path / "other", 2, contradict=True)
    with pytest.raises(DatasetError, match=r"n001\.tif.*says Benign"):
        load_dataset("bach", data_root=tmp_path / "other")


# ---------------------------------------------------------------- EyePACS
def test_eyepacs_official_split_and_grades(data_root):
    root, truth = data_root
    ds = load_dataset("eyepacs", data_root=root)
    t = truth["eyepacs"]
    assert by_id(ds) == {k: v[0] for k, v in t.items()}
    assert dict(zip(ds.ids, ds.given_split)) == {k: v[1] for k, v in t.items()}
    m = make_manifest(ds, split=get_spec("eyepacs").split)
    assert set(m.loc[m.split == "test", "id"]) == {k for k, v in t.items() if v[1] == "test"}


@pytest.mark.parametrize("same_level", [False, True])
def test_eyepacs_eye_pairs(data_root, same_level):
    root, truth = data_root
    t = truth["eyepacs"]
    ds = load_dataset("eyepacs", data_root=root, pairs_same_level=same_level)
    got = {(ds.ids[i], ds.ids[j]) for i, j in ds.pairs}
    want = {(k, k[:-5] + "_right") for k in t if k.endswith("_left") and k[:-5] + "_right" in t
            and (not same_level or t[k][0] == t[k[:-5] + "_right"][0])}
    assert got == want and len(got) == len(ds.pairs)
    assert all(ds.given_split[i] == ds.given_split[j] for i, j in ds.pairs)
    if same_level:
        assert 0 < len(got) < len(load_dataset("eyepacs", data_root=root).pairs)


def test_eyepacs_train_only(tmp_path):
    truth = fx.write_eyepacs(tmp_path, 2, test=False)
    with pytest.raises(DatasetError, match=r"testLabels\.csv"):
        load_dataset("eyepacs", data_root=tmp_path)
    ds = load_dataset("eyepacs", data_root=tmp_path, official_test=False)
    assert ds.given_split is None and set(ds.ids) == set(truth)


def test_eyepacs_kaggle_solution_file_name(tmp_path):
    truth = fx.write_eyepacs(tmp_path, 1)
    (tmp_path / "eyepacs/testLabels.csv").rename(tmp_path / "eyepacs/retinopathy_solution.csv")
    ds = load_dataset("eyepacs", data_root=tmp_path)
    assert dict(zip(ds.ids, ds.given_split)) == {k: v[1] for k, v in truth.items()}


# ---------------------------------------------------------------- iChallenge
def test_amd_folders(data_root):
    root, truth = data_root
    ds = load_dataset("ichallenge_amd", data_root=root)
    assert by_id(ds) == truth["ichallenge_amd"]


@pytest.mark.parametrize("grouping,positive", [("normal_high_vs_pathological", {"P"}),
                                               ("normal_vs_myopic", {"H", "P"})])
def test_pm_groupings(data_root, grouping, positive):
    root, truth = data_root
    ds = load_dataset("ichallenge_pm", data_root=root, pm_grouping=grouping)
    assert by_id(ds) == {k: int(v in positive) for k, v in truth["ichallenge_pm"].items()}
    assert len(ds.classes) == 2


def test_pm_default_is_paper_and_flat_layout(tmp_path):
    assert get_spec("ichallenge_pm").options["pm_grouping"] == "normal_high_vs_pathological"
    truth = fx.write_ichallenge_pm(tmp_path, 2, nested=False)
    ds = load_dataset("ichallenge_pm", data_root=tmp_path)
    assert by_id(ds) == {k: int(v == "P") for k, v in truth.items()}
    fx._image(tmp_path / "ichallenge_pm" / "PALM-Training400" / "V0001.jpg", 1, fmt="JPEG")
    with pytest.raises(DatasetError, match="V0001.jpg"):
        load_dataset("ichallenge_pm", data_root=tmp_path)


# ---------------------------------------------------------------- bad input
def test_missing_image_raises_or_is_skipped(tmp_path):
    fx.write_chestx14(tmp_path, N)
    gone = tmp_path / "chestx14" / "images" / "00000002_000.png"
    gone.unlink()
    with pytest.raises(DatasetError, match="00000002_000.png"):
        load_dataset("chestx14", data_root=tmp_path)
    with pytest.warns(UserWarning, match=r"skipped 1 of .*00000002_000\.png"):
        ds = load_dataset("chestx14", data_root=tmp_path, on_bad_image="skip")
    assert "00000002_000.png" not in ds.ids and [s[0] for s in ds.skipped] == ["00000002_000.png"]


@pytest.mark.parametrize("name,rel", [
    ("eyepacs", "train/10_right.jpeg"),                                     # JPEG
    ("montgomery", "MontgomerySet/CXR_png/MCUCXR_0002_1.png"),             # PNG
    ("bach", "ICIAR2018_BACH_Challenge/Photos/InSitu/is002.tif"),          # TIFF
])
def test_truncated_image(tmp_path, name, rel):
    fx.WRITERS[name](tmp_path, N)
    path = tmp_path / get_spec(name).folder / rel
    intact = load_dataset(name, data_root=tmp_path, on_bad_image="skip")
    assert intact.skipped == [] and image_problem(path) is None
    fx.truncate(path)
    assert image_problem(path) is not None
    ds = load_dataset(name, data_root=tmp_path)  # default: checked when read
    i = [str(p) for p in ds.paths].index(str(path))
    with pytest.raises(DatasetError, match=path.name):
        ds[i]
    with pytest.warns(UserWarning, match=path.name):
        ds = load_dataset(name, data_root=tmp_path, on_bad_image="skip")
    assert len(ds) == len(intact) - 1 and path.stem in ds.skipped[0][0] and path.name in ds.skipped[0][1]
    if name == "eyepacs":  # the partner of a skipped eye loses its pair
        assert len(ds.pairs) == len(intact.pairs) - 1
        assert all(ds.ids[i][:-5] == ds.ids[j][:-6] for i, j in ds.pairs)


def test_no_silent_skip_when_all_good(tmp_path):
    fx.write_ichallenge_amd(tmp_path, N)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_dataset("ichallenge_amd", data_root=tmp_path, on_bad_image="skip")
    assert len(ds) == 2 * N and ds.skipped == []


@pytest.mark.parametrize("name,rel", [("eyepacs", "trainLabels.csv"), ("chestx14", "Data_Entry_2017.csv"),
                                      ("chexpert", "CheXpert-v1.0/train.csv")])
def test_missing_csv(tmp_path, name, rel):
    fx.WRITERS[name](tmp_path, 2)
    (tmp_path / get_spec(name).folder / rel).unlink()
    with pytest.raises(DatasetError, match=r"missing file.*" + Path(rel).name.replace(".", r"\.")):
        load_dataset(name, data_root=tmp_path)


@pytest.mark.parametrize("name,rel,column", [("chestx14", "Data_Entry_2017.csv", "Finding Labels"),
                                             ("eyepacs", "trainLabels.csv", "level"),
                                             ("chexpert", "CheXpert-v1.0/train.csv", "Pleural Effusion")])
def test_csv_missing_column(tmp_path, name, rel, column):
    fx.WRITERS[name](tmp_path, 2)
    csv = tmp_path / get_spec(name).folder / rel
    pd.read_csv(csv).drop(columns=[column]).to_csv(csv, index=False)
    with pytest.raises(DatasetError, match=rf"{Path(rel).name}.*missing column\(s\) \['{column}'\]"):
        load_dataset(name, data_root=tmp_path)


def test_missing_class_folder(tmp_path):
    fx.write_bach(tmp_path, 2)
    for p in (tmp_path / "bach/ICIAR2018_BACH_Challenge/Photos/Benign").iterdir():
        p.unlink()
    (tmp_path / "bach/ICIAR2018_BACH_Challenge/Photos/Benign").rmdir()
    with pytest.raises(DatasetError, match="Photos/Benign"):
        load_dataset("bach", data_root=tmp_path)


def test_unknown_and_invalid_options(data_root):
    root, _ = data_root
    with pytest.raises(DatasetError, match="bogus"):
        load_dataset("montgomery", data_root=root, bogus=1)
    with pytest.raises(DatasetError, match="uncertain='maybe'"):
        load_dataset("chexpert", data_root=root, uncertain="maybe")
    with pytest.raises(DatasetError, match="pm_grouping"):
        load_dataset("ichallenge_pm", data_root=root, pm_grouping="normal_vs_pathological")
    with pytest.raises(DatasetError, match="on_bad_image"):
        load_dataset("bach", data_root=root, on_bad_image="ignore")
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("shenzhen", data_root=root / "nowhere")


# ---------------------------------------------------------------- manifests
@pytest.mark.parametrize("name", NAMES)
def test_manifest_on_fixture(data_root, name):
    root, _ = data_root
    ds = load_dataset(name, data_root=root)
    split = get_spec(name).split
    m = make_manifest(ds, split=split, seed=0)
    assert m["id"].tolist() == ds.ids and m["label"].tolist() == ds.labels.tolist()
    assert set(m.split) <= {"train", "val", "test"}
    test = m[m.split == "test"]
    if split == "official":
        assert test["id"].tolist() == [i for i, s in zip(ds.ids, ds.given_split) if s == "test"]
    else:
        assert set(test.label) == set(ds.labels)  # stratified: every class in test
        frac = len(test) / len(m)
        assert abs(frac - {"random_80_20": 0.2, "random_60_40": 0.4}[split]) < 0.15
    assert make_manifest(ds, split=split, seed=0).equals(m)
    assert ds.fingerprint and get_spec(name).folder in ds.fingerprint


# ---------------------------------------------------------------- the split a run uses (issue 19, defects 1 and 2)
def _run_manifest(tmp_path, root, name, options):
    from medssl_utils import config
    from medssl_utils.pipeline import inputs

    cfg = config.resolve("smoke", data_root=str(root), datasets=[name], cache_dir=str(tmp_path / "cache"),
                         results_dir=str(tmp_path / "results"), options={"datasets": {name: options}})
    return inputs.manifest(cfg, name)[0]


def test_runs_use_chexpert_official_valid_when_asked(data_root, tmp_path):
    """Before: the valid.csv images were scattered into the random 60/40 split (silently wrong)."""
    root, truth = data_root
    valid = {r["id"] for r in truth["chexpert"]["valid"]}
    m = _run_manifest(tmp_path, root, "chexpert", {"official_valid": True})
    assert set(m.loc[m.split == "test", "id"]) == valid
    default = _run_manifest(tmp_path, root, "chexpert", {})
    assert not valid & set(default.id)              # default: the authors' 60/40 split of train.csv only


def test_runs_split_eyepacs_randomly_without_kaggle_test_labels(tmp_path):
    """Before: official_test=False, as the error advises, failed with "split 'official' needs ..."."""
    root = tmp_path / "data"
    truth = fx.write_eyepacs(root, 4, test=False)
    m = _run_manifest(tmp_path, root, "eyepacs", {"official_test": False})
    assert set(m.id) == set(truth) and set(m.split) == {"train", "val", "test"}
    assert 0.1 < (m.split == "test").mean() < 0.35   # stratified 80/20
