"""Your own model and dataset, declared in YAML (issue 16): validated like built-ins, then treated as built-ins."""
import json

import numpy as np
import pytest
import torch
import torchvision
import yaml
from PIL import Image

from medssl_utils import config, user_entries
from medssl_utils.pipeline import grid, inputs, transfer
from medssl_utils.config import ConfigError
from medssl_utils.data.registry import get_spec as dataset_spec
from medssl_utils.data.registry import load_dataset
from medssl_utils.models.registry import ModelError, load_backbone


def _resnet18_state(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    return torchvision.models.resnet18(weights=None).state_dict()


def _save_prefixed(path, state, prefix="module."):
    torch.save({prefix + k: v for k, v in state.items()}, path)
    return path


def _imagefolder(root, counts=(36, 36, 36), size=16):
    rng = np.random.default_rng(0)
    for c, n in zip(("cat_a", "cat_b", "cat_c"), counts):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / c / f"{i:03d}.png")
    return root


def _yaml(path, **lists):
    path.write_text(yaml.safe_dump(lists, sort_keys=False))
    return path


def _model_entry(ckpt, **kw):
    return {"name": "my-r18", "title": "My ResNet-18", "family": "self-supervised", "architecture": "resnet18",
            "checkpoint": str(ckpt), "layout": "torchvision", "strip_prefix": "module.", "preprocessing": "imagenet",
            "input_size": 32, **kw}


@pytest.fixture
def model_yml(tmp_path):
    ckpt = _save_prefixed(tmp_path / "r18.pt", _resnet18_state())
    return _yaml(tmp_path / "my_models.yml", models=[_model_entry(ckpt.name)])   # relative to the YAML file


@pytest.fixture
def data_yml(tmp_path):
    _imagefolder(tmp_path / "folder")
    return _yaml(tmp_path / "my_data.yml", datasets=[{"name": "my-folder", "title": "My folder", "domain": "out",
                                                      "imagefolder": "folder", "fewshot_ways": 3}])


def _resolve(tmp_path, **kw):
    base = dict(cache_dir=str(tmp_path / "cache"), results_dir=str(tmp_path / "results"), n_episodes=10,
                dataset_scale=0.3, image_size=32)
    return config.resolve("smoke", **{**base, **kw})


def test_a_prefixed_torchvision_state_dict_loads_as_the_declared_model(tmp_path, model_yml):
    _resolve(tmp_path, extra_models=[str(model_yml)], models=["my-r18"])
    bb = load_backbone("my-r18")
    expected = {k: v for k, v in _resnet18_state().items() if not k.startswith("fc.")}
    got = bb.module.state_dict()
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert bb.feature_dim == 512 and bb.spec.family == "self-supervised" and bb.preprocess.size == 32
    assert bb.module(torch.zeros(2, 3, 32, 32)).shape == (2, 512)


def test_new_weights_under_the_same_name_give_a_new_weights_hash(tmp_path, model_yml):
    """The hash keys the feature cache: replacing the checkpoint must never reuse features of the old one."""
    _resolve(tmp_path, extra_models=[str(model_yml)], models=["my-r18"])
    first = inputs.backbone(_resolve(tmp_path, extra_models=[str(model_yml)], models=["my-r18"]), "my-r18").weights_hash
    _save_prefixed(tmp_path / "r18.pt", _resnet18_state(seed=1))
    cfg = _resolve(tmp_path, extra_models=[str(model_yml)], models=["my-r18"])   # the changed file re-registers
    second = inputs.backbone(cfg, "my-r18").weights_hash
    assert first != second


def test_registering_the_same_files_again_is_a_no_op(tmp_path, model_yml, data_yml):
    kw = dict(extra_models=[str(model_yml)], extra_datasets=str(data_yml), models=["my-r18"], datasets=["my-folder"])
    _resolve(tmp_path, **kw)
    spec = dataset_spec("my-folder")
    _resolve(tmp_path, **kw)
    assert dataset_spec("my-folder") is spec


def test_an_imagefolder_with_three_classes(tmp_path, data_yml):
    cfg = _resolve(tmp_path, extra_datasets=[str(data_yml)], datasets=["my-folder"])  # no data_root needed
    spec = dataset_spec("my-folder")
    assert spec.classes == ("cat_a", "cat_b", "cat_c") and spec.domain == "out" and not spec.synthetic
    ds = load_dataset("my-folder")
    assert len(ds) == 108 and np.bincount(ds.labels).tolist() == [36, 36, 36]
    assert ds.ids[0] == "cat_a/000.png" and ds.image(0).size == (16, 16)
    man, _ = inputs.manifest(cfg, "my-folder")
    assert set(man.split) == {"train", "val", "test"}
    before = ds.fingerprint
    Image.new("RGB", (16, 16)).save(tmp_path / "folder" / "cat_a" / "000.png")   # an edited image: a new fingerprint
    assert load_dataset("my-folder").fingerprint != before


def test_a_csv_dataset_with_its_own_columns_and_split(tmp_path):
    _imagefolder(tmp_path / "imgs", counts=(40, 40, 0))
    rows = ["file,diagnosis,part"] + [f"cat_{c}/{i:03d}.png,{'sick' if c == 'b' else 'well'},"
                                      f"{'test' if i % 4 == 0 else 'train'}" for c in "ab" for i in range(40)]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    yml = _yaml(tmp_path / "d.yml", datasets=[{"name": "my-csv", "domain": "in", "csv": "labels.csv",
                                               "image_root": "imgs", "path_column": "file", "label_column": "diagnosis",
                                               "split_column": "part", "classes": ["well", "sick"]}])
    cfg = _resolve(tmp_path, extra_datasets=[str(yml)], datasets=["my-csv"])
    spec = dataset_spec("my-csv")
    assert spec.classes == ("well", "sick") and spec.modality == "chest X-ray" and spec.split == "official"
    ds = load_dataset("my-csv")
    assert ds.labels[ds.ids.index("cat_b/001.png")] == 1
    man, _ = inputs.manifest(cfg, "my-csv")
    assert (man.split == "test").sum() == 20        # the CSV's test rows, exactly
    assert set(man.id[man.split == "test"]) == {i for i in ds.ids if int(i[-7:-4]) % 4 == 0}


def _one_line(exc_info, *parts):
    msg = str(exc_info.value)
    assert "\n" not in msg
    for p in parts:
        assert p in msg, (p, msg)


def test_a_missing_checkpoint_names_the_file_and_field(tmp_path):
    yml = _yaml(tmp_path / "m.yml", models=[_model_entry("nowhere.pt")])
    with pytest.raises(ConfigError) as e:
        _resolve(tmp_path, extra_models=[str(yml)])
    _one_line(e, str(yml), "'my-r18'", "field 'checkpoint'", "nowhere.pt", "does not exist")


def test_an_unknown_architecture_names_the_file_and_field(tmp_path):
    ckpt = _save_prefixed(tmp_path / "r18.pt", _resnet18_state())
    yml = _yaml(tmp_path / "m.yml", models=[_model_entry(ckpt, architecture="resnet19")])
    with pytest.raises(ConfigError) as e:
        _resolve(tmp_path, extra_models=[str(yml)])
    _one_line(e, str(yml), "field 'architecture'", "'resnet19'", "torchvision")


def test_weights_of_another_architecture_are_refused_when_the_model_loads(tmp_path):
    ckpt = _save_prefixed(tmp_path / "r18.pt", _resnet18_state())
    yml = _yaml(tmp_path / "m.yml", models=[_model_entry(ckpt, name="my-r50", architecture="resnet50")])
    _resolve(tmp_path, extra_models=[str(yml)], models=["my-r50"])
    with pytest.raises(ModelError) as e:
        load_backbone("my-r50")
    _one_line(e, str(yml), "'my-r50'", "'architecture'", "do not fit resnet50", "shape")


def test_a_wrong_prefix_names_the_file_and_the_keys(tmp_path):
    ckpt = _save_prefixed(tmp_path / "r18.pt", _resnet18_state(), prefix="backbone.")
    yml = _yaml(tmp_path / "m.yml", models=[_model_entry(ckpt)])
    _resolve(tmp_path, extra_models=[str(yml)], models=["my-r18"])
    with pytest.raises(ModelError) as e:
        load_backbone("my-r18")
    _one_line(e, str(yml), "no key starts with 'module.'", "backbone.conv1.weight")


def test_an_absent_label_column_names_the_file_and_field(tmp_path):
    _imagefolder(tmp_path / "imgs")
    (tmp_path / "l.csv").write_text("path,y\n" + "".join(f"cat_a/{i:03d}.png,0\n" for i in range(36)))
    yml = _yaml(tmp_path / "d.yml", datasets=[{"name": "my-csv", "domain": "out", "csv": "l.csv", "image_root": "imgs"}])
    with pytest.raises(ConfigError) as e:
        _resolve(tmp_path, extra_datasets=[str(yml)])
    _one_line(e, str(yml), "'my-csv'", "field 'csv'", "no column 'label' (label_column)", "['path', 'y']")


def test_a_class_too_small_for_few_shot_names_the_class(tmp_path):
    _imagefolder(tmp_path / "folder", counts=(36, 12, 36))
    yml = _yaml(tmp_path / "d.yml", datasets=[{"name": "my-folder", "domain": "out", "imagefolder": "folder"}])
    with pytest.raises(ConfigError) as e:
        _resolve(tmp_path, extra_datasets=[str(yml)])
    _one_line(e, str(yml), "field 'imagefolder'", "class 'cat_b' has 12 image(s)", "at least 35")


@pytest.mark.parametrize("kind", ["models", "datasets"])
def test_a_name_of_a_built_in_entry_is_refused(tmp_path, kind):
    if kind == "models":
        ckpt = _save_prefixed(tmp_path / "r18.pt", _resnet18_state())
        yml = _yaml(tmp_path / "m.yml", models=[_model_entry(ckpt, name="mini-sup-s0")])
        kw = {"extra_models": [str(yml)]}
    else:
        _imagefolder(tmp_path / "folder")
        yml = _yaml(tmp_path / "d.yml", datasets=[{"name": "medsynth-bach", "domain": "out", "imagefolder": "folder"}])
        kw = {"extra_datasets": [str(yml)]}
    with pytest.raises(ConfigError) as e:
        _resolve(tmp_path, **kw)
    _one_line(e, str(yml), "field 'name'", "built-in")


def test_an_unknown_field_and_a_missing_file_parameter(tmp_path):
    yml = _yaml(tmp_path / "m.yml", models=[{"name": "x", "famly": "supervised"}])
    with pytest.raises(ConfigError) as e:
        _resolve(tmp_path, extra_models=[str(yml)])
    _one_line(e, str(yml), "field 'famly'", "unknown field")
    with pytest.raises(ConfigError) as e:
        _resolve(tmp_path, extra_models="no_such.yml")
    _one_line(e, "parameter 'extra_models'", "no_such.yml", "does not exist")


def test_own_mean_and_std_enter_the_preprocess_key(tmp_path):
    ckpt = _save_prefixed(tmp_path / "r18.pt", _resnet18_state())
    yml = _yaml(tmp_path / "m.yml", models=[_model_entry(ckpt, preprocessing={"mean": [0.5, 0.5, 0.5],
                                                                               "std": [0.25, 0.25, 0.25]})])
    _resolve(tmp_path, extra_models=[str(yml)], models=["my-r18"])
    pre = load_backbone("my-r18").preprocess
    assert "mean0.5,0.5,0.5-std0.25,0.25,0.25" in pre.key
    x = pre(Image.new("RGB", (40, 40), (255, 0, 128)))
    assert torch.allclose(x[:, 0, 0], torch.tensor([2.0, -2.0, (128 / 255 - 0.5) / 0.25]), atol=1e-5)


def test_end_to_end_your_model_on_medsynth_and_a_mini_model_on_your_folder(tmp_path, model_yml, data_yml, one_thread):
    """The user's model through few-shot and linear on a smoke MedSynth set, beside a built-in model; a smoke model
    through few-shot on the user's ImageFolder. Nothing downstream needs to know which entry is whose."""
    cfg = _resolve(tmp_path, extra_models=[str(model_yml)], extra_datasets=[str(data_yml)],
                   models=["my-r18", "mini-sup-s0"], datasets=["medsynth-eyepacs"],
                   options={"linear": {"tol": 1e-4}})   # 512-d x 5 classes goes to lbfgs: 20 s at the default 1e-8
    grid.run(cfg, ["fewshot"], progress=False)
    rows = grid.run(cfg, ["fewshot", "linear"], models=["my-r18"], progress=False)   # linear: ours only (time)
    mine = rows[rows.model == "my-r18"]
    assert set(mine.protocol) == {"fewshot", "linear"} and (mine.value.between(0, 100)).all()
    from medssl_utils.book import report

    table = report.run_table(grid.run(cfg, ["fewshot"], progress=False), "fewshot")
    assert "My ResNet-18" in table.index and "Mini supervised" in table.index
    # a smoke model on the user's folder: the unit runner, preflight's data checks and the report as for a built-in
    cfg = _resolve(tmp_path, extra_datasets=[str(data_yml)], models=["mini-sup-s0"], datasets=["my-folder"])
    from medssl_utils.preflight import check_data

    check_data(cfg, ["fewshot"])
    out, outcomes = transfer.run_fewshot_unit(cfg, grid.Unit("fewshot", "mini-sup-s0", "my-folder"),
                                               transfer.FewShotSettings.from_config(cfg))
    assert out[0]["dataset"] == "my-folder" and json.loads(out[0]["extra"])["n_way"] == 3
    assert outcomes["episode_accuracy"].shape == (10,)


def test_the_grid_runs_on_a_user_folder_without_data_root(tmp_path, data_yml):
    cfg = _resolve(tmp_path, extra_datasets=[str(data_yml)], models=["mini-random-s0"], datasets=["my-folder"])
    rows = grid.run(cfg, ["fewshot"], progress=False)
    assert list(rows.dataset.unique()) == ["my-folder"]


def test_worker_processes_know_your_model_and_dataset(tmp_path, model_yml, data_yml):
    """A spawned worker did not resolve the config: the grid registers the run's own entries there first."""
    kw = dict(extra_models=[str(model_yml)], extra_datasets=[str(data_yml)], models=["my-r18", "mini-random-s0"],
              datasets=["my-folder"])
    pool = grid.run(_resolve(tmp_path, executor="processes", executor_options={"workers": 2}, **kw), ["fewshot"],
                    progress=False)
    here = grid.run(_resolve(tmp_path, results_dir=str(tmp_path / "here"), **kw), ["fewshot"], progress=False)
    assert sorted(pool.model) == ["mini-random-s0", "my-r18"]
    cols = ["model", "dataset", "metric", "value", "cache_key"]
    assert pool.sort_values("model")[cols].equals(here.sort_values("model")[cols])


def test_user_entries_are_known_as_such(tmp_path, model_yml):
    _resolve(tmp_path, extra_models=[str(model_yml)], models=["my-r18"])
    assert user_entries.is_user_entry("models", "my-r18") and not user_entries.is_user_entry("models", "mini-sup-s0")


@pytest.mark.parametrize("arch, dim", [("resnet18", 512), ("mobilenetv3_small_050", 1024)])
def test_a_timm_checkpoint_loads_through_the_timm_layout(tmp_path, arch, dim):
    """``architecture: timm/<name>`` with ``layout: timm``: the classifier is dropped, every other weight lands,
    and the backbone runs the grid like a built-in (timm is the optional extra ``timm``)."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    full = timm.create_model(arch, pretrained=False, num_classes=7)
    torch.save({"state_dict": full.state_dict(), "epoch": 3}, tmp_path / "timm.pt")
    entry = _model_entry("timm.pt", name="my-timm", architecture=f"timm/{arch}", layout="timm", strip_prefix=None)
    yml = _yaml(tmp_path / "timm_models.yml", models=[{k: v for k, v in entry.items() if v is not None}])
    cfg = _resolve(tmp_path, extra_models=[str(yml)], models=["my-timm"], datasets=["medsynth-montgomery"])
    bb = load_backbone("my-timm")
    got = bb.module.state_dict()
    head = {k for k in full.state_dict() if k not in got}
    assert head and all(k.split(".")[0] in ("fc", "classifier") for k in head)
    assert all(torch.equal(got[k], full.state_dict()[k]) for k in got)
    assert bb.feature_dim == dim and bb.module(torch.zeros(2, 3, 32, 32)).shape == (2, dim)
    rows = grid.run(cfg, ["fewshot"], progress=False)
    assert set(rows.model) == {"my-timm"} and rows.value.between(0, 100).all()


def test_a_timm_architecture_that_timm_does_not_know_is_one_line(tmp_path):
    pytest.importorskip("timm")
    entry = _model_entry("none.pt", name="my-timm", architecture="timm/resnet_nonexistent", layout="timm")
    yml = _yaml(tmp_path / "bad.yml", models=[entry])
    with pytest.raises(ConfigError) as err:
        _resolve(tmp_path, extra_models=[str(yml)], models=["my-timm"])
    assert "\n" not in str(err.value) and "bad.yml" in str(err.value) and "architecture" in str(err.value)
