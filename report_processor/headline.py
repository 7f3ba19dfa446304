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
header's end is skipped; the first non-blank line after it is the headline.
"""

from __future__ import annotations

import re

# An assertion or exception line, for when the header cannot be matched exactly.
_TELLING_LINE = re.compile(
    r"^(Failed asserting\b|[A-Za-z_][\w\\]*(Exception|Error|Warning|Notice|Deprecated)\b)"
)
_HEADER_SCAN_LIMIT = 4000


def failure_headline(details: str, name: str) -> str:
    """The first telling line of a failure's text, or "" when it has none."""
    if not details:
        return ""
    end = _phpunit_header_end(details, name)
    if end is not None:
        return _first_line(details[end:])
    lines = [line.strip() for line in details.splitlines() if line.strip()]
    if not lines:
        return ""
    if "::" in lines[0] and (not name or _method(name) in lines[0]):
        # A PHPUnit-like header we could not match exactly: prefer an assertion/exception line.
        for line in lines[1:]:
            if _TELLING_LINE.match(line):
                return line
        return lines[1] if len(lines) > 1 else ""
    return lines[0]


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
        return len(text)
    if not _blank_to_newline(text, position) and not text.startswith(" (", position):
        return None
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


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _method(name: str) -> str:
    return name.split(" with data set ", 1)[0]
