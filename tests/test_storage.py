"""Atomic writes (medssl_utils.storage): files get the mode a plain open() gives, whatever writer is used.

The umask is process-wide, so each umask is tried in a subprocess: setting it here would race with any
other test writing files in this process.
"""
import json
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from medssl_utils.storage import atomic_path, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]

# Every kind of writer in the package goes through atomic_path: text/bytes, a file object (np.save, the
# results store), torch.save to the temp path (converted weights), and an overwrite of a 0600 file.
WRITER = textwrap.dedent("""
    import json, os, stat, sys
    from pathlib import Path
    import numpy as np
    import torch
    from medssl_utils.results import ResultsStore
    from medssl_utils.storage import atomic_path, atomic_write_bytes, atomic_write_text

    os.umask(int(sys.argv[2], 8))
    out = Path(sys.argv[1])
    atomic_write_text(out / "meta.json", "{}")
    atomic_write_bytes(out / "sub" / "rows.csv", b"a,b\\n")
    with atomic_path(out / "x.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, np.zeros(3))
    with atomic_path(out / "w.pt") as tmp:
        torch.save({"a": torch.zeros(1)}, tmp)
    (out / "old.json").write_text("{}")
    os.chmod(out / "old.json", 0o600)
    atomic_write_text(out / "old.json", "[]")
    ResultsStore(out / "results").write("u1", [dict(question="Q1", protocol="fewshot", model="m", dataset="d",
                                                    metric="accuracy", value=1.0)], {"acc": np.ones(2)})
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in sorted(out.rglob("*")) if p.is_file()}
    print(json.dumps(modes))
""")


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_open_would_give(tmp_path, umask, expected):
    proc = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path), oct(umask)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    modes = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(modes) == {"meta.json", "sub/rows.csv", "x.npy", "w.pt", "old.json", "results/rows/u1.csv",
                          "results/outcomes/u1__acc.npy"}                     # and no temp file left behind
    assert modes == {name: expected for name in modes}, oct(umask)


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "table.csv"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_temp_files_do_not_collide(tmp_path):
    with atomic_path(tmp_path / "a.json") as t1, atomic_path(tmp_path / "a.json") as t2:
        assert t1 != t2 and t1.parent == t2.parent == tmp_path and t1.name.startswith(".a.")
        t1.write_text(json.dumps(1))
        t2.write_text(json.dumps(2))
    assert json.loads((tmp_path / "a.json").read_text()) == 1     # the outer block finished last
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o666 & ~_current_umask()


def _current_umask() -> int:
    """Read in a subprocess so this process's umask is never changed."""
    out = subprocess.run([sys.executable, "-c", "import os; print(os.umask(0))"], capture_output=True, text=True)
    return int(out.stdout)
