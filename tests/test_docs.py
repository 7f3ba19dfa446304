"""The docs stay true to the code: commands they name exist, links resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modules.config import CONFIG_FIELDS  # the sets the config validation itself reads
from tests.conftest import REPO_ROOT

DOCS = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")])
_MAKE_TARGET = re.compile(r"^([A-Za-z][\w-]*):", re.MULTILINE)
_MAKE_USE = re.compile(r"`make ([a-z][\w-]*)")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {_anchor(heading) for heading in _HEADING.findall(text)}


def test_every_make_target_the_docs_name_exists():
    targets = set(_MAKE_TARGET.findall((REPO_ROOT / "Makefile").read_text()))
    named = {
        (doc.name, target)
        for doc in DOCS
        for target in _MAKE_USE.findall(doc.read_text(encoding="utf-8"))
    }
    assert named, "the docs name no make target at all: the pattern is broken"
    missing = sorted(f"{doc}: make {target}" for doc, target in named if target not in targets)
    assert not missing, f"the docs name make targets the Makefile lacks: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_relative_link_resolves(doc: Path):
    broken = []
    for target in _LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path_part, _, anchor = target.partition("#")
        linked = (doc.parent / path_part).resolve() if path_part else doc
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert not broken, f"{doc.name} has broken links: {broken}"


def test_readme_stays_short():
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 250, f"README.md has {lines} lines; move detail into docs/"


def _documented_config_fields(doc: Path) -> set[str]:
    """The field paths in the first column of the configuration reference table. A row may name
    several fields of one object: `runner.memory_mb` / `timeout_seconds` means
    runner.memory_mb and runner.timeout_seconds."""
    text = doc.read_text(encoding="utf-8")
    section = re.search(r"^## Configuration reference.*?$(.*?)(?=^## )", text, re.M | re.S)
    assert section, f"{doc.name} has no '## Configuration reference' section"
    fields = set()
    for line in section.group(1).splitlines():
        if not line.startswith("|") or line.startswith(("| Field", "|---")):
            continue
        names = re.findall(r"`([^`]+)`", line.split("|")[1])
        assert names, f"a configuration reference row names no field: {line}"
        parent = names[0].rpartition(".")[0]
        fields |= {names[0], *(f"{parent}.{n}" if parent else n for n in names[1:])}
    return fields


def test_the_configuration_reference_lists_exactly_the_accepted_fields():
    def path(section: str, field: str) -> str:
        return f"{section}.{field}" if section else field

    every = {path(section, field) for section, fields in CONFIG_FIELDS.items() for field in fields}
    objects = {name for name in every if name in CONFIG_FIELDS or f"{name}[]" in CONFIG_FIELDS}
    leaves = every - objects
    documented = _documented_config_fields(REPO_ROOT / "docs" / "deploying.md")
    # A row may also describe a whole object or list (`schedules[]`), never an unknown field.
    assert sorted(leaves - documented) == [], "accepted but not documented"
    assert sorted(documented - leaves - objects - set(CONFIG_FIELDS)) == [], (
        "documented but not accepted"
    )
