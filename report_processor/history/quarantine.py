"""The quarantine list (history/<project>/<environment>/quarantine.json) and what it protects.

An entry protects its test while `added <= now < expires`; `expires` is at most
`quarantine_max_days` (30) after `added`. A protected test still runs and is reported in its own
section, but is left out of the pass rate, the run's status (so the pass-rate alarm and the
notification), new/still failing and NewFailures. An expired entry protects nothing: the test
counts again and the report lists the entry as expired (with owner and date) until someone
removes it. Entries are validated when written (`ltr quarantine add`) and again when read (the
bucket is untrusted): an invalid entry read from the bucket is reported and protects nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from report_processor.history.records import iso, parse_time
from report_processor.history.testid import id_hash

QUARANTINE_VERSION = 1
MAX_ENTRIES = 5000
_LIMITS = {"test_id": 2000, "reason": 500, "owner": 200}


class QuarantineError(ValueError):
    pass


@dataclass(frozen=True)
class QuarantineEntry:
    test_id: str
    reason: str
    owner: str
    added: str  # ISO-8601 UTC
    expires: str

    def state(self, now: datetime) -> str:
        """'active' or 'expired' (an entry added in the future is not active yet: 'pending')."""
        added, expires = parse_time(self.added), parse_time(self.expires)
        if added is None or expires is None:
            return "invalid"
        if now < added:
            return "pending"
        return "active" if now < expires else "expired"


def _clean(what: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise QuarantineError(f"{what} is required (a non-empty text)")
    text: str = value.strip()
    if len(text) > _LIMITS[what]:
        raise QuarantineError(f"{what} is {len(text)} characters; at most {_LIMITS[what]}")
    if any(ord(char) < 32 or char == "\x7f" for char in text):
        raise QuarantineError(f"{what} contains control characters; write it on one line")
    return text


def new_entry(
    test_id: str, reason: str, owner: str, now: datetime, days: int, max_days: int = 30
) -> QuarantineEntry:
    """A validated entry for `ltr quarantine add TEST_ID --reason R --owner O [--days N]`."""
    if not 1 <= days <= max_days:
        raise QuarantineError(
            f"--days {days}: a quarantine lasts 1 to {max_days} days; add it again when it expires"
        )
    added = now.astimezone(UTC)
    return QuarantineEntry(
        test_id=_clean("test_id", test_id),
        reason=_clean("reason", reason),
        owner=_clean("owner", owner),
        added=iso(added),
        expires=iso(added + timedelta(days=days)),
    )


def validate_entry(raw: Any, max_days: int = 30) -> QuarantineEntry:
    if not isinstance(raw, dict):
        raise QuarantineError("an entry must be an object with test_id, reason, owner, ...")
    entry = QuarantineEntry(
        test_id=_clean("test_id", raw.get("test_id")),
        reason=_clean("reason", raw.get("reason")),
        owner=_clean("owner", raw.get("owner")),
        added=str(raw.get("added", "")),
        expires=str(raw.get("expires", "")),
    )
    added, expires = parse_time(entry.added), parse_time(entry.expires)
    if added is None or expires is None:
        raise QuarantineError(f"{entry.test_id}: added/expires must be ISO-8601 timestamps")
    if not added < expires <= added + timedelta(days=max_days):
        raise QuarantineError(
            f"{entry.test_id}: expires {entry.expires} must be after added {entry.added} and at "
            f"most {max_days} days later"
        )
    return entry


@dataclass(frozen=True)
class QuarantineList:
    entries: tuple[QuarantineEntry, ...] = ()
    problems: tuple[str, ...] = ()  # invalid entries read from the bucket, by reason

    def active(self, now: datetime) -> dict[int, QuarantineEntry]:
        """Id hash -> entry, for the entries that protect their test at `now`."""
        return {id_hash(e.test_id): e for e in self.entries if e.state(now) == "active"}

    def expired(self, now: datetime) -> tuple[QuarantineEntry, ...]:
        return tuple(e for e in self.entries if e.state(now) == "expired")

    def find(self, test_id: str) -> QuarantineEntry | None:
        for entry in self.entries:
            if entry.test_id == test_id:
                return entry
        return None


def parse_quarantine(document: Any, max_days: int = 30) -> QuarantineList:
    raw_entries = document.get("entries") if isinstance(document, dict) else None
    entries: dict[str, QuarantineEntry] = {}
    problems: list[str] = []
    for raw in raw_entries if isinstance(raw_entries, list) else []:
        try:
            entry = validate_entry(raw, max_days)
        except QuarantineError as error:
            problems.append(f"invalid quarantine entry ignored: {error}")
            continue
        entries[entry.test_id] = entry
    return QuarantineList(tuple(entries[k] for k in sorted(entries)), tuple(problems))


def quarantine_document(entries: tuple[QuarantineEntry, ...]) -> dict[str, Any]:
    return {"version": QUARANTINE_VERSION, "entries": [asdict(e) for e in entries]}


def adding(entry: QuarantineEntry, max_days: int = 30) -> Callable[[Any], dict[str, Any]]:
    """A change for storage.update_json: add or replace the entry for entry.test_id."""

    def change(document: Any) -> dict[str, Any]:
        current = parse_quarantine(document, max_days)
        kept = [e for e in current.entries if e.test_id != entry.test_id]
        if len(kept) >= MAX_ENTRIES:
            raise QuarantineError(f"the quarantine list already has {MAX_ENTRIES} entries")
        return quarantine_document(tuple(sorted([*kept, entry], key=lambda e: e.test_id)))

    return change


def removing(test_id: str, max_days: int = 30) -> Callable[[Any], dict[str, Any]]:
    def change(document: Any) -> dict[str, Any]:
        current = parse_quarantine(document, max_days)
        if current.find(test_id) is None:
            raise QuarantineError(f"{test_id} is not on the quarantine list (ltr quarantine list)")
        return quarantine_document(tuple(e for e in current.entries if e.test_id != test_id))

    return change
