"""The run request as it arrives (Lambda event, EventBridge input, CLI), checked at the edge."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .commands import ArgumentError, spec_for, validate_args
from .layout import InvalidRunId, RunLocation, command_slug, parse_plan_key, validate_run_id
from .sharding.plan import MAX_SHARDS_PER_RUN

MAX_EVENT_BYTES = 16 * 1024
MAX_KEY_CHARS = 1024
_ALLOWED_KEYS = frozenset({"command", "args", "run_id"})
_PLAN_KEYS = frozenset({"action", "command", "args", "run_id", "shards"})
_SHARD_KEYS = frozenset({"command", "run_id", "shard"})
_SHARD_FIELDS = frozenset({"index", "count", "plan_key"})
# Only PHPUnit suites can be split: the plan lists them with PHPUnit's own listing.
SHARDABLE_COMMANDS = frozenset({"test"})


class RejectedInput(ValueError):
    """The request cannot run; the message names the bad input and the fix."""


@dataclass(frozen=True)
class RunRequest:
    command: str
    args: tuple[str, ...]
    run_id: str
    run_id_given: bool


@dataclass(frozen=True)
class PlanRequest:
    """`{"action": "plan", "command": "test", "run_id": R, "shards": N, "args": [...]}`."""

    command: str
    args: tuple[str, ...]
    run_id: str
    run_id_given: bool
    shards: int


@dataclass(frozen=True)
class ShardRequest:
    """`{"command": "test", "run_id": R, "shard": {"index": i, "count": n, "plan_key": K}}`;
    `location` is the run's, taken from K (which must be that run's plan)."""

    command: str
    run_id: str
    index: int
    count: int
    plan_key: str
    location: RunLocation


def new_run_id(now: datetime) -> str:
    """Sortable by time, unique across concurrent runs."""
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def parse_request(
    command: object, args: object, run_id: object, allowed: Sequence[str], now: datetime
) -> RunRequest:
    if not isinstance(command, str) or not command:
        raise RejectedInput('"command" is required: one of ' + ", ".join(allowed))
    if command not in allowed:
        raise RejectedInput(
            f"command {command[:80]!r} is not allowed; allowed: {', '.join(allowed)} "
            "(set RUNNER_COMMANDS to change the list)"
        )
    if args is None:
        args = []
    if not isinstance(args, list | tuple):
        raise RejectedInput(f'"args" must be a list of strings, got {type(args).__name__}')
    try:
        normal_args = validate_args(spec_for(command), list(args))
    except ArgumentError as error:
        raise RejectedInput(str(error)) from None
    if run_id is None:
        return RunRequest(command, normal_args, new_run_id(now), run_id_given=False)
    try:
        return RunRequest(command, normal_args, validate_run_id(run_id), run_id_given=True)
    except InvalidRunId as error:
        raise RejectedInput(str(error)) from None


def parse_event(
    event: object, allowed: Sequence[str], now: datetime
) -> RunRequest | PlanRequest | ShardRequest:
    """`{"command": "test", "args": ["--filter", "Integration"], "run_id": "optional"}`, or a
    sharded run's plan or shard event."""
    if not isinstance(event, Mapping):
        raise RejectedInput(
            f"the event must be a JSON object like "
            f'{{"command": "test", "args": []}}, got {type(event).__name__}'
        )
    try:
        size = len(json.dumps(event, default=str).encode())
    except (TypeError, ValueError):
        raise RejectedInput("the event is not serialisable JSON") from None
    if size > MAX_EVENT_BYTES:
        raise RejectedInput(f"the event is {size} bytes; at most {MAX_EVENT_BYTES}")
    if "action" in event:
        return parse_plan_event(event, allowed, now)
    if "shard" in event:
        return parse_shard_event(event, allowed)
    unknown = sorted(str(key) for key in event if key not in _ALLOWED_KEYS)
    if unknown:
        raise RejectedInput(
            f"unknown field(s) {', '.join(unknown)}; accepted: command, args, run_id"
        )
    return parse_request(event.get("command"), event.get("args"), event.get("run_id"), allowed, now)


def _shardable(command: object, allowed: Sequence[str]) -> str:
    if command not in SHARDABLE_COMMANDS:
        raise RejectedInput(
            f"only {', '.join(sorted(SHARDABLE_COMMANDS))} can be sharded, got "
            f"{str(command)[:80]!r}"
        )
    assert isinstance(command, str)
    if command not in allowed:
        raise RejectedInput(f"command {command!r} is not allowed (RUNNER_COMMANDS)")
    return command


def _whole(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RejectedInput(f"{what} must be a whole number from {low} to {high}, got {value!r}")
    return value


def parse_plan_event(
    event: Mapping[str, object], allowed: Sequence[str], now: datetime
) -> PlanRequest:
    unknown = sorted(str(key) for key in event if key not in _PLAN_KEYS)
    if unknown:
        raise RejectedInput(
            f"unknown field(s) {', '.join(unknown)} in a plan event; accepted: "
            + ", ".join(sorted(_PLAN_KEYS))
        )
    if event.get("action") != "plan":
        raise RejectedInput(
            f"unknown action {str(event.get('action'))[:40]!r}; the runner plans ('plan')"
        )
    command = _shardable(event.get("command"), allowed)
    shards = _whole(event.get("shards"), '"shards"', 1, MAX_SHARDS_PER_RUN)
    run = parse_request(command, event.get("args"), event.get("run_id"), allowed, now)
    return PlanRequest(run.command, run.args, run.run_id, run.run_id_given, shards)


def parse_shard_event(event: Mapping[str, object], allowed: Sequence[str]) -> ShardRequest:
    unknown = sorted(str(key) for key in event if key not in _SHARD_KEYS)
    if unknown:
        raise RejectedInput(
            f"unknown field(s) {', '.join(unknown)} in a shard event; accepted: "
            + ", ".join(sorted(_SHARD_KEYS))
        )
    command = _shardable(event.get("command"), allowed)
    try:
        run_id = validate_run_id(event.get("run_id"))
    except InvalidRunId as error:
        raise RejectedInput(str(error)) from None
    shard = event.get("shard")
    if not isinstance(shard, Mapping) or set(shard) != _SHARD_FIELDS:
        raise RejectedInput('"shard" must be {"index": i, "count": n, "plan_key": K}')
    count = _whole(shard.get("count"), "shard.count", 1, MAX_SHARDS_PER_RUN)
    index = _whole(shard.get("index"), "shard.index", 0, count - 1)
    plan_key = shard.get("plan_key")
    location = (
        parse_plan_key(plan_key)
        if isinstance(plan_key, str) and len(plan_key) <= MAX_KEY_CHARS
        else None
    )
    if location is None or not isinstance(plan_key, str):
        raise RejectedInput(
            f"shard.plan_key {str(plan_key)[:120]!r} is not a plan key "
            "(runs/<date>/<run_id>/<command>/plan.json)"
        )
    if location.run_id != run_id or location.slug != command_slug(command):
        raise RejectedInput(
            f"shard.plan_key {plan_key[:120]!r} is not the plan of run {run_id!r} "
            f"({command}): a shard runs only its own run's plan"
        )
    return ShardRequest(command, run_id, index, count, plan_key, location)
