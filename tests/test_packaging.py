"""environment.yml carries the same pins as pyproject.toml, so conda users get the tested stack."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_conda_pins_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pins = dict(re.match(r"([A-Za-z0-9_.-]+)==(\S+)", r).groups() for r in reqs if "==" in r)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = dict(re.match(r"([A-Za-z0-9_.-]+)==(\S+)", r).groups() for r in pip if "==" in r)
    assert conda_pins, "environment.yml pins nothing"
    for name, version in conda_pins.items():
        assert pins.get(name) == version, f"environment.yml pins {name}=={version}, pyproject.toml {pins.get(name)}"
    for name in ("torch", "torchvision", "jupyter-book", "papermill", "nbval"):
        assert name in conda_pins, f"environment.yml lacks {name}"
