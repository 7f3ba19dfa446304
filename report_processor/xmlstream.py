"""Untrusted XML bytes into expat, safely: one home for the rules every reader of a report obeys.

The report processor's parser (parse.py) and the shard merge (merge.py) both read JUnit files
written by code under test. Here: the encoding is sniffed from the first bytes and anything expat
cannot read itself is transcoded to UTF-8; DOCTYPE, entity declarations and external entities are
refused (no expansion, no external fetch); the file and each single token are held to byte limits
*before* expat sees them, so memory stays flat; every failure is a JUnitError whose message names
the problem and the fix.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol
from xml.parsers import expat

_EXPAT_NATIVE = frozenset({"utf-8", "utf-16", "iso8859-1", "ascii"})
_UTF8_BOM = b"\xef\xbb\xbf"
_HEAD_BYTES = 1024
_DECLARED_ENCODING = re.compile(
    rb"<\?xml[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z][A-Za-z0-9._:-]{0,63})[\"']"
)


class JUnitError(Exception):
    """The input is not a usable JUnit report; the message says why and what to do."""


class StreamLimits(Protocol):
    """What the stream needs of parse.ParseLimits."""

    @property
    def max_input_bytes(self) -> int | None: ...

    @property
    def max_token_bytes(self) -> int: ...

    @property
    def chunk_bytes(self) -> int: ...


@dataclass(frozen=True)
class Source:
    """An opened report: its first bytes, the codec to transcode from (None: expat reads the
    bytes itself), the rest of the stream and the limits to hold it to."""

    head: bytes
    codec: str | None
    stream: BinaryIO
    limits: StreamLimits


def open_source(stream: BinaryIO, limits: StreamLimits, empty: str) -> Source:
    """Read the head and sniff the encoding; `empty` says who wrote nothing."""
    head = _read_head(stream, limits.chunk_bytes)
    if not head:
        raise JUnitError(f"the file is empty: {empty}")
    return Source(head, _source_codec(head), stream, limits)


def safe_parser(source: Source) -> expat.XMLParserType:
    """An expat parser that refuses DTDs and entities and hands attributes over as a flat
    [name, value, ...] list."""
    # A transcoded stream is UTF-8 whatever its declaration says: override the declaration.
    # No interning of names (intern=None): pyexpat would look every attribute name up in a dict,
    # a fifth of its per-element cost, and nothing here needs names to be identical objects.
    parser = expat.ParserCreate("UTF-8" if source.codec else None, None, intern=None)
    parser.buffer_text = True
    parser.buffer_size = 1 << 16
    parser.ordered_attributes = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    parser.ExternalEntityRefHandler = _refuse_external_entity
    return parser


def feed(
    parser: expat.XMLParserType, source: Source, after_chunk: Callable[[], None] | None = None
) -> None:
    """Feed the whole source to `parser` (`after_chunk` runs after each chunk and at the end);
    expat's and the decoder's errors become JUnitError."""
    try:
        for data in _chunks(source.head, source.stream, source.codec, source.limits):
            parser.Parse(data, False)
            if after_chunk is not None:
                after_chunk()
        parser.Parse(b"", True)
        if after_chunk is not None:
            after_chunk()
    except ValueError as error:
        # pyexpat's own refusal of a multi-byte encoding the declaration sniffing did not see.
        raise JUnitError(f"cannot decode the file: {error}; write the report in UTF-8") from None
    except expat.ExpatError as error:
        reason = expat.errors.messages.get(error.code, str(error))
        hint = (
            " (the file ends early: was the test run cut off?)"
            if reason in ("no element found", "unclosed token")
            else ""
        )
        raise JUnitError(
            f"not well-formed XML: {reason} at line {error.lineno}, column {error.offset}{hint}"
        ) from None


def _refuse_doctype(*_args: object) -> None:
    raise JUnitError(
        "the file declares a DOCTYPE; JUnit reports never need one and DTDs/entities are refused "
        "(they enable entity expansion and external entity attacks): remove the <!DOCTYPE> line"
    )


def _refuse_external_entity(*_args: object) -> int:
    _refuse_doctype()
    return 0  # never reached: _refuse_doctype raises


def _read_head(stream: BinaryIO, chunk_bytes: int) -> bytes:
    """The first chunk, and at least enough bytes to hold the XML declaration."""
    head = stream.read(chunk_bytes)
    while head and len(head) < _HEAD_BYTES:
        more = stream.read(max(chunk_bytes, _HEAD_BYTES - len(head)))
        if not more:
            break
        head += more
    return head


def _source_codec(head: bytes) -> str | None:
    """The codec to transcode from, or None when expat reads the bytes itself.

    Raises JUnitError for an encoding Python does not know.
    """
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if head.startswith(b"\x00\x00\x00<"):
        return "utf-32-be"
    if head.startswith(b"<\x00\x00\x00"):
        return "utf-32-le"
    if head.startswith((_UTF8_BOM, b"\xfe\xff", b"\xff\xfe", b"\x00<", b"<\x00")):
        return None
    match = _DECLARED_ENCODING.match(head)
    if match is None:
        return None
    declared = match.group(1).decode("ascii")
    try:
        info = codecs.lookup(declared)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise JUnitError(
            f"the XML declaration names encoding {declared!r}, which is not a known text "
            "encoding: write the report in UTF-8 (or fix the declaration)"
        )
    return None if info.name in _EXPAT_NATIVE else info.name


def _chunks(
    head: bytes, stream: BinaryIO, codec: str | None, limits: StreamLimits
) -> Iterator[bytes]:
    """The bytes expat reads, transcoded to UTF-8 when needed, with the size limits enforced.

    The token check runs on the raw chunks before expat sees them: the bytes since the last `<`
    are the open token (a tag with its attributes, or a text node), and no token grows past the
    limit inside expat, so memory stays flat whatever one attribute's size.
    """
    decoder = codecs.getincrementaldecoder(codec)("strict") if codec else None
    max_bytes = limits.max_input_bytes
    max_token = limits.max_token_bytes
    read = stream.read
    chunk_bytes = limits.chunk_bytes
    size = 0
    fed = 0
    open_token = 0
    chunk = head
    while True:
        final = not chunk
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise JUnitError(
                f"the file is larger than the {max_bytes} byte limit; split the run into "
                "shards or raise the limit"
            )
        if decoder is not None:
            try:
                data = decoder.decode(chunk, final).encode("utf-8")
            except UnicodeError as error:
                raise JUnitError(
                    f"the file is not valid {codec} as its XML declaration says "
                    f"({error.__class__.__name__} near byte {size - len(chunk)}): "
                    "write the report in UTF-8 or fix the declaration"
                ) from None
        else:
            data = chunk
        last_open = data.rfind(b"<")
        open_token = open_token + len(data) if last_open < 0 else len(data) - last_open
        if open_token > max_token:
            raise JUnitError(
                f"one XML token (an attribute, a text node or a tag) near byte {fed} is longer "
                f"than the {max_token} byte limit; such reports are refused to keep memory "
                "flat: keep huge output out of the report, or raise the limit "
                "(REPORT_MAX_TOKEN_BYTES)"
            )
        fed += len(data)
        if data:
            yield data
        if final:
            return
        chunk = read(chunk_bytes)
