"""Removes secret values from output before it is logged, returned or uploaded.

A secret is masked in every form a reader could turn back into it, and in any mix of them,
because each character is matched as any of its encodings: itself, an XML character reference
(named, decimal, hexadecimal of either case), a JSON escape (`\\u0026`, `\\"`, PHP's `\\/`), a
URL escape (`%2F` of either case, `+` for a space), and the JSON escape of a quote as XML
writes it (`\\&quot;`). A password is also masked as base64, at each of the three alignments
it can have inside a longer base64 string.

A password is masked wherever it stands. A username is masked only where it stands as a whole
token (not inside `<testsuites>` when it is `test`), and not at all when it is shorter than
MIN_USERNAME_CHARS: such a name is too likely to be an ordinary word of the output.
"""

from __future__ import annotations

import base64
import re
import xml.parsers.expat
from collections.abc import Iterable
from typing import BinaryIO

MASK = b"********"
# Shorter passwords are too likely to match ordinary output to be worth masking.
MIN_SECRET_CHARS = 3
MIN_USERNAME_CHARS = 4
# Below this, the base64 characters that depend on the password alone are too few to mask
# without masking ordinary base64 data.
MIN_BASE64_SECRET_CHARS = 8
# A numeric character reference may carry leading zeros; a reader accepts any number of
# them, the masking up to this many.
MAX_LEADING_ZEROS = 6

# Encodings nest (JSON inside JSON, XML-escaped twice, URL-encoded twice) up to this depth.
MAX_NESTING = 3
MAX_FORM_CHARS = 40  # the longest encoding of one character the masking recognises

_NAMED = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}
# The character after the backslash of a JSON (or PHP var_export) short escape.
_JSON_SHORT = {'"': '"', "\\": "\\", "/": "/", "\b": "b", "\f": "f", "\n": "n", "\r": "r",
               "\t": "t", "'": "'"}  # fmt: skip
_AMP = f"&(?:amp;){{0,{MAX_NESTING}}}"
_BACKSLASHES = f"\\\\{{1,{2 ** (MAX_NESTING + 1)}}}"
_PERCENT = f"(?:25){{0,{MAX_NESTING}}}"
_TOKEN_CHAR = rb"[A-Za-z0-9_]"


def _hex(value: int, width: int = 0) -> str:
    """Hex digits of either case: `4a` -> `4[aA]`."""
    digits = f"{value:0{width}x}"
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in digits)


def _literal(text: str) -> str:
    return re.escape(text)


def _xml_reference(code: int) -> str:
    zeros = f"0{{0,{MAX_LEADING_ZEROS}}}"
    return f"{_AMP}#(?:{zeros}{code}|[xX]{zeros}{_hex(code)});"


def _xml_forms(char: str) -> str:
    """`char` itself or XML-escaped (once or nested): literal, named or numeric reference."""
    options = [_literal(char), _xml_reference(ord(char))]
    if char in _NAMED:
        options.append(f"{_AMP}{_NAMED[char]};")
    return "(?:" + "|".join(options) + ")"


def _atom(char: str) -> str:
    """A regex for every encoding of one character (MAX_FORM_CHARS long at most)."""
    options = [_xml_forms(char)]
    code = ord(char)
    if code < 0x10000:
        options.append(f"{_BACKSLASHES}[uU]{_hex(code, 4)}")
    if char in _JSON_SHORT:
        # `\"` as JSON writes it, `\\\"` as JSON inside JSON, `\&quot;` as XML then writes it.
        options.append(_BACKSLASHES + _xml_forms(_JSON_SHORT[char]))
    options.append("".join(f"%{_PERCENT}{_hex(byte, 2)}" for byte in char.encode()))
    if char == " ":
        options.append(r"\+")
    return "(?:" + "|".join(options) + ")"


def _any_form(text: str) -> tuple[str, int]:
    return "".join(_atom(char) for char in text), MAX_FORM_CHARS * len(text)


def base64_cores(secret: str) -> list[str]:
    """For each alignment of the secret inside a longer base64 string, the characters that
    depend on the secret's bits alone."""
    data = secret.encode()
    cores = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data + b"\0\0\0").decode()
        first = -(-shift * 8 // 6)  # the first character made of the secret's bits only
        last = (shift + len(data)) * 8 // 6
        cores.append(encoded[first:last])
        cores.append(encoded[first:last].replace("+", "-").replace("/", "_"))  # base64url
    return cores


class Redactor:
    def __init__(self, passwords: Iterable[str] = (), usernames: Iterable[str] = ()):
        patterns: list[tuple[str, int]] = []
        # Every form starts with its first character or with one of the encodings' leads.
        starts = set("&\\%+")
        for password in set(passwords):
            if not password or len(password) < MIN_SECRET_CHARS:
                continue
            patterns.append(_any_form(password))
            starts.add(password[0])
            if len(password) >= MIN_BASE64_SECRET_CHARS:
                cores = set(base64_cores(password))
                patterns.extend(_any_form(core) for core in cores)
                starts.update(core[0] for core in cores if core)
        for username in set(usernames):
            if not username or len(username) < MIN_USERNAME_CHARS:
                continue
            regex, longest = _any_form(username)
            starts.add(username[0])
            before, after = _TOKEN_CHAR.decode(), _TOKEN_CHAR.decode()
            patterns.append((f"(?<!{before}){regex}(?!{after})", longest))
        # Longest first, so a secret containing another is masked whole.
        patterns.sort(key=lambda item: item[1], reverse=True)
        # The look-ahead lets the scan skip, at one test per byte, where no form can start.
        lead = "(?=[" + "".join(re.escape(c) for c in sorted(starts)) + "])"
        self.pattern = (
            re.compile((lead + "(?:" + "|".join(f"(?:{r})" for r, _ in patterns) + ")").encode())
            if patterns
            else None
        )
        # The longest text a match can span (and the bytes around a username that decide
        # whether it is a whole token).
        self.longest = max((n for _, n in patterns), default=0) + (1 if patterns else 0)

    def bytes(self, data: bytes) -> bytes:
        return self.pattern.sub(MASK, data) if self.pattern else data

    def text(self, text: str) -> str:
        return self.bytes(text.encode()).decode(errors="replace") if self.pattern else text

    def stream(self) -> StreamRedactor:
        return StreamRedactor(self)


class StreamRedactor:
    """Redacts a byte stream fed in chunks: a secret split across two chunks is still found,
    because the end of a chunk without a newline is held back until the next one."""

    def __init__(self, redactor: Redactor):
        self._redactor = redactor
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk
        pattern = self._redactor.pattern
        if pattern is None:
            self._pending = b""
            return data
        # Whole lines go out at once (no form of a secret spans a line break); of an
        # unfinished line, hold back what could still be the start of a secret, unless a
        # match already covers it.
        split = max(data.rfind(b"\n") + 1, len(data) - self._redactor.longest)
        pieces, done = [], 0
        for match in pattern.finditer(data):
            if match.start() >= split:
                break
            split = max(split, match.end())
            pieces += [data[done : match.start()], MASK]
            done = match.end()
        pieces.append(data[done:split])
        self._pending = data[split:]
        return b"".join(pieces)

    def flush(self) -> bytes:
        data, self._pending = self._pending, b""
        return self._redactor.bytes(data)


class NotWellFormed(ValueError):
    """The XML could not be parsed; the message says where."""


_ATTRIBUTE_ESCAPES = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("\r"): "&#13;",
    ord("\n"): "&#10;",
    ord("\t"): "&#9;",
}


def redact_xml(reader: BinaryIO, writer: BinaryIO, redactor: Redactor) -> None:
    """Rewrite the XML document from `reader` into `writer` with every secret masked in its
    text, attribute values, comments and processing instructions, as the parser decoded them
    (so a character reference is no hiding place), never in element or attribute names: the
    result always parses. Raises NotWellFormed, having written part of it, when `reader` is
    not XML (the caller then falls back to masking its bytes); a DOCTYPE is refused too (a
    report needs none, and entities could hide a value from the masking)."""
    parser = xml.parsers.expat.ParserCreate(encoding=None)
    parser.buffer_text = True
    parser.ordered_attributes = True
    out = _XmlWriter(writer, redactor)

    def start(name: str, attributes: list[str]) -> None:
        out.text_end()
        pairs = "".join(
            f' {attributes[i]}="{out.mask(attributes[i + 1]).translate(_ATTRIBUTE_ESCAPES)}"'
            for i in range(0, len(attributes), 2)
        )
        out.write(f"<{name}{pairs}>")

    def end(name: str) -> None:
        out.text_end()
        out.write(f"</{name}>")

    def comment(data: str) -> None:
        out.text_end()
        out.write(f"<!--{out.mask(data)}-->")

    def instruction(target: str, data: str) -> None:
        out.text_end()
        out.write(f"<?{target} {out.mask(data)}?>")

    def doctype(*_: object) -> None:
        raise NotWellFormed("a DOCTYPE declaration is not expected in a JUnit report")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = out.text
    parser.CommentHandler = comment
    parser.ProcessingInstructionHandler = instruction
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    try:
        while chunk := reader.read(64 * 1024):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except xml.parsers.expat.ExpatError as error:
        raise NotWellFormed(str(error)) from None
    out.text_end()
    out.write("\n")


class _XmlWriter:
    """Character data arrives in pieces: one stream redactor per text node finds a secret
    split between them."""

    def __init__(self, writer: BinaryIO, redactor: Redactor):
        self._writer = writer
        self._redactor = redactor
        self._stream: StreamRedactor | None = None

    def mask(self, value: str) -> str:
        return self._redactor.text(value)

    def write(self, markup: str) -> None:
        self._writer.write(markup.encode())

    def text(self, data: str) -> None:
        if self._stream is None:
            self._stream = self._redactor.stream()
        self._emit(self._stream.feed(data.encode()))

    def text_end(self) -> None:
        if self._stream is not None:
            self._emit(self._stream.flush())
            self._stream = None

    def _emit(self, data: bytes) -> None:
        # Escaping works on bytes: a chunk may end inside a multi-byte character.
        self._writer.write(
            data.replace(b"&", b"&amp;")
            .replace(b"<", b"&lt;")
            .replace(b">", b"&gt;")
            .replace(b"\r", b"&#13;")
        )
