"""Recording one run while the parser streams: rows file, digest and failing set.

Outcome codes match the parser's ranks (parse.py `_PASSED, _SKIPPED, _FAILED, _ERROR`), so the
parser can hand its rank over as is; bit 2 marks a within-run flaky pass (`flakyFailure`).

Per testcase the recorder builds the id, hashes it, appends one integer to one of 256 arrays
(bucketed by the hash's top byte, so sorting later needs no million-element list) and one line
to a batch that is gzip-compressed into a temporary file. Nothing else is kept per test except
the ids of failing tests (bounded). Memory: 8 bytes per test plus the compressor.
"""

from __future__ import annotations

import re
import struct
import sys
import tempfile
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import IO, Any

from report_processor.history.testid import (
    DEFAULT_APP_ROOTS,
    HASH_MASK,
    make_test_id,
    normalise_class,
    normalise_file,
    normalise_name,
)

PASSED, SKIPPED, FAILED, ERROR = 0, 1, 2, 3
FLAKY_BIT = 4
OUTCOME_MASK = 3
CODE_MASK = 7
OUTCOME_NAMES = ("passed", "skipped", "failed", "error")
ROWS_HEADER = "#ltr-history-rows v1\n"
DIGEST_MAGIC = b"LTRHD1\n\x00"
_BATCH = 4096
_FILE_CACHE_LIMIT = 4096  # classes come in runs in JUnit files; ~2 MB of hash states at most
MAX_CLASSES = 50_000  # classes whose seconds a run keeps (durations.json)
_FAILING_CODE = re.compile(rb"[\x02-\x07]")  # failed, error, or flaky within the run


class HistoryDataError(ValueError):
    """A stored history object that is not in the expected format."""


def is_failing(code: int) -> bool:
    return (code & OUTCOME_MASK) >= FAILED


def outcome_name(code: int) -> str:
    name = OUTCOME_NAMES[code & OUTCOME_MASK]
    return name + " (flaky)" if code & FLAKY_BIT else name


@dataclass
class Digest:
    """Sorted unique id hashes and, aligned, their outcome codes."""

    hashes: array[int] = field(default_factory=lambda: array("Q"))
    codes: bytes | bytearray = b""

    def __len__(self) -> int:
        return len(self.hashes)

    def code_of(self, id_hash_value: int) -> int | None:
        index = bisect_left(self.hashes, id_hash_value)
        if index < len(self.hashes) and self.hashes[index] == id_hash_value:
            return self.codes[index]
        return None

    def failing(self) -> Digest:
        """Entries that failed, errored or were flaky within the run."""
        picked = [match.start() for match in _FAILING_CODE.finditer(self.codes)]
        return Digest(
            array("Q", [self.hashes[i] for i in picked]), bytes(self.codes[i] for i in picked)
        )


def dump_digest(digest: Digest) -> bytes:
    hashes = digest.hashes
    if sys.byteorder != "little":
        hashes = array("Q", hashes)
        hashes.byteswap()
    # join() takes the arrays' buffers directly: one copy of the digest, not two.
    count = struct.pack("<Q", len(digest.hashes))
    return b"".join((DIGEST_MAGIC, count, memoryview(hashes), memoryview(digest.codes)))


def load_digest(data: bytes, what: str = "digest") -> Digest:
    head = len(DIGEST_MAGIC) + 8
    if len(data) < head or not data.startswith(DIGEST_MAGIC):
        raise HistoryDataError(f"{what}: not a history digest (bad header); it will be skipped")
    (count,) = struct.unpack_from("<Q", data, len(DIGEST_MAGIC))
    if len(data) != head + 9 * count:
        raise HistoryDataError(f"{what}: {len(data)} bytes do not hold {count} entries")
    hashes = array("Q")
    hashes.frombytes(memoryview(data)[head : head + 8 * count])
    if sys.byteorder != "little":
        hashes.byteswap()
    return Digest(hashes, data[head + 8 * count :])


@dataclass
class RecordedRun:
    """What one run left after streaming: counts, digest, the rows file and failing test ids."""

    cases: int
    outcomes: tuple[int, int, int, int]  # passed, skipped, failed, error (by case)
    flaky: int
    duplicates: int
    digest: Digest
    failing: Digest
    rows: IO[bytes]  # gzip, positioned at 0; the caller uploads and closes it
    rows_bytes: int
    names: dict[int, str]  # hash -> id for failing, flaky and asked-for tests (bounded)
    quarantined: dict[int, int]  # hash -> code of tests on the active quarantine list
    # Seconds per class ("Tests\\Feature\\UserTest"), at most MAX_CLASSES classes.
    class_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failing_cases(self) -> int:
        return self.outcomes[FAILED] + self.outcomes[ERROR]


class RunRecorder:
    """Receives every testcase of one run through `on_case` (cheap: no object per case).

    `on_case(file, classname, name, outcome, seconds, flaky=False)` is a closure over local
    state rather than a method: attribute lookups on `self` would double its cost at 1M cases.
    """

    def __init__(
        self,
        *,
        app_roots: Sequence[str] = DEFAULT_APP_ROOTS,
        quarantined: Iterable[int] = (),
        want_names: Iterable[int] = (),
        max_names: int = 10_000,
        compress_level: int = 1,
        spool: IO[bytes] | None = None,
    ) -> None:
        self._buckets = [array("Q") for _ in range(256)]
        self._lines: list[str] = [ROWS_HEADER]
        # Closed by the caller (RecordedRun.rows).
        self._out: IO[bytes] = spool if spool is not None else tempfile.TemporaryFile()  # noqa: SIM115
        self._zip = zlib.compressobj(compress_level, zlib.DEFLATED, 31)
        self._written = 0
        self.counts = [0, 0, 0, 0, 0]  # passed, skipped, failed, error, flaky (by case)
        self.quarantined: dict[int, int] = {}
        self.names: dict[int, str] = {}
        # Seconds per test class (durations.json for the sharding planner), bounded.
        self.class_seconds: dict[str, float] = {}
        self._end_group: Callable[[], None] = lambda: None
        self._finished = False
        self.on_case = self._make_on_case(
            tuple(app_roots), frozenset(quarantined), frozenset(want_names), max_names
        )

    @property
    def cases(self) -> int:
        return sum(self.counts[:4])

    def _make_on_case(
        self,
        app_roots: tuple[str, ...],
        quarantine_set: frozenset[int],
        want: frozenset[int],
        max_names: int,
    ) -> Callable[[str | None, str, str, int, float, bool], None]:
        # Everything on_case touches is a local of this frame (a closure cell), never `self.x`.
        lines = self._lines
        counts = self.counts
        names = self.names
        quarantined = self.quarantined
        flush = self._flush
        prefixes: _PrefixCache = {}
        class_seconds = self.class_seconds
        # Bound appends of the 256 buckets: one lookup less per testcase.
        append_to = [bucket.append for bucket in self._buckets]
        mask = HASH_MASK
        from_bytes = int.from_bytes
        batch = _BATCH
        # The current class group (rows are grouped by class): its head, class key and seconds.
        current_head = ""
        group_class = ""
        group_seconds = 0.0

        def on_case(
            file: str | None,
            classname: str,
            name: str,
            outcome: int,
            seconds: float,
            flaky: bool = False,
        ) -> None:
            """One testcase: `outcome` is PASSED/SKIPPED/FAILED/ERROR (the parser's rank)."""
            nonlocal current_head, group_class, group_seconds
            cached = prefixes.get(classname)
            if cached is None or cached[0] != file:
                cached = _cache_class_prefix(prefixes, file, classname, app_roots)
            head = cached[1]
            name = normalise_name(name) if " with data set " in name else name.strip()
            # Hash = BLAKE2b-64 of the whole id; resuming from the class prefix's state saves
            # building and encoding the id for every case. expat never yields lone surrogates,
            # so strict UTF-8 cannot fail.
            hasher = cached[2].copy()
            hasher.update(name.encode())
            digest = hasher.digest()
            hashed = from_bytes(digest, "little") & mask
            code = outcome & 3
            if flaky and code == 0:
                code = 4
                counts[4] += 1
            append_to[hashed >> 56](hashed | code)
            counts[code & 3] += 1
            if (code >= 2 or hashed in want) and len(names) < max_names:
                names[hashed] = head + name
            if hashed in quarantine_set:
                quarantined[hashed] = max(code, quarantined.get(hashed, 0))
                names[hashed] = head + name
            if head is not current_head:
                # Rows are grouped by class: "=<file>::<class>::" starts a group, rows carry names.
                current_head = head
                lines.append(f"={_escape(head)}\n")
                _add_group_seconds(class_seconds, group_class, group_seconds)
                group_class, group_seconds = cached[3], 0.0
            group_seconds += seconds
            # Tab, CR and LF are not printable: one C-level scan for the three, one for "\\".
            if "\\" in name or not name.isprintable():
                name = _escape(name)
            # seconds is 0..1e7 (the parser's rule): + 0.5 and int() round it to milliseconds.
            lines.append(f"{digest.hex()}\t{code}\t{int(seconds * 1000 + 0.5)}\t{name}\n")
            if len(lines) >= batch:
                flush()

        self._end_group = lambda: _add_group_seconds(class_seconds, group_class, group_seconds)
        return on_case

    def _flush(self) -> None:
        chunk = self._zip.compress("".join(self._lines).encode())
        self._lines.clear()
        if chunk:
            self._out.write(chunk)
            self._written += len(chunk)

    def discard(self) -> None:
        self._finished = True
        self._buckets = []
        self._out.close()

    def finish(self) -> RecordedRun:
        if self._finished:
            raise RuntimeError("RunRecorder.finish() called twice")
        self._finished = True
        self._end_group()
        self._flush()
        tail = self._zip.flush()
        self._out.write(tail)
        self._written += len(tail)
        self._out.seek(0)
        buckets, self._buckets = self._buckets, []
        digest, duplicates = _sorted_digest(buckets)
        outcomes = (self.counts[0], self.counts[1], self.counts[2], self.counts[3])
        return RecordedRun(
            cases=self.cases,
            outcomes=outcomes,
            flaky=self.counts[4],
            duplicates=duplicates,
            digest=digest,
            failing=digest.failing()
            if self.counts[2] + self.counts[3] + self.counts[4]
            else Digest(),
            rows=self._out,
            rows_bytes=self._written,
            names=self.names,
            quarantined=self.quarantined,
            class_seconds=self.class_seconds,
        )


# classname -> (file, "<file>::<class>::", BLAKE2b state after that prefix, class key)
_PrefixCache = dict[str, tuple[str | None, str, Any, str]]


def _cache_class_prefix(
    prefixes: _PrefixCache, file: str | None, classname: str, app_roots: tuple[str, ...]
) -> tuple[str | None, str, Any, str]:
    """The class's id prefix and its hash state, built once per class (not per testcase)."""
    if len(prefixes) >= _FILE_CACHE_LIMIT:
        prefixes.clear()
    klass = normalise_class(classname)
    head = make_test_id(normalise_file(file, app_roots), klass, "")
    cached = prefixes[classname] = (
        file,
        head,
        blake2b(head.encode(), digest_size=8),
        klass.replace(".", "\\"),
    )
    return cached


def _add_group_seconds(class_seconds: dict[str, float], klass: str, seconds: float) -> None:
    """Add a finished group's seconds to its class (a class may come in several groups)."""
    if klass:
        if klass in class_seconds:
            class_seconds[klass] += seconds
        elif len(class_seconds) < MAX_CLASSES:
            class_seconds[klass] = seconds


def _sorted_digest(buckets: list[array[int]]) -> tuple[Digest, int]:
    """Sort bucket by bucket (each ~1/256 of the run); an id seen twice keeps its worst outcome."""
    hashes: array[int] = array("Q")
    codes = bytearray()
    duplicates = 0
    mask = HASH_MASK
    for index, bucket in enumerate(buckets):
        if not bucket:
            continue
        keys = sorted(bucket)
        buckets[index] = array("Q")  # free as we go: peak is one copy plus one bucket
        bucket_hashes = [key & mask for key in keys]
        if len(set(bucket_hashes)) != len(bucket_hashes):
            keys, removed = _merge_duplicates(keys)
            duplicates += removed
            bucket_hashes = [key & mask for key in keys]
        hashes.extend(bucket_hashes)
        codes.extend(map(CODE_MASK.__and__, keys))
    return Digest(hashes, codes), duplicates


def _merge_duplicates(keys: list[int]) -> tuple[list[int], int]:
    merged: list[int] = []
    removed = 0
    for key in keys:
        if merged and merged[-1] & HASH_MASK == key & HASH_MASK:
            removed += 1
            previous = merged[-1]
            outcome = max(previous & OUTCOME_MASK, key & OUTCOME_MASK)
            flaky = (previous | key) & FLAKY_BIT if outcome == PASSED else 0
            merged[-1] = (key & HASH_MASK) | outcome | flaky
        else:
            merged.append(key)
    return merged, removed


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append({"t": "\t", "n": "\n", "r": "\r"}.get(following, following))
        else:
            out.append(char)
    return "".join(out)


def iter_rows(stream: IO[bytes], what: str = "rows") -> Iterator[tuple[str, int, int]]:
    """(test id, code, milliseconds) per row of a gzip rows object, streaming; bad lines skipped."""
    head = ""
    for raw in iter_raw_lines(stream, what):
        if raw[:1] == b"=":
            head = _unescape(raw[1:].decode("utf-8", "replace"))
            continue
        parsed = _parse_row(raw)
        if parsed is not None:
            yield head + parsed[0], parsed[1], parsed[2]


def _parse_row(raw: bytes) -> tuple[str, int, int] | None:
    """(name, code, millis) of one row line: <hash hex>\t<code>\t<ms>\t<name>."""
    parts = raw.decode("utf-8", "replace").split("\t", 3)
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    try:
        millis = int(parts[2])
    except ValueError:
        millis = 0
    return _unescape(parts[3]), int(parts[1]) & CODE_MASK, millis


def iter_raw_lines(stream: IO[bytes], what: str = "rows") -> Iterator[bytes]:
    """The rows object's lines after its header, decompressed chunk by chunk."""
    decompressor = zlib.decompressobj(31)
    pending = b""
    header_checked = False
    while True:
        chunk = stream.read(1 << 18)
        try:
            pending += decompressor.decompress(chunk) if chunk else decompressor.flush()
        except zlib.error as error:
            raise HistoryDataError(f"{what}: not gzip data ({error})") from None
        *lines, pending = pending.split(b"\n")
        if lines and not header_checked:
            header_checked = True
            if lines[0] + b"\n" != ROWS_HEADER.encode():
                raise HistoryDataError(f"{what}: not a history rows object (bad header)")
            del lines[0]
        yield from lines
        if not chunk:
            break
    if pending and header_checked:
        yield pending


def resolve_names(stream: IO[bytes], wanted: Iterable[int], what: str = "rows") -> dict[int, str]:
    """Ids for the wanted hashes, reading a rows object until all are found. Each row starts with
    its hash in hex, so a row that is not wanted costs a slice and a dict lookup."""
    # Rows hold the unmasked digest: match on its last 7 bytes, then check the first byte.
    left = {hashed.to_bytes(8, "little").hex()[2:].encode(): hashed for hashed in wanted}
    found: dict[int, str] = {}
    head = b""
    for raw in iter_raw_lines(stream, what):
        if not left:
            break
        if raw[:1] == b"=":
            head = raw[1:]
            continue
        hashed = left.get(raw[2:16])
        if hashed is None or not _first_byte_matches(raw[:2], hashed):
            continue
        parsed = _parse_row(raw)
        if parsed is not None:
            del left[raw[2:16]]
            found[hashed] = _unescape(head.decode("utf-8", "replace")) + parsed[0]
    return found


def _first_byte_matches(hex_pair: bytes, hashed: int) -> bool:
    try:
        return int(hex_pair, 16) & 0xF8 == hashed & 0xF8
    except ValueError:  # a damaged row
        return False
