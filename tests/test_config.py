"""Config validation: bad input fails before any work, with one line that says what was expected."""
import subprocess
import sys

import pytest

from medssl_utils import config
from medssl_utils.config import ConfigError


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
