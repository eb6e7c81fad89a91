"""Config validation: bad input fails before any work, with one line that says what was expected."""
import subprocess
import sys

import pytest

from medssl_utils import config
from medssl_utils.config import ConfigError
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_profiles_resolve():
    for p in config.PROFILES:
        if p == "paper":
            continue  # needs data_root and weights_dir
        cfg = config.resolve(p)
        assert cfg.profile == p and cfg.models and cfg.datasets
        assert cfg.cache_dir.is_absolute()


def test_smoke_is_smaller_than_mini():
    mini, smoke = config.resolve("mini"), config.resolve("smoke")
    assert smoke.n_episodes < mini.n_episodes
    assert smoke.dataset_scale < mini.dataset_scale
    assert set(smoke.models) <= set(mini.models) and smoke.datasets == mini.datasets


@pytest.mark.parametrize("kwargs, needle", [
    (dict(profile="huge"), "unknown profile 'huge'"),
    (dict(models=["resnet1000"]), "unknown model 'resnet1000'"),
    (dict(datasets=["mnist"]), "unknown dataset 'mnist'"),
    (dict(data_root="/nonexistent/path"), "data_root"),
    (dict(device="tpu"), "expected auto, cpu, cuda"),
    (dict(n_episodes=0), "n_episodes"),
    (dict(bogus=1), "unknown parameter"),
])
def test_bad_input(kwargs, needle):
    profile = kwargs.pop("profile", "mini")
    with pytest.raises(ConfigError, match=needle):
        config.resolve(profile, **kwargs)


def test_real_dataset_needs_data_root():
    with pytest.raises(ConfigError, match="data_root"):
        config.resolve("mini", datasets=["chexpert"])


def test_cli_fails_fast_with_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "medssl_utils.cli", "check", "-p", "models=[nosuchmodel]"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "nosuchmodel" in lines[0] and "expected one of" in lines[0]


def test_one_declaration_per_parameter_feeds_cell_table_and_profiles():
    """Every notebook's parameters cell declares exactly the Config fields, each documented once; every profile
    key is a declared parameter; a value of the wrong kind is refused naming the parameter and the kind."""
    import ast
    import json

    assert set(config.PARAMS) == {f for f in config.Config.__dataclass_fields__}
    assert all(p.kind in config.KINDS and p.help for p in config.PARAMS.values())
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        (cell,) = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        names = [n.target.id for n in ast.parse("".join(cell["source"])).body if isinstance(n, ast.AnnAssign)]
        assert names == list(config.PARAMS), nb.name
    for profile in config.PROFILES:
        assert set(config.load_profile(profile)) <= set(config.PARAMS)
    table = config.parameters_table(config.resolve("smoke"))
    assert list(table.Parameter) == list(config.PARAMS) and (table["This profile"] != "").sum() >= 15
    with pytest.raises(config.ConfigError, match="'dataset_scale' must be a number"):
        config.resolve("smoke", dataset_scale="lots")
    with pytest.raises(config.ConfigError, match="'dip_steps' must be a positive integer"):
        config.resolve("smoke", dip_steps=0)


def test_a_parameter_with_a_declared_default_needs_no_profile_entry():
    """``n_boot`` is declared once (Config) with its default; no profile names it, every profile resolves it."""
    assert all("n_boot" not in config.load_profile(p) for p in config.PROFILES)
    assert config.resolve("smoke").n_boot == 2000 and config.resolve("smoke", n_boot=500).n_boot == 500
    with pytest.raises(config.ConfigError, match="'n_boot' must be a positive integer"):
        config.resolve("smoke", n_boot=0)
