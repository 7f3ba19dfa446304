"""The runner's own per-command argument rules, so `ltr run` refuses exactly what the runner
would refuse, before anything starts (the runner checks again: it trusts no caller)."""

from __future__ import annotations

from collections.abc import Sequence

from runner.commands import spec_for, validate_args


def runner_argument_check(command: str, args: Sequence[str]) -> None:
    validate_args(spec_for(command), list(args))
