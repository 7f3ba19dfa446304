"""durations.json: median seconds per test class over recent runs, for the sharding planner.

The contract with the runner's planner (issue 13; runner/layout.py `history_durations_key`):

    {"version": 1, "classes": {"Tests\\Feature\\UserTest": 1.25, ...}, "runs": <runs used>,
     "updated_at": "<iso>", "newest_run_key": "<run key of the newest run used>"}

`newest_run_key` is an addition readers may ignore: it keeps a late report (an earlier run
arriving after a newer one) from replacing durations computed from newer runs. Each run's own
class seconds are stored beside it (`runs/<run-key>/classes.json`) so the median needs no pass
over any rows object. Runs that failed wholesale (an outage: every test fails fast) are left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from statistics import median
from typing import Any

from report_processor.case_fields import plausible_seconds
from report_processor.history.records import iso

DURATIONS_VERSION = 1
CLASSES_VERSION = 1
MAX_CLASS_NAME = 500


def classes_document(class_seconds: Mapping[str, float]) -> bytes:
    classes = {name: round(seconds, 3) for name, seconds in class_seconds.items()}
    return json.dumps(
        {"version": CLASSES_VERSION, "classes": classes}, sort_keys=True, separators=(",", ":")
    ).encode()


def parse_classes(document: Any) -> dict[str, float]:
    """Seconds per class from an untrusted classes.json (junk entries dropped)."""
    raw = document.get("classes") if isinstance(document, dict) else None
    if not isinstance(raw, dict):
        return {}
    return {
        name: seconds
        for name, value in raw.items()
        if isinstance(name, str)
        and 0 < len(name) <= MAX_CLASS_NAME
        and (seconds := plausible_seconds(value)) is not None
    }


def durations_document(
    runs: Sequence[Mapping[str, float]], newest_run_key: str, now: datetime
) -> dict[str, Any]:
    """Per class, the median of its seconds in the runs where it ran."""
    samples: dict[str, list[float]] = {}
    for run in runs:
        for name, seconds in run.items():
            samples.setdefault(name, []).append(seconds)
    return {
        "version": DURATIONS_VERSION,
        "classes": {name: round(median(values), 3) for name, values in sorted(samples.items())},
        "runs": len(runs),
        "updated_at": iso(now),
        "newest_run_key": newest_run_key,
    }


def keep_newer(current: Any, proposed: dict[str, Any]) -> Any:
    """The document to write: ours, unless the stored one was made from a newer run."""
    if isinstance(current, dict):
        theirs = current.get("newest_run_key")
        if isinstance(theirs, str) and theirs > proposed["newest_run_key"]:
            return current
    return proposed
