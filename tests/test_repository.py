"""The repository stands on its own: no file cites a document that is not in it, and no module of the
package imports another module's private (underscore) names."""
from __future__ import annotations

import re

from support.repo import REPO_ROOT

SOURCES = ("image", "vis", "tracking", "queryinst", "tools", "tests", "docs", "configs")
# Citations of the design notes this project was first written from, which are not part of the repository.
OUTSIDE_CITATION = re.compile("DESIGN " + "§|STYLE " + "§|DESIGN" + r"\.md|STYLE" + r"\.md|\.\./shared|the issue"
                              + "'s speed goals")
PRIVATE_IMPORT = re.compile(r"^\s*from\s+[\w.]+\s+import\s+\(?[^#\n]*(?<![\w])_[a-z]\w*", re.M)


def _files(*suffixes: str):
    yield from (REPO_ROOT / "README.md",)
    for top in SOURCES:
        for path in sorted((REPO_ROOT / top).rglob("*")):
            if path.suffix in suffixes and path.is_file():
                yield path


def test_no_citation_of_documents_outside_the_repository():
    cited = [f"{p.relative_to(REPO_ROOT)}:{n}" for p in _files(".py", ".md", ".yaml")
             for n, line in enumerate(p.read_text().splitlines(), 1) if OUTSIDE_CITATION.search(line)]
    assert cited == []


def test_package_modules_import_no_private_names_of_other_modules():
    offenders = []
    for top in ("image", "vis", "tracking", "queryinst"):
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            text = path.read_text()
            # multi-line "from x import (\n a,\n _b,\n)" collapsed onto one line first
            text = re.sub(r"import \(([^)]*)\)", lambda m: "import " + " ".join(m.group(1).split()), text)
            offenders += [f"{path.relative_to(REPO_ROOT)}: {m.group(0).strip()}" for m in PRIVATE_IMPORT.finditer(text)]
    assert offenders == []


def test_design_doc_anchors_cited_in_the_code_exist():
    headings = [line.lstrip("#").strip() for line in (REPO_ROOT / "docs" / "design.md").read_text().splitlines()
                if line.startswith("#")]
    anchors = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}  # GitHub's rule
    cited = {m.group(1) for p in _files(".py", ".md", ".yaml") for m in re.finditer(r"design\.md#([\w-]+)", p.read_text())}
    assert cited and cited <= anchors, sorted(cited - anchors)
