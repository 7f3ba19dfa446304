"""`ltr run test --shards N`: the pure part. What a sharded run's execution history says (the
plan, the cap that applied, shards done, the slowest shard still running) and the wait loop.

The history is untrusted input like everything else read from AWS: every field is checked, and
text shown comes from it only through ltr's terminal-safe output.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ltr.core import LtrError, format_duration

MAX_EXECUTION_SECONDS = 86_400
# The runner's plan names the cap that applied; these are its reasons, in words.
_DONE_STATES = ("ShardDone", "ShardFailed")
_RUNNING = "RUNNING"


@dataclass(frozen=True)
class Cap:
    requested: int
    applied: int
    reason: str

    def text(self) -> str:
        if self.applied >= self.requested:
            return f"{self.applied} shards as requested"
        return f"{self.applied} of the {self.requested} shards requested ({self.reason})"


@dataclass(frozen=True)
class ShardProgress:
    status: str  # the execution's: RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED
    planned: int | None = None  # None until the plan is known
    cap: Cap | None = None
    done: int = 0
    failed: int = 0
    # (index, seconds running, estimated seconds) of the running shard estimated longest.
    slowest_running: tuple[int, float, float] | None = None
    output: Any = None
    estimates: Mapping[int, float] = field(default_factory=dict)
    # What a shard has before its deadline (the plan says; None on Fargate or unknown).
    shard_budget: float | None = None

    @property
    def finished(self) -> bool:
        return self.status != _RUNNING


def config_cap(requested: int, max_shards: int, concurrency: int) -> str | None:
    """What the deployed config alone says about N, before anything starts (the runner may cap
    lower: reserved concurrency, the database connection budget, the number of classes)."""
    notes = []
    if requested > max_shards:
        notes.append(f"runner.max_shards caps {requested} shards at {max_shards}")
    if concurrency < min(requested, max_shards):
        notes.append(f"at most {concurrency} run at once (runner.reserved_concurrency)")
    return "; ".join(notes) or None


def shard_progress(
    status: str, events: Sequence[Mapping[str, Any]], now: datetime
) -> ShardProgress:
    """Fold an execution's history (get_execution_history events, oldest first)."""
    plan: Mapping[str, Any] | None = None
    started: dict[int, datetime] = {}
    ended: set[int] = set()
    failed = 0
    output: Any = None
    for event in events:
        kind = event.get("type")
        if kind == "TaskSucceeded" and plan is None:
            plan = _planned(event.get("taskSucceededEventDetails"))
        elif kind == "MapIterationStarted":
            index = _int(_details(event, "mapIterationStartedEventDetails").get("index"))
            moment = event.get("timestamp")
            if index is not None and isinstance(moment, datetime):
                started[index] = moment
        elif kind == "PassStateEntered":
            entered = _details(event, "stateEnteredEventDetails")
            if entered.get("name") in _DONE_STATES:
                index = _int(_json(entered.get("input")).get("index"))
                if index is not None and index not in ended:
                    ended.add(index)
                    failed += entered.get("name") == "ShardFailed"
        elif kind == "ExecutionSucceeded":
            output = _json(_details(event, "executionSucceededEventDetails").get("output"))
    estimates = _estimates(plan)
    running = [
        (index, (now - moment).total_seconds(), estimates.get(index, 0.0))
        for index, moment in started.items()
        if index not in ended
    ]
    slowest = max(running, key=lambda item: (item[2], item[1]), default=None)
    return ShardProgress(
        status=status,
        planned=_int(plan.get("shard_count")) if plan else None,
        cap=_cap(plan),
        done=len(ended),
        failed=failed,
        slowest_running=slowest,
        output=output,
        estimates=estimates,
        shard_budget=_seconds(plan.get("shard_budget_seconds")) if plan else None,
    )


def budget_warnings(progress: ShardProgress) -> list[str]:
    """One line per shard whose estimate from history is over what a shard has before its
    deadline: it will be stopped there, and its remaining tests reported as not run."""
    budget = progress.shard_budget
    if budget is None:
        return []
    return [
        f"warning: shard {index} is estimated at {format_duration(estimate)} from history, over "
        f"the {format_duration(budget)} a shard has before its deadline: it will be stopped "
        "there and its remaining tests reported as not run (plan more shards, or run the "
        "command unsharded on Fargate)"
        for index, estimate in sorted(progress.estimates.items())
        if estimate > budget
    ]


def progress_text(progress: ShardProgress, run_id: str, elapsed: float) -> str:
    head = f"run {run_id}: "
    if progress.finished:
        return head + f"execution {progress.status.lower()} ({format_duration(elapsed)})"
    if progress.planned is None:
        return head + f"planning ({format_duration(elapsed)})"
    text = f"{progress.done}/{progress.planned} shards done"
    if progress.failed:
        text += f" ({progress.failed} failed)"
    if progress.slowest_running is not None:
        index, seconds, estimate = progress.slowest_running
        guess = f", estimated {format_duration(estimate)}" if estimate else ""
        text += f"; slowest still running: shard {index} ({format_duration(seconds)}{guess})"
    return head + text + f" ({format_duration(elapsed)})"


@dataclass(frozen=True)
class ExecutionWait:
    progress: ShardProgress
    elapsed: float


def wait_for_execution(
    poll: Callable[[], ShardProgress],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    timeout: float,
    interval: float,
    on_progress: Callable[[ShardProgress, float], None],
) -> ExecutionWait:
    """Poll until the execution ends or `timeout` seconds passed (the last poll at or after the
    deadline, as ltr.core.wait_for_run does)."""
    start = clock()
    while True:
        progress = poll()
        elapsed = clock() - start
        on_progress(progress, elapsed)
        if progress.finished or elapsed >= timeout:
            return ExecutionWait(progress, elapsed)
        sleep(max(0.0, min(interval, timeout - elapsed)))


def sharded_timeout(function_timeout: int, shards: int, concurrency: int, merge: int) -> float:
    """Long enough for the plan, the shards in waves of `concurrency`, and the merge."""
    if shards < 1 or concurrency < 1:
        raise LtrError("shards and concurrency must be at least 1")
    waves = -(-shards // concurrency)
    return min(MAX_EXECUTION_SECONDS, function_timeout * (waves + 1) + merge)


def _planned(details: Any) -> Mapping[str, Any] | None:
    payload = _json(details.get("output") if isinstance(details, Mapping) else None).get("Payload")
    if isinstance(payload, Mapping) and payload.get("status") == "planned":
        return payload
    return None


def _cap(plan: Mapping[str, Any] | None) -> Cap | None:
    raw = plan.get("cap") if plan else None
    if not isinstance(raw, Mapping):
        return None
    requested, applied = _int(raw.get("requested")), _int(raw.get("applied"))
    reason = raw.get("reason")
    if requested is None or applied is None:
        return None
    return Cap(requested, applied, str(reason)[:200] if isinstance(reason, str) else "no reason")


def _estimates(plan: Mapping[str, Any] | None) -> dict[int, float]:
    shards = plan.get("shards") if plan else None
    found: dict[int, float] = {}
    for shard in shards if isinstance(shards, list) else []:
        index = _int(shard.get("index")) if isinstance(shard, Mapping) else None
        if index is None:
            continue
        found[index] = _seconds(shard.get("estimated_seconds"), 1e7) or 0.0
    return found


def _seconds(value: Any, below: float = MAX_EXECUTION_SECONDS) -> float | None:
    """A positive JSON number of seconds under `below`, else None (compared before float():
    a 400-digit integer is junk, not an OverflowError)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if number and 0 < value < below else None


def _details(event: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    details = event.get(name)
    return details if isinstance(details, Mapping) else {}


def _json(text: Any) -> Mapping[str, Any]:
    """A JSON object from text, else an empty one (whatever the text held)."""
    if not isinstance(text, str):
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
