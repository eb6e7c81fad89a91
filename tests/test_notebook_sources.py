"""The builders in tools/ reproduce notebooks/ byte for byte (the builders are the source of truth)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILDERS = sorted((ROOT / "tools").glob("build_*.py"))


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda p: p.stem)
def test_builder_reproduces_committed_notebook(builder, tmp_path):
    env = {**os.environ, "MEDSSL_NOTEBOOK_SOURCES": str(tmp_path)}
    done = subprocess.run([sys.executable, str(builder)], cwd=ROOT / "tools", env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    (written,) = tmp_path.glob("*.ipynb")
    committed = ROOT / "notebooks" / written.name
    assert written.read_bytes() == committed.read_bytes(), (
        f"notebooks/{written.name} differs from what {builder.name} writes: run `make notebook-sources`")
