"""The README's layout table names every module of the package, so a newcomer finds each part from it."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_layout_names_every_module():
    readme = ROOT.joinpath("README.md").read_text()
    layout = readme[readme.index("## Layout"):readme.index("## Performance")]
    modules = [p for p in (ROOT / "medssl_utils").rglob("*.py") if p.name != "__init__.py"]
    missing = [str(p.relative_to(ROOT)) for p in modules if f"`{p.name}`" not in layout
               and f"`medssl_utils/{p.relative_to(ROOT / 'medssl_utils').as_posix()}`" not in layout]
    assert len(modules) > 50 and not missing, missing
