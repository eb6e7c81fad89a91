"""Bad input reaches the CLI user as one line on stderr and exit code 2, before any work."""
import pytest
import torch

from medssl_utils import cli
from medssl_utils.errors import MedsslError


def _one_line_error(capsys, argv, match):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("medssl: ") and match in err, err
    return err


def test_typo_in_protocols_is_refused(capsys):
    _one_line_error(capsys, ["run", "--profile", "smoke", "--protocols", "linearr"], "'linearr'")


def test_shard_out_of_range_is_refused(capsys):
    _one_line_error(capsys, ["run", "--profile", "smoke", "--protocols", "fewshot", "--shard", "2/2"], "shard 2/2")


def test_unknown_notebook_is_refused_before_any_runs(capsys, tmp_path):
    _one_line_error(capsys, ["notebooks", "--profile", "smoke", "--out", str(tmp_path), "--only", "datasets", "q9"],
                    "'q9'")
    assert not list(tmp_path.iterdir())          # nothing executed, not even the valid name before it


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_refused_by_config(capsys):
    _one_line_error(capsys, ["check", "--profile", "smoke", "-p", "device=cuda"], "no CUDA device")


def test_bad_linear_option_is_refused_by_config(capsys):
    _one_line_error(capsys, ["check", "--profile", "smoke", "-p", "options={linear: {solver: saga}}"], "solver")


def test_every_package_error_shares_the_base():
    from medssl_utils import notebooks

    names = notebooks._package_errors()
    for expected in ("ConfigError", "ModelError", "DatasetError", "FewShotError", "LinearProbeError",
                     "FinetuneError", "FeatureError", "AnalysisError", "StatsError", "ResultsError"):
        assert expected in names
    from medssl_utils.protocols.linear import LinearProbeError
    assert issubclass(LinearProbeError, MedsslError) and issubclass(LinearProbeError, ValueError)
