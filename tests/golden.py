"""Golden files: what users read (summaries, the synthesized stack) against a reviewed copy.

`make golden` (UPDATE_GOLDEN=1) rewrites every golden file from the current output instead of
comparing, so a change in output is reviewed as a git diff of exactly what users read.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

UPDATE_ENV = "UPDATE_GOLDEN"


def updating() -> bool:
    return os.environ.get(UPDATE_ENV) == "1"


def assert_matches_golden(path: Path, actual: str) -> None:
    """Compare `actual` with the golden file at `path`, or rewrite it under `make golden`."""
    if updating():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        raise AssertionError(f"no golden file {path}: run `make golden` and review the new file")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"{path} (golden)",
                tofile="current output",
                n=2,
            )
        )
        raise AssertionError(
            f"output differs from {path}; if the change is intended, run `make golden` and "
            f"review the diff:\n{diff[:20000]}"
        )
