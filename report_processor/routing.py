"""Pure decisions of the Lambda shell: which S3 keys to act on, where reports go, run metadata.

S3 keys and manifest fields are untrusted: they are checked here, before anything is read or
written, and nothing derived from them can point outside the `reports/` prefix.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from report_processor.model import RunMetadata

RUNS_PREFIX = "runs/"
REPORTS_PREFIX = "reports/"
LATEST_PREFIX = "reports/latest/"
MARKER_PREFIX = "reports/.processed/"
MAX_KEY_LENGTH = 1024
_COMMAND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$")
_METADATA_LIMIT = 200


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
    """The RunObject for a key to act on, or the reason to ignore it."""
    if len(key) > MAX_KEY_LENGTH:
        return "key longer than S3 allows"
    if not key.startswith(RUNS_PREFIX):
        return f"not under {RUNS_PREFIX}"
    if not key.lower().endswith(".xml"):
        return "not a JUnit .xml object"
    folder, _, filename = key[len(RUNS_PREFIX) :].rpartition("/")
    if not folder or not filename:
        return "no run folder (expected runs/<date>/<run_id>/<command>/junit.xml)"
    parts = folder.split("/")
    if any(part in ("", ".", "..") for part in parts) or any(
        ord(char) < 32 or char == "\x7f" for char in key
    ):
        return "unsafe key (empty, dot or control-character path segments)"
    return RunObject(key=key, run_path=folder)


def marker_key(bucket: str, key: str, version: str) -> str:
    """One marker per object version: a redelivered event finds it and publishes nothing."""
    digest = hashlib.sha256(f"{bucket}\0{key}\0{version}".encode()).hexdigest()
    return f"{MARKER_PREFIX}{digest}.json"


def run_metadata(
    run: RunObject, manifest: Any, project: str | None, environment: str | None
) -> RunMetadata:
    """Metadata from manifest.json when it is usable, else what the key itself says."""
    manifest = manifest if isinstance(manifest, dict) else {}
    return RunMetadata(
        run_id=_text(manifest.get("run_id")) or run.run_id,
        command=_text(manifest.get("command")) or run.command_slug,
        environment=environment,
        project=project,
        started_at=_text(manifest.get("started_at")),
    )


def metric_command(metadata: RunMetadata, run: RunObject) -> str:
    """A low-cardinality Command dimension: the command if it looks like one, else the slug."""
    for candidate in (metadata.command, run.command_slug):
        if candidate and _COMMAND.match(candidate):
            return candidate
    return "unknown"


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip().encode("utf-8", "replace").decode("utf-8")
    return value[:_METADATA_LIMIT]
