"""Which files of a run are its artifacts (where they go in the bucket: runner/layout.py)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

DEFAULT_ARTIFACT_GLOBS: dict[str, tuple[str, ...]] = {
    "scribe:generate": ("public/docs/**", ".scribe/**"),
    "api:export-markdown": ("docs/**",),
}
MAX_ARTIFACTS = 2000
_WILDCARD = re.compile(r"[*?\[]")


def check_glob(pattern: str) -> str:
    """Globs are relative to the app and stay inside it."""
    path = PurePosixPath(pattern)
    if not pattern or path.is_absolute() or ".." in path.parts or "\\" in pattern:
        raise ValueError(
            f"artifact glob {pattern!r} must be relative to the app, without '..' "
            "(like 'public/docs/**')"
        )
    return pattern


def static_root(pattern: str) -> str:
    """The directory part before the first wildcard: `public/docs/**` -> `public/docs`."""
    parts: list[str] = []
    for part in PurePosixPath(pattern).parts:
        if _WILDCARD.search(part):
            break
        parts.append(part)
    else:
        parts = parts[:-1]  # no wildcard: the pattern names a file, its folder is the root
    return "/".join(parts)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """`**` spans folders, `*` and `?` stay within one, `[...]` is a character class."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            out.append("[" + re.escape(pattern[i + 1 : end]).replace("\\-", "-") + "]")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("".join(out))


def collect(base: Path, patterns: Sequence[str]) -> list[str]:
    """Regular files under `base` matching any pattern, as sorted relative POSIX paths.

    Symbolic links are neither followed nor collected: in the run's mirror of the app they
    point into the read-only image, which is not output of this run.
    """
    found: set[str] = set()
    for pattern in patterns:
        regex = glob_regex(pattern)
        root = base / static_root(pattern)
        if root.is_symlink() or not root.is_dir():
            continue
        for folder, dirs, files in os.walk(root, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(folder, d)))
            for name in sorted(files):
                full = os.path.join(folder, name)
                if os.path.islink(full):
                    continue
                relative = Path(full).relative_to(base).as_posix()
                if regex.fullmatch(relative):
                    found.add(relative)
                    if len(found) >= MAX_ARTIFACTS:
                        return sorted(found)
    return sorted(found)


def writable_roots(patterns: Iterable[str]) -> list[str]:
    return sorted({root for root in (static_root(p) for p in patterns) if root})


_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json",
    ".xml": "application/xml",
    ".log": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".css": "text/css",
    ".js": "text/javascript",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


def content_type(name: str) -> str:
    return _CONTENT_TYPES.get(PurePosixPath(name).suffix.lower(), "application/octet-stream")
