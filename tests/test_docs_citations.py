"""Docstrings and comments cite only what the repository holds: the authors' code is described in
medssl_utils/reference/AUTHORS_CODE.md, and every "AUTHORS_CODE.md §N [item K]" names a section (and item) it has."""
import fnmatch
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "medssl_utils" / "reference" / "AUTHORS_CODE.md"

# Citation forms of the project's out-of-repository notes (not the word pair in general: the methods page's
# deviations table has a column called "AUTHORS_CODE.md", which holds AUTHORS_CODE.md section numbers).
OUTSIDE = re.compile(r"original[- ]code[- ]notes|(?:project's|authors'|original) code[- ]notes"
                     r"|code[- ]notes,? (?:s\d|§|section|item)", re.I)
CITATION = re.compile(r"AUTHORS_CODE\.md((?:(?:[ ,;]|and|-)*§\d+(?:\.\d+)*(?: items? \d+)?)+)")
SECTION = re.compile(r"§(\d+(?:\.\d+)*)(?: items? (\d+))?")


def _sources():
    yield ROOT / "README.md"
    for folder in ("medssl_utils", "tools"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".md", ".yml") and path.is_file():
                yield path


def _sections() -> dict[str, set[int]]:
    """Section number -> item numbers (first cell of a table row, or "K." list items) in that section."""
    sections: dict[str, set[int]] = {}
    current = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        head = re.match(r"#+ §(\d+(?:\.\d+)*)\b", line)
        if head:
            current = head.group(1)
            sections[current] = set()
            continue
        item = re.match(r"\| (\d+) \||(\d+)\. ", line)
        if current is not None and item:
            sections[current].add(int(item.group(1) or item.group(2)))
    return sections


def _check(cited: str, sections: dict[str, set[int]], where: str) -> list[str]:
    bad = []
    for sec, item in SECTION.findall(cited):
        if sec not in sections:
            bad.append(f"{where}: §{sec} is not a section of AUTHORS_CODE.md")
        elif item and int(item) not in sections[sec]:
            bad.append(f"{where}: §{sec} has no item {item}")
    return bad


def test_no_citation_of_notes_outside_the_repository():
    hits = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in _sources()
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if OUTSIDE.search(line)]
    assert not hits, "cite medssl_utils/reference/AUTHORS_CODE.md instead:\n" + "\n".join(hits)


def test_authors_code_citations_name_existing_sections():
    sections = _sections()
    assert {"0", "2", "3", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "5", "6"} <= set(sections)
    assert sections["0"] == set(range(1, 12)) and sections["5"] == set(range(1, 21)), "numbered lists changed"
    bad, n = [], 0
    for p in _sources():
        text = re.sub(r"\s*\n\s*(?:#\s*)?", " ", p.read_text(encoding="utf-8"))   # citations may wrap a line
        for m in CITATION.finditer(text):
            n += 1
            bad += _check(m.group(1), sections, str(p.relative_to(ROOT)))
    assert n >= 20, f"only {n} AUTHORS_CODE.md citations found"
    assert not bad, "\n".join(bad)


def test_deviation_records_cite_existing_sections():
    """Deviation.notes ("section 5 item 2; section 0 item 4") are AUTHORS_CODE.md numbers, shown on the methods page."""
    from medssl_utils.book.deviations import DEVIATIONS

    sections = _sections()
    bad = []
    for d in DEVIATIONS:
        assert re.search(r"section \d", d.notes), d.key
        bad += _check(re.sub(r"section ", "§", d.notes), sections, f"deviation {d.key}")
    assert not bad, "\n".join(bad)


def test_authors_code_ships_with_the_package():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = [p for key in ("*", "medssl_utils.reference") for p in data.get(key, [])]
    assert any(fnmatch.fnmatch(DOC.name, p) for p in patterns), f"package-data {data} does not ship {DOC.name}"
