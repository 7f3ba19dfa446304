"""The run request as it arrives (Lambda event, EventBridge input, CLI), checked at the edge."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .commands import ArgumentError, spec_for, validate_args
from .layout import InvalidRunId, validate_run_id

MAX_EVENT_BYTES = 16 * 1024
_ALLOWED_KEYS = frozenset({"command", "args", "run_id"})


class RejectedInput(ValueError):
    """The request cannot run; the message names the bad input and the fix."""


@dataclass(frozen=True)
class RunRequest:
    command: str
    args: tuple[str, ...]
    run_id: str
    run_id_given: bool


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


def parse_event(event: object, allowed: Sequence[str], now: datetime) -> RunRequest:
    """`{"command": "test", "args": ["--filter", "Integration"], "run_id": "optional"}`."""
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
    unknown = sorted(str(key) for key in event if key not in _ALLOWED_KEYS)
    if unknown:
        raise RejectedInput(
            f"unknown field(s) {', '.join(unknown)}; accepted: command, args, run_id"
        )
    return parse_request(event.get("command"), event.get("args"), event.get("run_id"), allowed, now)
