"""The linear probe gives the same selected C and predictions under every BLAS kernel and thread count.

Each setting runs in a fresh subprocess, because OpenBLAS reads ``OPENBLAS_CORETYPE`` and its thread
count when it loads. The kernels are ones every x86-64 machine with AVX2 can run.
"""
import json
import os
import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / "fixtures" / "linear_problems.py"
N_PROBLEMS = 24
SETTINGS = [  # (OPENBLAS_CORETYPE, BLAS threads inside the fits)
    (None, 1), ("Haswell", 1), ("Sandybridge", 1), (None, 2),
]


def _run(coretype, threads, overrides, n=N_PROBLEMS):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS", "OMP_", "MKL_"))}
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(threads)
    # blas_threads=None: the fits use every thread OpenBLAS was given, so 1 vs 2 threads is really tested
    args = [sys.executable, str(WORKER), json.dumps({**overrides, "blas_threads": None}), str(n)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="OpenBLAS x86 kernels")
def test_selected_C_and_predictions_do_not_depend_on_kernel_or_threads():
    with ThreadPoolExecutor(2) as pool:   # two subprocesses at a time: the machines have two cores
        runs = dict(zip(SETTINGS, pool.map(lambda s: _run(*s, {}), SETTINGS)))
    kernels = {k for r in runs.values() for k in r["kernels"]}
    if len(kernels) < 2:
        pytest.skip(f"OpenBLAS ignored OPENBLAS_CORETYPE here (kernels seen: {sorted(kernels)})")
    ref_setting, ref = next(iter(runs.items()))
    for setting, run in runs.items():
        for key, want in ref["problems"].items():
            got = run["problems"][key]
            assert got["converged"], f"{key} under {setting}: a fit hit max_iter"
            assert got["C"] == want["C"], f"{key}: C {got['C']} under {setting} vs {want['C']} under {ref_setting}"
            assert got["pred"] == want["pred"], f"{key}: test predictions differ under {setting}"
            assert got["proba"] == want["proba"], f"{key}: probabilities differ at 1e-8 under {setting}"


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="OpenBLAS x86 kernels")
def test_the_family_is_hard_enough_to_catch_the_old_settings():
    """With the authors' solver settings the same problems do move between kernels: the test has teeth."""
    authors = {"c_grid_convention": "code", "standardize": False, "solver": "lbfgs", "tol": 1e-4,
               "max_iter": 100, "tie_tol": 0.0}
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda ct: _run(ct, 1, authors, n=36), (None, "Sandybridge"))
    if a["kernels"] == b["kernels"]:
        pytest.skip("OpenBLAS ignored OPENBLAS_CORETYPE here")
    moved = [k for k in a["problems"] if a["problems"][k]["proba"] != b["problems"][k]["proba"]]
    assert moved, "no problem moved under the authors' settings: the family no longer has near-ties"
