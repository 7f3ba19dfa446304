"""Untrusted text as markdown that no structure can leak out of, and numbers as people read them."""

from __future__ import annotations

import html
import re

_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]{}|#~!])")
_WHITESPACE = re.compile(r"\s+")
_LIST_START = re.compile(r"^([-+=])|^(\d{1,9})([.)])(?=\s|$)")
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SEPARATORS = re.compile(r"\\|::|/|\.")
_BACKTICKS = re.compile(r"`+")


def counted(value: int, noun: str) -> str:
    return f"{value:,} {noun}" + ("" if value == 1 else "s")


def same_name(suite: str, classname: str) -> bool:
    """PHPUnit's suite `Tests\\Unit\\FooTest` is its classname `Tests.Unit.FooTest`."""
    return bool(suite) and _SEPARATORS.sub(".", suite) == _SEPARATORS.sub(".", classname)


def case_title(classname: str, name: str, suite: str = "") -> str:
    """`Class › name`; the class is left out where it repeats the suite shown beside it."""
    if classname and name and classname != name and not same_name(suite, classname):
        return f"{inline(classname, 150)} › {inline(name, 200)}"
    return inline(name or classname or "(unnamed test)", 200)


def inline(text: str | None, limit: int) -> str:
    """Untrusted text as one line of markdown: no structure can leak out of it."""
    if not text:
        return ""
    text = _WHITESPACE.sub(" ", neutral(text)).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = _MARKDOWN_SPECIALS.sub(r"\\\1", html.escape(text, quote=False))
    # A leading "- ", "+ " or "1. " would start a list, "===" or "---" underline a heading.
    return _LIST_START.sub(_escape_start, text, count=1)


def code_span(text: str, limit: int = 500, in_table: bool = False) -> str:
    """Untrusted text as inline code (test ids): one line, cut to `limit`, bidirectional
    overrides shown as code points; in a GFM table cell pipes are escaped (the table's parser
    removes the backslash before the code span is read)."""
    flat = _WHITESPACE.sub(" ", neutral(text)).strip() or "(empty)"
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    if in_table:
        flat = flat.replace("|", "\\|")
    # CommonMark ends a code span at the first backtick run as long as its opening one: open
    # with a run longer than any inside, so no backtick in the text can end it early; the
    # spaces keep a backtick at either end from joining the fence.
    longest = max(map(len, _BACKTICKS.findall(flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def _escape_start(match: re.Match[str]) -> str:
    if match.group(1):
        return "\\" + match.group(1)
    return f"{match.group(2)}\\{match.group(3)}"


def neutral(text: str) -> str:
    """Bidirectional overrides shown as their code point: a name cannot reverse what follows."""
    return _BIDI.sub(lambda match: f"<U+{ord(match.group(0)):04X}>", text)


def seconds_text(value: float) -> str:
    if value >= 119.5:
        whole = round(value)
        if whole >= 3600:
            hours, minutes = divmod(round(value / 60), 60)
            return f"{hours} h {minutes} min"
        minutes, seconds = divmod(whole, 60)
        return f"{minutes} min {seconds} s"
    return f"{value:.2f} s" if value >= 0.01 else f"{value * 1000:.1f} ms"


def valid_utf8(text: str) -> str:
    """Lone surrogates (from hostile metadata) become '?' so the text always encodes."""
    return text.encode("utf-8", "replace").decode("utf-8")
