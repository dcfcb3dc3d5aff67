"""Project documents link only inside the repository, and every relative link resolves.

A user who clones the project has nothing beside it, so no document may point outside the clone
(``DEVELOPERS.md``, the team's own working agreement, names the team folder on purpose).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TEAM_GUIDE = "DEVELOPERS.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def project_documents() -> list[Path]:
    documents = [REPO_ROOT / "README.md", *REPO_ROOT.glob("docs/**/*.md")]
    documents += [*REPO_ROOT.glob("infra/**/*.md"), *REPO_ROOT.glob("schemas/**/*.md")]
    return sorted(p for p in documents if p.is_file() and p.name != TEAM_GUIDE)


def broken_links(document: Path) -> list[str]:
    problems = []
    for target in LINK.findall(document.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # an absolute URL, or an anchor in the same page
        resolved = (document.parent / target.split("#", 1)[0]).resolve()
        if not resolved.is_relative_to(REPO_ROOT):
            problems.append(f"{target} leaves the repository")
        elif not resolved.exists():
            problems.append(f"{target} does not exist")
    return problems


def test_documents_are_found() -> None:
    names = {p.relative_to(REPO_ROOT).as_posix() for p in project_documents()}
    assert {"README.md", "docs/pipeline.md", "infra/README.md"} <= names


def test_no_document_points_outside_the_clone() -> None:
    outside = {
        str(p.relative_to(REPO_ROOT)): [
            line for line in p.read_text().splitlines() if "../shared" in line
        ]
        for p in project_documents()
    }
    assert {k: v for k, v in outside.items() if v} == {}


def test_every_relative_link_resolves_inside_the_repository() -> None:
    found = {str(p.relative_to(REPO_ROOT)): broken_links(p) for p in project_documents()}
    assert {k: v for k, v in found.items() if v} == {}
