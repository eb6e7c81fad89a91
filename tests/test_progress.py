"""Progress bars reach a terminal, never a notebook's outputs (medssl_utils.progress)."""
import io
import sys

from medssl_utils import progress


def _drain(monkeypatch, in_kernel: bool, target: str | None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(progress, "in_kernel", lambda: in_kernel)
    if target:
        monkeypatch.setenv(progress.ENV, target)
    else:
        monkeypatch.delenv(progress.ENV, raising=False)
    progress._kernel_stream.cache_clear()
    assert sum(progress.bar(range(50), desc="work")) == sum(range(50))   # still iterates
    progress._kernel_stream.cache_clear()
    return out.getvalue(), err.getvalue()


def test_inside_a_kernel_without_a_terminal_nothing_is_written(monkeypatch):
    assert _drain(monkeypatch, True, None) == ("", "")


def test_inside_a_kernel_the_bar_goes_to_the_runners_terminal(monkeypatch, tmp_path):
    tty = tmp_path / "tty"
    assert _drain(monkeypatch, True, str(tty)) == ("", "")
    assert "work" in tty.read_text() and "50/50" in tty.read_text()


def test_outside_a_kernel_the_bar_goes_to_stderr(monkeypatch):
    out, err = _drain(monkeypatch, False, None)
    assert out == "" and "50/50" in err


def test_unopenable_target_is_silent(monkeypatch, tmp_path):
    assert _drain(monkeypatch, True, str(tmp_path / "no" / "such" / "dir")) == ("", "")
