"""`make demo`: deploy the stack to a local AWS emulator, run the nightly jobs as the deployed
schedules define them, and show what the report processor made of them. No AWS account needed.

Everything started here is stopped on the way out, whatever happened.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from runner.layout import DOCS_PREFIX

from demo.delivery import MetricValue
from demo.history_story import (
    ON_DEMAND,
    RELEASE,
    SecondNight,
    history_part,
    notification_lines,
    run_second_night,
)
from demo.lambda_runtime import REPO_ROOT, lambda_environment
from demo.pipeline import EmulatedStack, PipelineError, PipelineRun, run_pipeline
from demo.step_functions import LambdaStandIn

if TYPE_CHECKING:
    from demo.services import MotoServer, PostgresServer
    from modules.config import StackConfig


class Steps:
    def __init__(self, total: int):
        self.total, self.number, self.started = total, 0, time.monotonic()

    def stamp(self) -> str:
        return f"[{time.monotonic() - self.started:6.1f}s]"

    def step(self, text: str) -> None:
        self.number += 1
        print(f"{self.stamp()} {self.number}/{self.total} {text}", flush=True)

    def detail(self, text: str) -> None:
        print(f"{self.stamp()}       {text}", flush=True)


def _metric_lines(metrics: list[MetricValue]) -> list[str]:
    by_dimensions: dict[tuple, list[MetricValue]] = defaultdict(list)
    for metric in metrics:
        key = (metric.namespace, tuple(sorted(metric.dimensions.items())))
        by_dimensions[key].append(metric)
    lines = []
    for (namespace, dimensions), values in by_dimensions.items():
        dims = ", ".join(f"{name}={value}" for name, value in dimensions)
        lines.append(f"  namespace {namespace}, dimensions {dims}:")
        for metric in values:
            lines.append(f"    {metric.name:<18} {metric.value:g} {metric.unit}")
    return lines


def report(run: PipelineRun) -> None:
    nightly = run.nightly
    test_outcomes = [o for o in nightly.outcomes if o.report_prefixes]
    for outcome in test_outcomes:
        for prefix in outcome.report_prefixes:
            print(f"\n===== s3://{run.bucket}/{prefix}summary.md " + "=" * 20)
            print(run.text(prefix + "summary.md").rstrip())
            print("=" * 60)
    print("\nRuns (manifest status, from S3):")
    for outcome in nightly.outcomes:
        response = outcome.response
        print(
            f"  {outcome.job.command:<22} {response.get('status'):<10} exit "
            f"{response.get('exit_code')}  {response.get('results_uri')}"
        )
    docs = nightly.docs_keys
    print(f"\nGenerated docs ({len(docs)} objects under s3://{run.bucket}/{DOCS_PREFIX}):")
    for key in docs[:12]:
        print(f"  s3://{run.bucket}/{key}")
    if len(docs) > 12:
        print(f"  ... and {len(docs) - 12} more")
    print("\nMetrics the report processor published (its Embedded Metric Format records):")
    print("\n".join(_metric_lines(nightly.metrics)) or "  none")
    if nightly.not_run:
        print("\nScheduled targets not run here (the emulator cannot start ECS tasks):")
        for job in nightly.not_run:
            print(f"  rule {job.rule} ({job.schedule}) -> {job.target_arn}: {job.event}")


def report_second_night(run: PipelineRun, second: SecondNight) -> None:
    """What changed since the first night: the summary's history part and the notification."""
    for outcome in second.nightly.outcomes:
        for prefix in outcome.report_prefixes:
            summary = json.loads(run.text(prefix + "summary.json"))
            print(f"\n===== s3://{run.bucket}/{prefix}summary.md (its history part) " + "=" * 8)
            print(history_part(run.text(prefix + "summary.md")))
            print("\n===== the notification " + "=" * 40)
            print("\n".join(notification_lines(second, summary)))
            print("=" * 60)
    print("\nMetrics of the second night (Embedded Metric Format records):")
    print("\n".join(_metric_lines(second.nightly.metrics)) or "  none")


def report_sharded(run: PipelineRun) -> None:
    """The sharded nightly run: what the state machine did and the merged report's shard table."""
    for outcome in run.sharded:
        execution = outcome.execution
        print(
            f"\nSharded run {execution.arn.rsplit(':', 1)[-1]} (rule {outcome.job.rule}): "
            f"execution {execution.status} in {execution.seconds:.1f}s; states: "
            + " -> ".join(dict.fromkeys(execution.states_entered()))
        )
        for failure in execution.failures():
            print(f"  {failure}")
        for prefix in outcome.report_prefixes:
            markdown = run.text(prefix + "summary.md")
            print(f"===== s3://{run.bucket}/{prefix}summary.md " + "=" * 20)
            print(markdown.split("\n## Slowest tests", 1)[0].rstrip())
            print("=" * 60)
        print(
            f"  handler time (the real handlers): plan {outcome.seconds('plan'):.2f}s, shards "
            f"{outcome.seconds('shard'):.2f}s (one at a time here), merge "
            f"{outcome.seconds('merge'):.2f}s; the emulator's state machine added "
            f"{execution.seconds - sum(i.seconds for i in outcome.invocations):.2f}s"
        )


def show_ltr(run: PipelineRun, config_path: Path) -> None:
    """The same results through the CLI users type, against the emulator."""
    from ltr.cli import main as ltr_main

    env = {**os.environ, **run.emulator.env}
    for argv in (["runs"], ["docs", "--expires", "900"]):
        print(f"\n$ ltr {' '.join(argv)}   # AWS_ENDPOINT_URL={run.emulator.endpoint_url}")
        out, err = io.StringIO(), io.StringIO()
        with lambda_environment(env):
            code = ltr_main([*argv, "--config", str(config_path)], out, err)
        print(out.getvalue().rstrip() or err.getvalue().rstrip())
        if code != 0:
            print(f"(ltr exited {code})")


def pipeline_problems(run: PipelineRun, second: SecondNight | None = None) -> list[str]:
    """What makes the demo fail: a run that could not complete (tests failing on purpose in the
    fixture app are results, not problems), a handler error, or no metrics at all."""
    problems = list(run.nightly.errors)
    outcomes = list(run.nightly.outcomes)
    if run.on_demand is not None:
        outcomes.append(run.on_demand)
        problems += [f"on demand: {d.key}: {d.error}" for d in run.on_demand.deliveries if d.error]
    if second is not None:
        problems += second.nightly.errors
        outcomes += second.nightly.outcomes
    for outcome in outcomes:
        status = outcome.response.get("status")
        if status not in ("passed", "failed"):
            problems.append(
                f"{outcome.job.command}: runner status {status}: "
                f"{outcome.response.get('message') or outcome.response.get('reason')}"
                f" {outcome.response.get('output_tail', '')[-300:]}"
            )
    if not run.nightly.metrics:
        problems.append("the report processor published no metrics")
    for sharded in run.sharded:
        if sharded.execution.status != "SUCCEEDED" or len(sharded.report_prefixes) != 1:
            problems.append(
                f"sharded run {sharded.execution.arn}: {sharded.execution.status}, "
                f"{len(sharded.report_prefixes)} report(s): {sharded.execution.failures()}"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)

    from demo.services import ServiceError
    from modules.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 2
    steps = Steps(total=11)
    work_dir = Path(tempfile.mkdtemp(prefix="ltr-demo-"))
    stack = None
    keep_work_dir = False
    try:
        with contextlib.ExitStack() as services:
            moto, stand_in = _start_emulator(services, config, steps)
            steps.step("synthesizing the stack in the background")
            stack = EmulatedStack.start(moto, args.config, work_dir)
            steps.detail(f"python main.py with {args.config}")
            postgres, log = _start_postgres(services, work_dir, steps)
            problems = _run_and_show(stack, postgres, work_dir, steps, log, stand_in)
            if problems:
                keep_work_dir = True
            steps.step("stopping the emulator and PostgreSQL")
        print(f"{steps.stamp()} done: everything it started is stopped", flush=True)
        return 1 if problems else 0
    except (PipelineError, ServiceError) as error:
        print(f"demo failed: {error}", file=sys.stderr)
        keep_work_dir = True
        return 1
    except Exception:  # noqa: BLE001 (a demo shows what broke, then still cleans up)
        _show_traceback(work_dir)
        keep_work_dir = True
        return 1
    except KeyboardInterrupt:
        print("demo interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    finally:
        _clean_up(stack, work_dir, keep=args.keep or keep_work_dir)


def _show_traceback(work_dir: Path) -> None:
    trace = work_dir / "demo-error.txt"
    trace.write_text(traceback.format_exc())
    last = traceback.format_exc().strip().splitlines()[-1]
    print(f"demo failed: {last} (traceback: {trace})", file=sys.stderr)


def _clean_up(stack: EmulatedStack | None, work_dir: Path, *, keep: bool) -> None:
    if stack is not None:
        stack.stop()
    if keep:
        print(f"work directory kept: {work_dir}")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument(
        "--config", type=Path, default=REPO_ROOT / "config" / "example.json", help="stack config"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args(argv)


def _start_emulator(
    services: contextlib.ExitStack, config: StackConfig, steps: Steps
) -> tuple[MotoServer, LambdaStandIn]:
    from demo.services import MotoServer

    steps.step("starting the AWS emulator (moto server)")
    # The state machine's Lambda invocations come back to this process (the handlers
    # run here, as for every other delivery the emulator cannot make).
    stand_in = LambdaStandIn()
    moto = services.enter_context(
        MotoServer.start(region=config.region, service_port=stand_in.port)
    )
    services.enter_context(stand_in.serving(moto))
    steps.detail(f"moto {moto.endpoint_url}; Lambda stand-in on port {stand_in.port}")
    return moto, stand_in


def _start_postgres(
    services: contextlib.ExitStack, work_dir: Path, steps: Steps
) -> tuple[PostgresServer, TextIO]:
    """PostgreSQL, and the file the functions log to."""
    from demo.services import PostgresServer

    steps.step("starting PostgreSQL")
    postgres = services.enter_context(PostgresServer.start())
    steps.detail(f"PostgreSQL {postgres.host}:{postgres.port}")
    log_path = work_dir / "functions.log"
    log = services.enter_context(log_path.open("w", encoding="utf-8"))
    # The handlers' own logging goes where Lambda would send it: here, a file.
    logging.basicConfig(stream=log, level=logging.INFO, force=True)
    steps.detail(f"the functions' output (their CloudWatch Logs) goes to {log_path}")
    return postgres, log


def _run_and_show(
    stack: EmulatedStack,
    postgres: PostgresServer,
    work_dir: Path,
    steps: Steps,
    log: TextIO,
    stand_in: LambdaStandIn,
) -> list[str]:
    """Both nights through the deployed stack, shown as they go; the problems found."""
    run = run_pipeline(
        stack, postgres, work_dir, steps.step, steps.detail, log=log,
        on_demand_first=ON_DEMAND, stand_in=stand_in,
    )  # fmt: skip
    steps.step("results of the first night")
    report(run)
    report_sharded(run)
    steps.step(f"the second night, after release {RELEASE}: the nightly jobs again")
    steps.detail(
        f"a release: the image now carries app {RELEASE} (APP_VERSION), whose change "
        "the fixture app plays with LTR_DEMO_SWITCHES=regression,fix"
    )
    second = run_second_night(run, steps.detail, log)
    report_second_night(run, second)
    show_ltr(run, stack.config_path)
    problems = pipeline_problems(run, second)
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return problems


if __name__ == "__main__":
    sys.exit(main())
