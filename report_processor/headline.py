"""The one line that says why a test failed, from a failure's text when the XML has no `message`.

PHPUnit (9 to 11) writes no `message` attribute. Its failure text starts with a header naming the
test, then the assertion or exception text, then the trace:

    Tests\\FooTest::testAdd with data set #1 (array(1, 2), 'a\\nb')      <- PHPUnit 9: arguments
    Tests\\FooTest::testAdd with data set "two
    lines"                                                            <- a named set may wrap
    Failed asserting that 2 matches expected 3.                       <- the headline
    <blank>
    /app/tests/FooTest.php:12

The header is the test's own `name` attribute (which carries the data-set name, newlines and all)
after `Class::`, optionally followed by PHPUnit 9's parenthesised arguments. Everything up to the
header's end is skipped; the first non-blank line after it is the headline, and up to three
lines are quoted (the test's custom message comes first, `Failed asserting …` after it).

The header is never the headline: PHPUnit 10/11 `.phpt` tests and Pest glue the id to the message
without a newline (`failure.phptFailed asserting…`), a data-set name may span lines, and a data
provider's error starts with a bare `Error` line. A failure whose text holds nothing but its
header and stack frames (`fail()` without a message) says "failed without a message".
"""

from __future__ import annotations

import re

# An assertion or exception line, for when the header cannot be matched exactly.
_TELLING_LINE = re.compile(
    r"^(Failed asserting\b|[A-Za-z_][\w\\]*(Exception|Error|Warning|Notice|Deprecated)\b)"
)
_HEADER_SCAN_LIMIT = 4000
MAX_MESSAGE_LINES = 3
NO_MESSAGE = "failed without a message"
# A stack frame or location line: PHP (`/app/T.php:12`, `#0 /app/T.php(12): f()`), Pest/Jest/Java
# (`at …:12`, `at Class.method(File.java:12)`), pytest (`tests/t.py:12: AssertionError`).
_FRAME = re.compile(
    r"^(?:#\d+\s+\S|at\s+\S.*(?::\d+\)?|\))$|File \"[^\"]+\", line \d+|"
    r"\S*[\w\]\)]\.\w+:\d+(?::\d+)?(?::\s+[\w.]+)?$)"
)
# Where a diff starts: the expected/actual dump is detail, not message.
_DIFF_START = ("--- Expected", "--- expected", "Expected:", "- Expected")


# `message` attributes that say nothing the outcome does not (go-junit-report writes "Failed").
_GENERIC_MESSAGES = frozenset({"failed", "failure", "error", "fail", "assertion failed"})


def best_message(attribute: str, details: str, name: str) -> str:
    """The `message` attribute, unless it is missing or generic: then the failure text's own."""
    if attribute and attribute.strip().casefold() not in _GENERIC_MESSAGES:
        return attribute
    return failure_message(details, name) or attribute


def failure_headline(details: str, name: str) -> str:
    """The first telling line of a failure's text, or "" when it has none."""
    return failure_message(details, name).split("\n", 1)[0]


def failure_message(details: str, name: str) -> str:
    """Up to three telling lines of a failure's text (newline-separated), or "" for no text."""
    if not details or not details.strip():
        return ""
    end = _header_end(details, name)
    if end is not None:
        return "\n".join(message_lines(details[end:])) or NO_MESSAGE
    lines = [line.strip() for line in details.splitlines() if line.strip()]
    if "::" in lines[0] and (not name or _method(name) in lines[0]):
        # A PHPUnit-like header we could not match exactly: prefer an assertion/exception line.
        rest = details.split("\n", 1)[1] if "\n" in details else ""
        for index, line in enumerate(rest.splitlines()):
            if _TELLING_LINE.match(line.strip()):
                return "\n".join(message_lines("\n".join(rest.splitlines()[index:])))
        return "\n".join(message_lines(rest)) or NO_MESSAGE
    return "\n".join(message_lines(details)) or NO_MESSAGE


def message_lines(text: str, limit: int = MAX_MESSAGE_LINES) -> tuple[str, ...]:
    """A message's first lines: up to a blank line, a stack frame or a diff; at most `limit`."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            if lines:
                break
            continue
        if is_frame(line):
            if lines:
                break
            # Google Test and others put the location first: the message follows it.
            continue
        if line.startswith(_DIFF_START):
            break
        lines.append(line)
        if len(lines) >= limit:
            break
    return tuple(lines)


def is_frame(line: str) -> bool:
    return bool(_FRAME.match(line.strip()))


def _header_end(text: str, name: str) -> int | None:
    """Where the message starts after the test's own id, or None when the text has no id."""
    end = _phpunit_header_end(text, name)
    if end is not None or not name:
        return end
    if text.startswith(name):
        # `.phpt` paths, Pest descriptions, a data provider's bare `Error`, multi-line ids.
        position = len(name)
        if _blank_to_newline(text, position):
            return text.find("\n", position) + 1 if "\n" in text[position:] else len(text)
        return None if text[position].isspace() else position
    return None


def _phpunit_header_end(text: str, name: str) -> int | None:
    """Index just after the `Class::name[ (args)]` header line(s), or None when there is none."""
    if not name:
        return None
    newline = text.find("\n")
    first_line = text if newline < 0 else text[:newline]
    colons = first_line.find("::")
    if colons < 0 or not text.startswith(name, colons + 2):
        return None
    position = colons + 2 + len(name)
    if text.startswith(" (", position):
        closing = _closing_paren(text, position + 1)
        if closing is not None and _blank_to_newline(text, closing + 1):
            position = closing + 1
        # PHPUnit 9 exports the arguments on one line (newlines as "\n"): its line ends the header.
    newline = text.find("\n", position)
    if newline < 0:
        return len(text) if _blank_to_newline(text, position) else position
    if not _blank_to_newline(text, position) and not text.startswith(" (", position):
        # The message glued to the id without a newline (PHPUnit 10/11 `.phpt`, Pest); a space
        # means the id goes on (the name attribute is not the whole id).
        return None if text[position].isspace() else position
    return newline + 1


def _closing_paren(text: str, opening: int) -> int | None:
    """The index of the `)` matching text[opening] == "(", minding PHP's quoted strings."""
    depth = 0
    quote = ""
    index = opening
    limit = min(len(text), opening + _HEADER_SCAN_LIMIT)
    while index < limit:
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None


def _blank_to_newline(text: str, position: int) -> bool:
    end = text.find("\n", position)
    rest = text[position:] if end < 0 else text[position:end]
    return not rest.strip()


def _method(name: str) -> str:
    return name.split(" with data set ", 1)[0]
