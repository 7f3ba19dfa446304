"""What the history needs from storage, a fake for tests, and the conditional-update loop.

The Protocol is the seam between the pure core and the S3 shell (`s3.py`): get with ETag,
conditional put (If-Match on an ETag, If-None-Match "*" when the object is absent), streaming
get/put and listing. `update_json` is read-modify-write with optimistic concurrency: two reports
that finish together both read the index, one conditional put wins, the other gets
`PreconditionFailed`, reads again and re-applies its change, so neither entry is lost.
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol

DEFAULT_MAX_JSON_BYTES = 16 << 20


class PreconditionFailed(Exception):
    """The conditional write lost: the object changed (or appeared) since it was read."""


class ObjectTooLarge(Exception):
    pass


class ConflictError(RuntimeError):
    """Gave up after repeated lost races; the caller's retry (Lambda) will try again."""


@dataclass(frozen=True)
class Blob:
    data: bytes
    etag: str


class HistoryStore(Protocol):
    def get(self, key: str, max_bytes: int) -> Blob | None:
        """The object and its ETag, None when absent; ObjectTooLarge above max_bytes."""
        ...

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        content_type: str = "application/octet-stream",
    ) -> str:
        """Write, returning the new ETag; PreconditionFailed when the condition does not hold."""
        ...

    def open(self, key: str) -> IO[bytes] | None:
        """A streaming reader, None when absent. The caller closes it."""
        ...

    def put_stream(self, key: str, stream: IO[bytes], content_type: str) -> None:
        """Upload from a file object without reading it whole into memory."""
        ...

    def list_keys(self, prefix: str) -> Iterator[str]: ...

    def delete(self, key: str) -> None: ...


class MemoryStore:
    """In-memory HistoryStore with S3's conditional-write semantics (thread-safe).

    `before_put(key)` runs before each put's condition is checked: tests use it to make another
    writer win the race at exactly that point.
    """

    def __init__(self) -> None:
        self.objects: dict[str, Blob] = {}
        self._lock = threading.Lock()
        self._counter = 0
        self.before_put: Callable[[str], None] | None = None
        self.puts = 0
        self.conflicts = 0

    def get(self, key: str, max_bytes: int) -> Blob | None:
        with self._lock:
            blob = self.objects.get(key)
        if blob is not None and len(blob.data) > max_bytes:
            raise ObjectTooLarge(f"{key} is {len(blob.data)} bytes, over {max_bytes}")
        return blob

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        content_type: str = "application/octet-stream",
    ) -> str:
        hook = self.before_put
        if hook is not None:
            hook(key)
        with self._lock:
            current = self.objects.get(key)
            if if_match is not None and (current is None or current.etag != if_match):
                self.conflicts += 1
                raise PreconditionFailed(key)
            if if_none_match and current is not None:
                self.conflicts += 1
                raise PreconditionFailed(key)
            self._counter += 1
            etag = f'"{self._counter:08x}"'
            self.objects[key] = Blob(bytes(data), etag)
            self.puts += 1
            return etag

    def open(self, key: str) -> IO[bytes] | None:
        with self._lock:
            blob = self.objects.get(key)
        return None if blob is None else io.BytesIO(blob.data)

    def put_stream(self, key: str, stream: IO[bytes], content_type: str) -> None:
        self.put(key, stream.read(), content_type=content_type)

    def list_keys(self, prefix: str) -> Iterator[str]:
        with self._lock:
            keys = sorted(key for key in self.objects if key.startswith(prefix))
        return iter(keys)

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(key, None)


def read_json(store: HistoryStore, key: str, max_bytes: int = DEFAULT_MAX_JSON_BYTES) -> Any:
    """Parsed JSON, or None when absent or unreadable (history is advisory: never fatal)."""
    try:
        blob = store.get(key, max_bytes)
    except ObjectTooLarge:
        return None
    if blob is None:
        return None
    try:
        return json.loads(blob.data)
    except (ValueError, UnicodeDecodeError):
        return None


def update_json(
    store: HistoryStore,
    key: str,
    change: Callable[[Any], Any],
    *,
    attempts: int = 10,
    max_bytes: int = DEFAULT_MAX_JSON_BYTES,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Apply `change(current document or None)` with a conditional put; retry on a lost race.

    `change` must be a pure function of the document it is given (it runs again on each retry).
    Returns the document that was written.
    """
    for attempt in range(attempts):
        blob = store.get(key, max_bytes)
        current: Any = None
        if blob is not None:
            try:
                current = json.loads(blob.data)
            except (ValueError, UnicodeDecodeError):
                current = None  # a corrupt document is replaced, conditionally, like any other
        document = change(current)
        data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        try:
            if blob is None:
                store.put(key, data, if_none_match=True, content_type="application/json")
            else:
                store.put(key, data, if_match=blob.etag, content_type="application/json")
            return document
        except PreconditionFailed:
            # Full jitter: racing writers spread out instead of colliding again in lockstep.
            sleep(random.uniform(0, min(0.05 * 2**attempt, 1.0)))  # noqa: S311 (jitter)
    raise ConflictError(
        f"{key}: {attempts} conditional writes in a row lost a race; giving up (the Lambda retry "
        "will try again)"
    )
