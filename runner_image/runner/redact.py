"""Removes secret values from output before it is logged, returned or uploaded."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable

MASK = b"********"
# Shorter values are too likely to match ordinary output to be worth masking.
MIN_SECRET_CHARS = 3


class Redactor:
    def __init__(self, secrets: Iterable[str]):
        variants: set[bytes] = set()
        for secret in secrets:
            if not secret or len(secret) < MIN_SECRET_CHARS:
                continue
            for form in (secret, urllib.parse.quote(secret, safe=""), json.dumps(secret)[1:-1]):
                variants.add(form.encode())
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted(variants, key=len, reverse=True)
        self.pattern = re.compile(b"|".join(re.escape(v) for v in ordered)) if ordered else None
        self.longest = len(ordered[0]) if ordered else 0

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
        # Whole lines go out at once; of an unfinished line, hold back what could still be
        # the start of a secret, unless a match already covers it.
        split = max(data.rfind(b"\n") + 1, len(data) - (self._redactor.longest - 1))
        for match in pattern.finditer(data):
            if match.start() < split < match.end():
                split = match.end()
        head, self._pending = data[:split], data[split:]
        return self._redactor.bytes(head)

    def flush(self) -> bytes:
        data, self._pending = self._pending, b""
        return self._redactor.bytes(data)
