"""The deployed pipeline, driven hop by hop against the emulator, with the real handlers.

moto stores what Terraform applied but cannot run a container Lambda (no Docker here), so it
neither fires the EventBridge schedules nor delivers S3 notifications. demo/delivery.py plays
exactly those two parts of AWS and nothing else, and demo/lambda_runtime.py runs each handler
in-process as the deployed function; every number reported was emitted by the report processor
itself.

Used by `make demo` (demo/__main__.py), tests/e2e and tests/ltr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from runner.layout import DOCS_PREFIX

from demo.delivery import (
    Delivery,
    MetricValue,
    NotificationDelivery,
    ScheduledJob,
    function_name_from_arn,
    scheduled_jobs,
)
from demo.lambda_runtime import REPO_ROOT, LocalRunnerSettings, describe_function, invoke_runner
from demo.services import MotoServer, PostgresServer
from demo.step_functions import (
    Execution,
    LambdaStandIn,
    execution_mode,
    merge_invoker,
    run_execution,
    runner_invoker,
)
from demo.terraform import TerraformError, TerraformWorkspace
from modules.config import StackConfig, load_config

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# --------------------------------------------------------------------------- the nightly run


def store_database_secret(emulator: MotoServer, secret_arn: str, secret_json: str) -> None:
    """Give the secret the stack references (config database.secret_arn) a value pointing at the
    local PostgreSQL. In AWS it exists before the stack (RDS manages it); moto resolves a full ARN
    by the name after `secret:`, so that name is what we create."""
    name = secret_arn.split(":secret:", 1)[1]
    secrets = emulator.client("secretsmanager")
    secrets.create_secret(Name=name, SecretString=secret_json)
    # Read back through the ARN the runner will use, so a mismatch fails here, not in PHP.
    secrets.get_secret_value(SecretId=secret_arn)


@dataclass
class JobOutcome:
    job: ScheduledJob
    response: dict
    deliveries: list[Delivery]
    seconds: float

    @property
    def metrics(self) -> list[MetricValue]:
        return [metric for delivery in self.deliveries for metric in delivery.metrics]

    @property
    def report_prefixes(self) -> list[str]:
        prefixes = []
        for delivery in self.deliveries:
            results = (delivery.response or {}).get("results", [])
            prefixes += [r["report_prefix"] for r in results if r.get("report_prefix")]
        return prefixes


@dataclass
class NightlyResult:
    bucket: str
    outcomes: list[JobOutcome]
    not_run: list[ScheduledJob]
    keys: list[str]

    @property
    def metrics(self) -> list[MetricValue]:
        return [metric for outcome in self.outcomes for metric in outcome.metrics]

    @property
    def docs_keys(self) -> list[str]:
        return [key for key in self.keys if key.startswith(DOCS_PREFIX)]

    @property
    def errors(self) -> list[str]:
        return [
            f"{delivery.function} on {delivery.key}: {delivery.error}"
            for outcome in self.outcomes
            for delivery in outcome.deliveries
            if delivery.error
        ]


def run_nightly_jobs(
    emulator: MotoServer,
    runner_function: str,
    bucket: str,
    local: LocalRunnerSettings | None = None,
    progress: Progress = _quiet,
    log: TextIO | None = None,
) -> NightlyResult:
    """Run every enabled schedule's Lambda targets, in order, as EventBridge would fire them,
    then deliver the S3 notifications their uploads cause."""
    local = local or LocalRunnerSettings()
    jobs, not_run = scheduled_jobs(emulator.client("events"))
    notifications = NotificationDelivery(emulator, bucket, log)
    outcomes = []
    for job in jobs:
        if function_name_from_arn(job.target_arn) != runner_function:
            not_run.append(job)  # a Lambda target that is not this stack's runner
            continue
        progress(f"rule {job.rule} -> {job.target_id}: runner event {json.dumps(job.event)}")
        outcomes.append(
            _run_job(emulator, runner_function, job, local, notifications, progress, log)
        )
    keys = sorted(obj.key for obj in notifications.seen.values())
    return NightlyResult(bucket, outcomes, not_run, keys)


def run_on_demand(
    emulator: MotoServer,
    runner_function: str,
    bucket: str,
    event: dict,
    local: LocalRunnerSettings,
    progress: Progress = _quiet,
    log: TextIO | None = None,
) -> JobOutcome:
    """One run started by hand (`ltr run test` sends this event with an async Invoke)."""
    function = describe_function(emulator.client("lambda"), runner_function)
    job = ScheduledJob("ltr run (on demand)", "-", str(event.get("command")), function.arn, event)
    changed = ", ".join(f"{name}={value}" for name, value in sorted(local.env.items()))
    progress(f"on demand (ltr run): runner event {json.dumps(event)}; with {changed or 'nothing'}")
    notifications = NotificationDelivery(emulator, bucket, log)
    return _run_job(emulator, runner_function, job, local, notifications, progress, log)


def _run_job(
    emulator: MotoServer,
    runner_function: str,
    job: ScheduledJob,
    local: LocalRunnerSettings,
    notifications: NotificationDelivery,
    progress: Progress,
    log: TextIO | None,
) -> JobOutcome:
    # Read per job, as each invocation would see the function's configuration then.
    function = describe_function(emulator.client("lambda"), runner_function)
    started = time.monotonic()
    response = invoke_runner(emulator, function, job.event, local, log)
    deliveries = notifications.deliver()
    outcome = JobOutcome(job, response, deliveries, time.monotonic() - started)
    progress(
        f"  runner: {response.get('status')} (exit {response.get('exit_code')}) in "
        f"{outcome.seconds:.1f}s; {len(deliveries)} S3 notification(s) delivered"
    )
    return outcome


# --------------------------------------------------------------------------- sharded runs


@dataclass
class ShardedOutcome:
    job: ScheduledJob
    execution: Execution
    deliveries: list[Delivery]
    invocations: list  # demo.step_functions.Invocation, in order

    @property
    def metrics(self) -> list[MetricValue]:
        return [metric for delivery in self.deliveries for metric in delivery.metrics]

    @property
    def report_prefixes(self) -> list[str]:
        return [
            result["report_prefix"]
            for delivery in self.deliveries
            for result in (delivery.response or {}).get("results", [])
            if result.get("outcome") == "processed"
        ]

    def seconds(self, action: str) -> float:
        """Time the handlers took for one kind of invocation: plan, shard or merge."""
        return sum(i.seconds for i in self.invocations if _action(i.payload) == action)


def _action(payload: object) -> str:
    if not isinstance(payload, dict):
        return "?"
    if payload.get("action") in ("plan", "merge"):
        return str(payload["action"])
    return "shard" if "shard" in payload else "run"


def run_sharded_jobs(
    emulator: MotoServer,
    stand_in: LambdaStandIn,
    config: StackConfig,
    nightly: NightlyResult,
    local: LocalRunnerSettings | None = None,
    progress: Progress = _quiet,
    log: TextIO | None = None,
) -> list[ShardedOutcome]:
    """Start each scheduled sharded run as EventBridge would (the deployed target's input, an
    execution named like EventBridge names them), let the emulator execute the deployed state
    machine, then deliver the S3 notifications of the merged report."""
    names = config.names
    jobs = [job for job in nightly.not_run if ":stateMachine:" in job.target_arn]
    if not jobs:
        return []
    lambda_client = emulator.client("lambda")
    runner = describe_function(lambda_client, names.runner_function)
    merge = describe_function(lambda_client, names.merge_function)
    printed: list[str] = []
    stand_in.register(names.merge_function, merge_invoker(emulator, merge, printed, log))
    # The deployed runner's handler for every event: the plan and each shard.
    stand_in.register(names.runner_function, runner_invoker(emulator, runner, local, log))
    outcomes = []
    for job in jobs:
        nightly.not_run.remove(job)
        notifications = NotificationDelivery(emulator, nightly.bucket, log)
        before = len(stand_in.invocations)
        name = str(uuid.uuid4())  # EventBridge names the executions it starts
        progress(f"rule {job.rule} -> {job.target_id}: execution {name} {json.dumps(job.event)}")
        execution = run_execution(emulator, job.target_arn, name, job.event)
        deliveries = notifications.deliver()
        outcome = ShardedOutcome(job, execution, deliveries, stand_in.invocations[before:])
        outcomes.append(outcome)
        shards = sum(1 for i in outcome.invocations if _action(i.payload) == "shard")
        progress(
            f"  state machine: {execution.status} in {execution.seconds:.1f}s "
            f"({shards} shard invocations); merge: {json.dumps(execution.output)[:200]}"
        )
    return outcomes


def read_text(emulator: MotoServer, bucket: str, key: str) -> str:
    body = emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    return body.read().decode("utf-8")


# --------------------------------------------------------------------------- synth and deploy


class PipelineError(RuntimeError):
    """A step of the pipeline failed; the message names the step and where its log is."""


@dataclass
class Synthesis:
    """`python main.py` running in the background (cdktf synth takes ~40 s here), so the
    emulator and the database can start meanwhile."""

    process: subprocess.Popen[bytes]
    out_dir: Path
    log_path: Path
    stack_name: str

    @classmethod
    def start(cls, config_path: Path, out_dir: Path, stack_name: str) -> Synthesis:
        out_dir.mkdir(parents=True, exist_ok=True)
        log_path = out_dir / "synth.log"
        env = {
            **os.environ,
            "LTR_CONFIG": str(config_path),
            "CDKTF_OUTDIR": str(out_dir),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        }
        env.pop("LTR_ENV", None)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(REPO_ROOT / "main.py")],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return cls(process, out_dir, log_path, stack_name)

    def wait(self, timeout: float = 600) -> Path:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise PipelineError(f"synth took over {timeout:.0f}s; log: {self.log_path}") from None
        stack_dir = self.out_dir / "stacks" / self.stack_name
        if code != 0 or not (stack_dir / "cdk.tf.json").is_file():
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
            raise PipelineError(f"synth failed (exit {code}); log: {self.log_path}\n{tail}")
        return stack_dir

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def deploy(
    stack_dir: Path, work_dir: Path, emulator: MotoServer, stand_in: LambdaStandIn | None = None
) -> TerraformWorkspace:
    """`terraform init` + `apply` of the synthesized stack against the emulator (demo/terraform.py
    keeps the emulator settings in an override file of its private copy). With a Lambda
    stand-in, Step Functions calls go through it: moto 5.2.5 lacks ValidateStateMachineDefinition
    and ListStateMachineVersions, which the AWS provider calls (the stand-in answers those two,
    everything else reaches moto)."""
    try:
        workspace = TerraformWorkspace.prepare(stack_dir, work_dir)
        endpoints = {"sfn": stand_in.url} if stand_in is not None else None
        workspace.use_emulator(emulator.endpoint_url, service_endpoints=endpoints)
        workspace.init()
        workspace.apply()
    except TerraformError as error:
        raise PipelineError(f"terraform: {error}") from None
    return workspace


@dataclass
class EmulatedStack:
    """A stack being prepared for the emulator: its synth is running in the background.

    The stack is synthesized from the user's config unchanged; the network it expects to exist
    (VPC, subnets, route tables, the database's security group) is created in the emulator at
    deploy time by demo/terraform.py, which maps the config's ids to the emulator's."""

    config: StackConfig
    config_path: Path
    emulator: MotoServer
    synthesis: Synthesis

    @classmethod
    def start(cls, moto: MotoServer, config_path: Path, work_dir: Path) -> EmulatedStack:
        config = load_config(config_path)
        emulator = moto.in_region(config.region)
        synthesis = Synthesis.start(config_path, work_dir / "cdktf.out", config.names.stack)
        return cls(config, config_path, emulator, synthesis)

    def stop(self) -> None:
        self.synthesis.stop()


@dataclass(frozen=True)
class PolicyWorkaround:
    bucket: str
    deployed: dict  # the bucket policy as applied
    removed: tuple[dict, ...]  # statements the emulator cannot evaluate


def relax_conditional_bucket_policy(emulator: MotoServer, bucket: str) -> PolicyWorkaround:
    """moto 5.2.5 evaluates no policy condition keys (S3 passes it no request context) and
    treats a statement whose condition it cannot confirm as a DENY, whatever its Effect
    (moto/iam/access_control.py, IAMPolicyStatement.is_action_permitted). So the standard
    TLS-only statement (Deny when aws:SecureTransport is false) would refuse every request, over
    HTTP or HTTPS alike. Real S3 evaluates it; in the emulator only the statements with a
    Condition are taken out, after the deployed policy has been read back and kept for checks."""
    s3 = emulator.client("s3")
    deployed = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    statements = deployed.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    removed = tuple(st for st in statements if "Condition" in st)
    kept = [st for st in statements if "Condition" not in st]
    if kept:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({**deployed, "Statement": kept}))
    elif removed:
        s3.delete_bucket_policy(Bucket=bucket)
    return PolicyWorkaround(bucket, deployed, removed)


@dataclass
class PipelineRun:
    config: StackConfig
    emulator: MotoServer
    stack_dir: Path
    resources: list[str]
    policy_workaround: PolicyWorkaround
    nightly: NightlyResult
    timings: dict[str, float]
    # The run started by hand before the nightly jobs (`make demo`'s history story), if any.
    on_demand: JobOutcome | None = None
    sharded: list[ShardedOutcome] = field(default_factory=list)

    @property
    def bucket(self) -> str:
        return self.nightly.bucket

    def text(self, key: str) -> str:
        return read_text(self.emulator, self.bucket, key)


def run_pipeline(
    stack: EmulatedStack,
    postgres: PostgresServer,
    work_dir: Path,
    step: Progress = _quiet,
    detail: Progress = _quiet,
    database_name: str = "ltr_demo",
    log: TextIO | None = None,
    on_demand_first: LocalRunnerSettings | None = None,
    stand_in: LambdaStandIn | None = None,
) -> PipelineRun:
    """Synthesized stack -> emulator -> nightly jobs through the runner -> S3 notifications to
    the report processor."""
    config, emulator = stack.config, stack.emulator
    timings: dict[str, float] = {}
    stack_dir = _wait_for_synthesis(stack, step, detail, timings)
    resources, workaround = _apply(stack, stack_dir, work_dir, stand_in, step, detail, timings)
    _store_secret(stack, postgres, database_name, step, detail)
    on_demand, nightly = _run_nightly(stack, on_demand_first, step, detail, log, timings)
    sharded: list[ShardedOutcome] = []
    if stand_in is not None:
        started = time.monotonic()
        step("running the sharded nightly run: the emulator executes the deployed state machine")
        sharded = run_sharded_jobs(emulator, stand_in, config, nightly, progress=detail, log=log)
        timings["sharded"] = time.monotonic() - started
    return PipelineRun(
        config,
        emulator,
        stack_dir,
        resources,
        workaround,
        nightly,
        timings,
        on_demand=on_demand,
        sharded=sharded,
    )


def _wait_for_synthesis(
    stack: EmulatedStack, step: Progress, detail: Progress, timings: dict[str, float]
) -> Path:
    started = time.monotonic()
    step("waiting for the synthesized stack")
    stack_dir = stack.synthesis.wait()
    timings["synth_wait"] = time.monotonic() - started
    detail(f"synthesized {stack_dir / 'cdk.tf.json'} (waited {timings['synth_wait']:.0f}s)")
    return stack_dir


def _apply(
    stack: EmulatedStack,
    stack_dir: Path,
    work_dir: Path,
    stand_in: LambdaStandIn | None,
    step: Progress,
    detail: Progress,
    timings: dict[str, float],
) -> tuple[list[str], PolicyWorkaround]:
    """terraform apply in the emulator, then the emulator-only bucket policy workaround."""
    emulator = stack.emulator
    started = time.monotonic()
    step(f"terraform init + apply against the emulator ({emulator.endpoint_url})")
    if stand_in is not None:
        # Before anything is created: moto keeps executable state machines in another backend.
        execution_mode(emulator)
    workspace = deploy(stack_dir, work_dir / "terraform", emulator, stand_in)
    resources = workspace.state_resources()
    timings["apply"] = time.monotonic() - started
    for configured, emulated in workspace.emulated_ids.items():
        detail(f"existing network: {configured} -> {emulated} (created in the emulator)")
    detail(f"applied {len(resources)} resources in {timings['apply']:.0f}s")
    workaround = relax_conditional_bucket_policy(emulator, stack.config.names.results_bucket)
    for statement in workaround.removed:
        detail(
            f"emulator limit: bucket policy statement {statement.get('Sid', '?')!r} has a "
            "Condition moto cannot evaluate (it would deny every request); removed in the "
            "emulator only"
        )
    return resources, workaround


def _store_secret(
    stack: EmulatedStack,
    postgres: PostgresServer,
    database_name: str,
    step: Progress,
    detail: Progress,
) -> None:
    config = stack.config
    step("storing the database secret the stack references")
    credentials = postgres.create_database(database_name)
    store_database_secret(stack.emulator, config.database.secret_arn, credentials.as_secret_json())
    detail(
        f"{config.database.secret_arn} -> PostgreSQL "
        f"{credentials.host}:{credentials.port}/{credentials.dbname}"
    )


def _run_nightly(
    stack: EmulatedStack,
    on_demand_first: LocalRunnerSettings | None,
    step: Progress,
    detail: Progress,
    log: TextIO | None,
    timings: dict[str, float],
) -> tuple[JobOutcome | None, NightlyResult]:
    """The run started by hand first (if asked), then the nightly jobs the rules define."""
    emulator, names = stack.emulator, stack.config.names
    started = time.monotonic()
    step("running the nightly jobs as the deployed EventBridge rules define them")
    on_demand = None
    if on_demand_first is not None:
        event = {"command": "test", "args": []}
        on_demand = run_on_demand(
            emulator, names.runner_function, names.results_bucket, event, on_demand_first,
            detail, log,
        )  # fmt: skip
    nightly = run_nightly_jobs(
        emulator, names.runner_function, names.results_bucket, progress=detail, log=log
    )
    timings["nightly"] = time.monotonic() - started
    return on_demand, nightly
