"""Pure decisions of the Lambda shell: which S3 keys to act on, where reports go, run metadata.

S3 keys and manifest fields are untrusted: they are checked here, before anything is read or
written, and nothing derived from them can point outside the `reports/` prefix.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from report_processor.case_fields import plausible_seconds
from report_processor.model import RunMetadata, ShardRow

RUNS_PREFIX = "runs/"
REPORTS_PREFIX = "reports/"
LATEST_PREFIX = "reports/latest/"
MARKER_PREFIX = "reports/.processed/"
MAX_KEY_LENGTH = 1024
JUNIT_FILE = "junit.xml"
OTHER_COMMAND = "other"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_METADATA_LIMIT = 200
# manifest.json `status` values the runner writes.
RUNNER_STATUSES = frozenset({"passed", "failed", "error", "timed_out", "rejected"})
_MAX_SHARD_ROWS = 1000


@dataclass(frozen=True)
class RunObject:
    """A JUnit object under runs/<date>/<run_id>/<command-slug>/ that the processor acts on."""

    key: str
    run_path: str  # "<date>/<run_id>/<command-slug>" (the key's folder below runs/)

    @property
    def report_prefix(self) -> str:
        return f"{REPORTS_PREFIX}{self.run_path}/"

    @property
    def manifest_key(self) -> str:
        return f"{RUNS_PREFIX}{self.run_path}/manifest.json"

    @property
    def command_slug(self) -> str:
        return self.run_path.rsplit("/", 1)[-1]

    @property
    def run_id(self) -> str | None:
        parts = self.run_path.split("/")
        return parts[-2] if len(parts) >= 2 else None


def classify_key(key: str) -> RunObject | str:
    """The RunObject for a key to act on, or the reason to ignore it.

    Only the runner's JUnit file, runs/<date>/<run_id>/<slug>/junit.xml, drives a report: any
    other .xml under runs/ (a sitemap.xml among generated docs) is ignored.
    """
    if len(key) > MAX_KEY_LENGTH:
        return "key longer than S3 allows"
    if not key.startswith(RUNS_PREFIX):
        return f"not under {RUNS_PREFIX}"
    if any(ord(char) < 32 or char == "\x7f" for char in key):
        return "unsafe key (control characters)"
    parts = key[len(RUNS_PREFIX) :].split("/")
    if len(parts) != 4 or parts[-1] != JUNIT_FILE:
        return f"not a run's JUnit report (expected runs/<date>/<run_id>/<command>/{JUNIT_FILE})"
    if any(part in ("", ".", "..") for part in parts):
        return "unsafe key (empty or dot path segments)"
    if not _DATE.match(parts[0]):
        return f"not a run folder: {parts[0][:40]!r} is not a YYYY-MM-DD date"
    return RunObject(key=key, run_path="/".join(parts[:3]))


def marker_key(bucket: str, key: str, version: str) -> str:
    """One marker per object version: a redelivered event finds it and publishes nothing."""
    digest = hashlib.sha256(f"{bucket}\0{key}\0{version}".encode()).hexdigest()
    return f"{MARKER_PREFIX}{digest}.json"


def run_metadata(
    run: RunObject, manifest: Any, project: str | None, environment: str | None
) -> RunMetadata:
    """Metadata from manifest.json when it is usable, else what the key itself says."""
    manifest = manifest if isinstance(manifest, dict) else {}
    status = _text(manifest.get("status"))
    return RunMetadata(
        run_id=_text(manifest.get("run_id")) or run.run_id,
        command=_text(manifest.get("command")) or run.command_slug,
        environment=environment,
        project=project,
        started_at=_text(manifest.get("started_at")),
        runner_status=status if status in RUNNER_STATUSES else None,
        exit_code=_integer(manifest.get("exit_code")),
        duration_seconds=plausible_seconds(manifest.get("duration_seconds")),
        app_version=_text(manifest.get("app_version")),
        shards=shard_rows(manifest.get("shards")),
        tests_not_run=_count(manifest.get("tests_not_run")),
    )


def shard_rows(value: Any) -> tuple[ShardRow, ...]:
    """The manifest's `shards` table (written by report_processor/merge.py), bounded."""
    if not isinstance(value, list):
        return ()
    rows = []
    for item in value[:_MAX_SHARD_ROWS]:
        if not isinstance(item, dict) or _count(item.get("index")) is None:
            continue
        status = _text(item.get("status"))
        rows.append(
            ShardRow(
                index=item["index"],
                status=status if status in RUNNER_STATUSES else "missing",
                tests=_count(item.get("tests")) or 0,
                seconds=plausible_seconds(item.get("seconds")),
                error=_text(item.get("error")),
            )
        )
    return tuple(rows)


def _count(value: Any) -> int | None:
    number = _integer(value)
    return number if number is not None and 0 <= number <= 10**9 else None


def metric_command(metadata: RunMetadata, run: RunObject, allowed: frozenset[str]) -> str:
    """The Command dimension: a command of the deployed allowlist, else "other".

    No S3 key or manifest field can create a new metric stream.
    """
    if metadata.command is not None and metadata.command in allowed:
        return metadata.command
    by_slug = {command_slug(command): command for command in sorted(allowed)}
    return by_slug.get(run.command_slug, OTHER_COMMAND)


def command_slug(command: str) -> str:
    """`scribe:generate` -> `scribe-generate`: the runner's folder name for a command.

    A copy of runner/artifacts.py's rule (this zip cannot import the runner); a contract test
    holds them equal.
    """
    return re.sub(r"[^a-z0-9._-]+", "-", command.lower()).strip("-") or "command"


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text: str = value.strip().encode("utf-8", "replace").decode("utf-8")
    return text[:_METADATA_LIMIT]
