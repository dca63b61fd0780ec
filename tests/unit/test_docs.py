"""The docs stand alone and stay true: the architecture's module map names every
module (and nothing that is gone), and no doc cites what a reader of the
repository cannot open (internal spec/design section numbers, issue numbers)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "openglacier"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAP_ENTRY = re.compile(r"^\| `([^`]+)` \|", re.MULTILINE)

# "spec 1.8", "Spec 2.22 [R]", "design 3", "issue 5", "(9 #4)", "../shared/": sources
# outside the repository. AWS pages are cited by title instead.
UNOPENABLE = re.compile(
    r"\b[Ss]pec(ification)?s? ?§?\d|\b[Dd]esign (principle )?\d|\[R\]|\b[Ii]ssues? #?\d"
    r"|\(\d+\.\d+(-\d+\.\d+)?(, ?\d+(\.\d+)?)*\)|\b\d #\d|\.\./shared/"
)


def module_map() -> set[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    return set(MAP_ENTRY.findall(section))


def modules() -> set[str]:
    names = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.name == "__init__.py" and rel.parent != Path("."):
            names.add(f"{rel.parent.as_posix()}/")  # a package is listed as "dir/"
        else:
            names.add(rel.as_posix())
    return names


def test_every_module_is_in_the_architecture_module_map() -> None:
    missing = sorted(modules() - module_map())
    assert not missing, f"add to docs/architecture.md's module map: {missing}"


def test_the_module_map_names_no_module_that_is_gone() -> None:
    stale = sorted(module_map() - modules())
    assert not stale, f"remove from docs/architecture.md's module map: {stale}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_cite_only_what_a_reader_can_open(doc: Path) -> None:
    found = [
        f"line {n}: {m.group(0)!r}"
        for n, line in enumerate(doc.read_text().splitlines(), 1)
        for m in UNOPENABLE.finditer(line)
    ]
    assert not found, f"{doc.name} cites sources outside the repository: {found}"
