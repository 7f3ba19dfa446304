"""Command line for Fargate tasks and local runs: `python -m runner run COMMAND [ARGS...]`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any

from .config import ConfigError, RunnerConfig
from .events import RejectedInput, parse_request, parse_shard_event
from .shell import configure_logging, load_shard, misconfigured, rejected, run, utc_now

EXIT_CODES = {"passed": 0, "failed": 1, "rejected": 2, "error": 3, "timed_out": 4}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m runner", description=__doc__)
    commands = top.add_subparsers(dest="action", required=True)
    run_parser = commands.add_parser(
        "run",
        help="run one allowlisted artisan command and publish its results",
        description="Options of the runner come before COMMAND; everything after it goes "
        "to artisan (after the same checks as a Lambda event). Exit code: 0 passed, "
        "1 failed, 2 rejected, 3 error, 4 timed out.",
    )
    run_parser.add_argument("--run-id", help="reuse a run id (default: a new one)")
    run_parser.add_argument(
        "--timeout",
        type=float,
        help="stop the command after this many seconds (default: RUNNER_TIMEOUT_SECONDS, "
        "else no limit)",
    )
    run_parser.add_argument(
        "--json", action="store_true", help="print the result as JSON on the last line"
    )
    run_parser.add_argument("command", help="an artisan command from RUNNER_COMMANDS")
    run_parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    shard_parser = commands.add_parser(
        "shard",
        help="run one shard of a planned sharded run (docs/sharding.md)",
        description="The shard event's fields as options, checked the same way; for a shard "
        "too long for Lambda. Exit codes as for run.",
    )
    shard_parser.add_argument("--run-id", required=True)
    shard_parser.add_argument("--index", type=int, required=True, help="0-based")
    shard_parser.add_argument("--count", type=int, required=True)
    shard_parser.add_argument(
        "--plan-key", required=True, help="runs/<date>/<run_id>/test/plan.json"
    )
    shard_parser.add_argument("--timeout", type=float, help="as for run")
    shard_parser.add_argument("--json", action="store_true", help="as for run")
    shard_parser.add_argument("command", nargs="?", default="test")
    return top


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    configure_logging()
    try:
        config = RunnerConfig.from_env()
    except ConfigError as error:
        return _finish(misconfigured(str(error)), options.json)
    shard = None
    try:
        if options.action == "shard":
            event = {
                "command": options.command,
                "run_id": options.run_id,
                "shard": {"index": options.index, "count": options.count,
                          "plan_key": options.plan_key},
            }  # fmt: skip
            request, shard = load_shard(parse_shard_event(event, config.commands), config)
        else:
            request = parse_request(
                options.command, options.args, options.run_id, config.commands, utc_now()
            )
    except RejectedInput as error:
        return _finish(rejected(str(error)), options.json)
    timeout = options.timeout if options.timeout is not None else config.timeout_seconds
    deadline = time.monotonic() + timeout if timeout else None
    outcome = run(request, config, deadline, _stop_on_sigterm(), shard=shard)
    return _finish(outcome.response(), options.json)


def _stop_on_sigterm() -> threading.Event:
    """ECS stops a task with SIGTERM, then SIGKILL after its stop timeout: end the command
    and upload what it produced in between. As the container's first process (PID 1, where
    the kernel ignores a signal the process has no handler for) the handler is also what
    makes SIGTERM reach the runner at all."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    return stop


def _finish(response: dict[str, Any], as_json: bool) -> int:
    if as_json:
        sys.stdout.write("\n" + json.dumps(response) + "\n")
    else:
        where = response.get("results_uri") or response.get("local_results") or ""
        detail = response.get("message") or response.get("reason") or ""
        print(f"{response['status']} {where} {detail}".rstrip(), file=sys.stderr)
    sys.stdout.flush()
    return EXIT_CODES.get(response["status"], 3)
