"""The stable test id: `<file>::<class>::<name>`, the same across runs, shards and machines.

Rules (docs/_incoming/history.md repeats them):
- file: backslashes become '/'; a configured app root (the runner's /var/task/app) is stripped;
  any other absolute path keeps only the part from its first `tests`/`test`/`spec` folder on
  (shards and CI checkouts put the app in run-dependent folders); a leading './' is dropped.
  Without a file the id is `<class>::<name>`.
- class: the `classname` the parser reports, with PHP's '\\' written as '.' (PHPUnit 9 writes
  `Tests.Feature.UserTest`, later versions `Tests\\Feature\\UserTest`: the same test either way).
- name: as written, so PHPUnit data sets stay distinct (`test_x with data set #1`,
  `test_x with data set "named"`); data values some runners append (`... #1 (1, 'a')`) are dropped
  because they can change from run to run while the data set name does not.

The 64-bit hash (BLAKE2b, low 3 bits cleared for the outcome code) is what the diff compares;
at a million tests the chance of any collision is about 2e-7.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from hashlib import blake2b

DEFAULT_APP_ROOTS = ("/var/task/app",)  # runner_image/runner/config.py DEFAULT_APP_DIR
HASH_MASK = 0xFFFF_FFFF_FFFF_FFF8
_TEST_FOLDERS = frozenset({"tests", "test", "spec", "Tests", "Test", "__tests__"})
_DRIVE = re.compile(r"^[A-Za-z]:/")


def normalise_file(file: str | None, app_roots: Sequence[str] = DEFAULT_APP_ROOTS) -> str:
    if not file:
        return ""
    path = file.strip().replace("\\", "/")
    while "//" in path:
        path = path.replace("//", "/")
    for root in app_roots:
        root = root.replace("\\", "/").rstrip("/") + "/"
        if path.startswith(root):
            return path[len(root) :]
    if path.startswith("/") or _DRIVE.match(path):
        parts = path.split("/")
        for index, part in enumerate(parts):
            if part in _TEST_FOLDERS:
                return "/".join(parts[index:])
        return path
    while path.startswith("./"):
        path = path[2:].lstrip()
    return path


def normalise_class(classname: str) -> str:
    return classname.strip().replace("\\", ".")


def normalise_name(name: str) -> str:
    """Keep `... with data set #1` / `... with data set "named"`, drop appended data values."""
    name = name.strip()
    head, marker, tail = name.partition(" with data set ")
    if not marker:
        return name
    if tail.startswith("#"):
        end = tail.find(" ")
        return name if end == -1 else head + marker + tail[:end]
    if tail.startswith('"') and tail.endswith(")"):
        end = tail.find('" (', 1)
        return name if end == -1 else head + marker + tail[: end + 1]
    return name


def make_test_id(file: str, classname: str, name: str) -> str:
    """From already normalised parts."""
    if file:
        return f"{file}::{classname}::{name}"
    return f"{classname}::{name}"


def stable_test_id(
    file: str | None, classname: str, name: str, app_roots: Sequence[str] = DEFAULT_APP_ROOTS
) -> str:
    """The stable id of one testcase from its JUnit `file`, `classname` (or `class`) and `name`."""
    return make_test_id(
        normalise_file(file, app_roots), normalise_class(classname), normalise_name(name)
    )


def id_hash(test_id_text: str) -> int:
    """64-bit hash with the low 3 bits free for the outcome code."""
    digest = blake2b(test_id_text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & HASH_MASK


def matches(query: str, test_id_text: str) -> bool:
    """`ltr history` lookups: a full id, or its end from a `::`, '.', or '/' boundary on
    (`ShopTest::test_x`, `Tests\\Feature\\ShopTest::test_x`, `test_x`)."""
    query = query.strip().replace("\\", ".")
    if not query:
        return False
    return test_id_text == query or any(
        test_id_text.endswith(boundary + query) for boundary in ("::", ".", "/")
    )
