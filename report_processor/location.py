"""Where a test failed: the failing line from its trace, shown relative to the app root.

The XML's `file`/`line` attributes say where the test method is declared; the assertion that
failed is further down, in the trace. The failing line is the first frame in the test's own file,
else the first frame outside vendor code and the test framework. Paths below the app root (the
runner's app directory, configurable) are shown relative to it, and an optional source-URL
template (`https://github.com/org/app/blob/{app_version}/{path}#L{line}`) turns them into links.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

# runner_image/runner/config.py's DEFAULT_APP_DIR (this zip cannot import the runner; a contract
# test holds them equal).
DEFAULT_APP_ROOT = "/var/task/app"
_MAX_FRAMES = 200
# PHP, pytest, Pest, Jest/Node and generic `path:line[:col]`.
_PATH_FRAME = re.compile(
    # Starts only where a path token starts: no quadratic backtracking inside long words.
    r"(?<![\w.~@+\-/\\])(?P<path>(?:[A-Za-z]:)?[\w.~@+\-/\\]*[\w\-]\."
    r"(?:php|phpt|py|js|jsx|ts|tsx|mjs|cjs|go|rb|rs|cs|kt|java|scala|swift|c|cc|cpp|cxx|h|hpp"
    r"|ex|exs|dart|lua|pl|pm|t))"
    r"(?::(?P<line>\d+)|\((?P<php_line>\d+)\)|\", line (?P<py_line>\d+))"
)
_SOURCE_PATH = re.compile(r"[\w.@+\-/]+/[\w.@+\-]+\.[A-Za-z]{1,5}")
# Java/Kotlin/Scala: `at com.example.FooTest.adds(FooTest.java:15)`.
_JVM_FRAME = re.compile(
    r"at (?P<qualified>[\w$.]+)\.[\w$<>]+"
    r"\((?P<file>[\w$]+\.(?:java|kt|scala|groovy)):(?P<line>\d+)\)"
)
# Code that is never where the developer's assertion lives: anywhere in the path ...
_LIBRARY_PARTS = (
    "/vendor/",
    "node_modules/",
    "/usr/share/php/",
    "site-packages/",
    "dist-packages/",
    "/lib/python",
    "<frozen",
    "/internal/",
    "/phpunit/",
    "/pestphp/",
)
# ... or at its start (JVM frames are package paths).
_LIBRARY_PREFIXES = (
    "vendor/",
    "internal/",
    "node:",
    "java/",
    "javax/",
    "jdk/",
    "sun/",
    "org/junit/",
    "junit/",
    "org/apache/maven/",
    "kotlin/",
    "scala/",
)


@dataclass(frozen=True)
class PathSettings:
    """How paths are shown: relative to `app_root`, linked with `source_url_template`."""

    app_root: str = DEFAULT_APP_ROOT
    # `{path}`, `{line}` and `{app_version}` are replaced; None: no links.
    source_url_template: str | None = None


@dataclass(frozen=True)
class Frame:
    path: str
    line: int


def frames(details: str) -> list[Frame]:
    """The trace's `path:line` frames in order (JVM frames as package path + file name)."""
    found: list[Frame] = []
    for text_line in details.splitlines():
        if ":" not in text_line and "(" not in text_line:
            continue  # every frame form has a ":line" or a "(line)"
        jvm = _JVM_FRAME.search(text_line) if "at " in text_line else None
        if jvm:
            qualified = jvm["qualified"]
            package = qualified.rsplit(".", 1)[0].replace(".", "/") if "." in qualified else ""
            path = f"{package}/{jvm['file']}" if package else jvm["file"]
            found.append(Frame(path, int(jvm["line"])))
        else:
            match = _PATH_FRAME.search(text_line)
            if match:
                line = match["line"] or match["php_line"] or match["py_line"]
                found.append(Frame(match["path"].replace("\\", "/"), int(line)))
        if len(found) >= _MAX_FRAMES:
            break
    return found


def failing_frame(
    details: str, test_file: str | None, classname: str = "", suite: str = ""
) -> Frame | None:
    """The first frame in the test's own file, else the first outside vendor/framework code.

    The own file is the `file` attribute, else what the class or the suite name says (JVM class
    names, jest-junit's suite named after its test file)."""
    candidates = frames(details)
    if not candidates:
        return None
    own = _own_file_suffixes(test_file, classname)
    if _SOURCE_PATH.fullmatch(suite):
        own.append(suite.lstrip("./"))
    for frame in candidates:
        if any(_same_file(frame.path, suffix) for suffix in own):
            return frame
    for frame in candidates:
        if not is_library(frame.path):
            return frame
    return None


def is_library(path: str) -> bool:
    lowered = path.lower()
    return lowered.startswith(_LIBRARY_PREFIXES) or any(part in lowered for part in _LIBRARY_PARTS)


def relative(path: str, app_root: str) -> str:
    """`path` relative to the app root when it lies below it; otherwise as given."""
    root = app_root.rstrip("/")
    if root and path.startswith(root + "/"):
        return path[len(root) + 1 :]
    return path


def test_file(file: str | None) -> str | None:
    """The declared file without Pest's `::description` suffix."""
    if not file:
        return None
    return file.split("::", 1)[0] or None


def source_url(template: str | None, path: str, line: int | None, app_version: str | None) -> str:
    """A link to `path` at `line`, or "" when there is no template, the path is not relative
    (outside the app) or the template needs an app version nobody reported."""
    if not template or not path or path.startswith("/") or ".." in path.split("/"):
        return ""
    if "{app_version}" in template and not app_version:
        return ""
    return (
        template.replace("{path}", quote(path, safe="/"))
        .replace("{line}", str(line or 1))
        .replace("{app_version}", quote(app_version or "", safe=""))
    )


def validate_template(template: str) -> str | None:
    """Why a source-URL template is unusable, or None when it is fine."""
    if not template.startswith("https://"):
        return "must start with https://"
    if "{path}" not in template:
        return "must contain {path}"
    if any(char in template for char in " \t\n<>\"'()[]"):
        return "must not contain spaces, quotes, brackets or parentheses"
    return None


def _own_file_suffixes(file: str | None, classname: str) -> list[str]:
    suffixes = []
    own = test_file(file)
    if own:
        suffixes.append(own.replace("\\", "/"))
    if classname and "/" not in classname and "." in classname:
        # A JVM classname names its file: com.example.FooTest -> com/example/FooTest.
        suffixes.append(classname.split("$", 1)[0].replace(".", "/") + ".")
    return suffixes


def _same_file(path: str, own: str) -> bool:
    if own.endswith("."):  # a JVM class path without its extension
        stem, target = path.rsplit(".", 1)[0], own[:-1]
        return stem == target or target.endswith("/" + stem) or stem.endswith("/" + target)
    if path == own:
        return True
    shorter, longer = sorted((path, own), key=len)
    return longer.endswith("/" + shorter.lstrip("./"))
