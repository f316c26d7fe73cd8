"""Code, docstrings and tests cite the README's sections by title, so the behaviour they point to
can be found with only the repository: every cited title is a heading of the README."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITED_FOLDERS = ("engine", "console", "tests", "bench", "firehose_console")
# The contract document the code once cited, which the repository does not hold (spelled with a
# class so that grepping the tree for its name finds nothing, this line included).
OUTSIDE_DOCUMENT = re.compile(r"\bS[P]EC\b")
CITATION = re.compile(r"""README(?::|'s) "(?P<first>[^"]+)"(?: and "(?P<second>[^"]+)")?""")


def readme_headings() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return {match.group(1).strip() for match in re.finditer(r"^#{2,3} (.+)$", text, re.M)}


def python_sources() -> list[Path]:
    return sorted(path for folder in CITED_FOLDERS for path in (ROOT / folder).rglob("*.py"))


def citations() -> list[tuple[str, str]]:
    found = []
    for path in python_sources():
        for match in CITATION.finditer(path.read_text(encoding="utf-8")):
            where = str(path.relative_to(ROOT))
            # A citation wrapped over two lines names the same heading.
            found += [(where, " ".join(title.split())) for title in match.groups() if title]
    return found


def test_every_cited_readme_section_exists() -> None:
    headings = readme_headings()
    cited = citations()
    assert len(cited) >= 15  # the scan does find the citations
    assert [(where, title) for where, title in cited if title not in headings] == []


def test_nothing_cites_a_document_outside_the_repository() -> None:
    outside = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in python_sources()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE_DOCUMENT.search(line)
    ]
    assert outside == []
