"""Recording one run while the parser streams: rows file, digest and failing set.

Outcome codes match the parser's ranks (parse.py `_PASSED, _SKIPPED, _FAILED, _ERROR`), so the
parser can hand its rank over as is; bit 2 marks a within-run flaky pass (`flakyFailure`).

Per testcase the recorder builds the id, hashes it, appends one integer to one of 256 arrays
(bucketed by the hash's top byte, so sorting later needs no million-element list) and one line
to a batch that is gzip-compressed into a temporary file. Nothing else is kept per test except
the ids of failing tests (bounded). Memory: 8 bytes per test plus the compressor.
"""

from __future__ import annotations

import struct
import sys
import tempfile
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import IO

from report_processor.history.testid import (
    DEFAULT_APP_ROOTS,
    HASH_MASK,
    id_hash,
    make_test_id,
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
_FILE_CACHE_LIMIT = 50_000


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
        picked = [i for i, code in enumerate(self.codes) if code >= FAILED]
        return Digest(
            array("Q", [self.hashes[i] for i in picked]), bytes(self.codes[i] for i in picked)
        )


def dump_digest(digest: Digest) -> bytes:
    hashes = digest.hashes
    if sys.byteorder != "little":
        hashes = array("Q", hashes)
        hashes.byteswap()
    return b"".join(
        (DIGEST_MAGIC, struct.pack("<Q", len(digest.hashes)), hashes.tobytes(), bytes(digest.codes))
    )


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

    @property
    def failing_cases(self) -> int:
        return self.outcomes[FAILED] + self.outcomes[ERROR]


class RunRecorder:
    """Receives every testcase of one run through `on_case` (cheap: no object per case)."""

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
        self._app_roots = tuple(app_roots)
        self._buckets = [array("Q") for _ in range(256)]
        self._files: dict[str | None, str] = {}
        self._lines: list[str] = [ROWS_HEADER]
        self._out: IO[bytes] = spool if spool is not None else tempfile.TemporaryFile()  # noqa: SIM115 (closed by the caller)
        self._zip = zlib.compressobj(compress_level, zlib.DEFLATED, 31)
        self._written = 0
        self.counts = [0, 0, 0, 0]
        self.flaky = 0
        self.cases = 0
        self._quarantine_set = frozenset(quarantined)
        self.quarantined: dict[int, int] = {}
        self._want = set(want_names)
        self.names: dict[int, str] = {}
        self._max_names = max_names
        self._finished = False

    def on_case(
        self,
        file: str | None,
        classname: str,
        name: str,
        outcome: int,
        seconds: float,
        flaky: bool = False,
    ) -> None:
        """One testcase: `outcome` is PASSED/SKIPPED/FAILED/ERROR (the parser's rank)."""
        path = self._files.get(file)
        if path is None:
            if len(self._files) >= _FILE_CACHE_LIMIT:
                self._files.clear()
            path = self._files[file] = normalise_file(file, self._app_roots)
        name = normalise_name(name) if " with data set " in name else name.strip()
        text = make_test_id(path, classname.strip().replace("\\", "."), name)
        digest = blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        hashed = int.from_bytes(digest, "little") & HASH_MASK
        code = outcome & OUTCOME_MASK
        if flaky and code == PASSED:
            code |= FLAKY_BIT
            self.flaky += 1
        self._buckets[hashed >> 56].append(hashed | code)
        self.counts[code & OUTCOME_MASK] += 1
        self.cases += 1
        if (code >= FAILED or hashed in self._want) and len(self.names) < self._max_names:
            self.names[hashed] = text
        if hashed in self._quarantine_set:
            self.quarantined[hashed] = max(code, self.quarantined.get(hashed, 0))
            self.names[hashed] = text
        if "\t" in text or "\n" in text or "\\" in text or "\r" in text:
            text = _escape(text)
        self._lines.append(f"{code}\t{round(seconds * 1000)}\t{text}\n")
        if len(self._lines) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        chunk = self._zip.compress("".join(self._lines).encode("utf-8", "surrogatepass"))
        self._lines.clear()
        if chunk:
            self._out.write(chunk)
            self._written += len(chunk)

    def finish(self) -> RecordedRun:
        if self._finished:
            raise RuntimeError("RunRecorder.finish() called twice")
        self._finished = True
        self._flush()
        tail = self._zip.flush()
        self._out.write(tail)
        self._written += len(tail)
        self._out.seek(0)
        digest, duplicates = _sorted_digest(self._buckets)
        self._buckets = []
        outcomes = (self.counts[0], self.counts[1], self.counts[2], self.counts[3])
        return RecordedRun(
            cases=self.cases,
            outcomes=outcomes,
            flaky=self.flaky,
            duplicates=duplicates,
            digest=digest,
            failing=digest.failing() if self.counts[2] + self.counts[3] + self.flaky else Digest(),
            rows=self._out,
            rows_bytes=self._written,
            names=self.names,
            quarantined=self.quarantined,
        )


def _sorted_digest(buckets: list[array[int]]) -> tuple[Digest, int]:
    """Sort bucket by bucket (each ~1/256 of the run); an id seen twice keeps its worst outcome."""
    hashes: array[int] = array("Q")
    codes = bytearray()
    duplicates = 0
    mask = HASH_MASK
    for bucket in buckets:
        if not bucket:
            continue
        keys = sorted(bucket)
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
    decompressor = zlib.decompressobj(31)
    pending = b""
    header_checked = False
    while True:
        chunk = stream.read(1 << 16)
        try:
            pending += decompressor.decompress(chunk) if chunk else decompressor.flush()
        except zlib.error as error:
            raise HistoryDataError(f"{what}: not gzip data ({error})") from None
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            if not header_checked:
                header_checked = True
                if raw + b"\n" != ROWS_HEADER.encode():
                    raise HistoryDataError(f"{what}: not a history rows object (bad header)")
                continue
            parsed = _parse_row(raw)
            if parsed is not None:
                yield parsed
        if not chunk:
            break
    if pending and header_checked:
        parsed = _parse_row(pending)
        if parsed is not None:
            yield parsed


def _parse_row(raw: bytes) -> tuple[str, int, int] | None:
    parts = raw.decode("utf-8", "replace").split("\t", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[2]:
        return None
    try:
        millis = int(parts[1])
    except ValueError:
        millis = 0
    return _unescape(parts[2]), int(parts[0]) & CODE_MASK, millis


def resolve_names(stream: IO[bytes], wanted: set[int], what: str = "rows") -> dict[int, str]:
    """Ids for the wanted hashes, reading a rows object until all are found."""
    found: dict[int, str] = {}
    if not wanted:
        return found
    left = set(wanted)
    for text, _code, _millis in iter_rows(stream, what):
        hashed = id_hash(text)
        if hashed in left:
            found[hashed] = text
            left.discard(hashed)
            if not left:
                break
    return found
