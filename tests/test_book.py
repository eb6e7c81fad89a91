"""The rendered book has the counterpart of every table and figure of the paper.

Builds a book from the committed, executed smoke notebooks (no execution: `execute_notebooks: off`)
with warnings as errors, then walks the HTML for each label.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "tests" / "notebooks"
LABELS = (["Table 1", "Table 2", "Table 3", "Table 4"] + [f"Table A{i}" for i in range(1, 8)]
          + [f"Figure {i}" for i in range(1, 10)] + [f"Figure A{i}" for i in range(1, 7)])


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> str:
    from medssl_utils.notebooks import NOTEBOOKS

    missing = [n for n in NOTEBOOKS if not (NB_DIR / f"{n}_smoke.ipynb").is_file()]
    assert not missing, f"smoke notebooks missing (run `make smoke-notebooks`): {missing}"
    book = tmp_path_factory.mktemp("book")
    shutil.copy(ROOT / "_config.yml", book / "_config.yml")
    (book / "book" / "generated").mkdir(parents=True)
    shutil.copy(ROOT / "book" / "intro.md", book / "book" / "intro.md")
    for n in NOTEBOOKS:
        shutil.copy(NB_DIR / f"{n}_smoke.ipynb", book / "book" / "generated" / f"{n}.ipynb")
    shutil.copy(ROOT / "_toc.yml", book / "_toc.yml")
    jb = Path(sys.executable).parent / "jupyter-book"
    r = subprocess.run([str(jb), "build", str(book), "-W", "-n", "--keep-going"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    pages = sorted((book / "_build" / "html").rglob("*.html"))
    text = "\n".join(p.read_text(errors="replace") for p in pages)
    assert "cdn.jsdelivr.net/npm/mathjax" not in text, "pages must load MathJax locally, not from a CDN"
    return text


@pytest.mark.parametrize("label", LABELS)
def test_every_table_and_figure_has_a_counterpart(html, label):
    plain = re.sub(r"<[^>]+>", " ", html)
    assert re.search(rf"\b{re.escape(label)}\b(?![0-9])", plain), f"{label} not found in the built book"


def test_injected_parameters_are_hidden(html):
    assert "tag_parameters" in html            # the documented parameters cell is there (folded)
    assert "tag_injected-parameters" not in html  # papermill's injected cell is removed


def _outputs(html: str) -> list[str]:
    """The text of every cell output area on the built pages."""
    blocks = re.findall(r'<div class="cell_output docutils container">(.*?)</div>\s*</div>', html, flags=re.S)
    return [re.sub(r"<[^>]+>", " ", b) for b in blocks]


def test_pages_have_no_progress_bars_paths_or_warnings(html):
    outputs = _outputs(html)
    assert outputs, "no cell outputs found: the HTML layout changed and this test would pass vacuously"
    text = "\n".join(outputs)
    bars = re.findall(r"\d+%\|.*?\|\s*\d+/\d+|\d+(?:\.\d+)?(?:it|s)/(?:s|it)\]", text)
    assert not bars, f"{len(bars)} progress-bar line(s) in the rendered pages, e.g. {bars[0]!r}"
    paths = re.findall(r"(?:/work/|/home/|/root/|/tmp/|/Users/|site-packages|[A-Z]:\\\\)\S*", text)
    assert not paths, f"{len(paths)} absolute path(s) of the build machine in the pages, e.g. {paths[0]!r}"
    warns = [ln.strip() for ln in text.splitlines() if re.search(r"\w*Warning\b|^\s*warnings\.warn", ln)]
    assert not warns, f"{len(warns)} warning line(s) in cell outputs, e.g. {warns[0]!r}"


def test_committed_smoke_notebooks_have_no_stderr_output():
    import nbformat

    for path in sorted(NB_DIR.glob("*_smoke.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            for out in cell.get("outputs", []):
                assert out.get("name") != "stderr", f"{path.name} cell {i} writes to stderr: {out['text'][:200]!r}"
