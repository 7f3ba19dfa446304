"""The deployed pipeline, driven hop by hop against the emulator, with the real handlers.

moto stores what Terraform applied but cannot run a container Lambda (no Docker here), so it
neither fires the EventBridge schedules nor delivers S3 notifications. This module plays exactly
those two parts of AWS and nothing else: every event it hands a handler is built from what the
emulator says was deployed (rule targets and their inputs, the bucket's notification
configuration, each function's environment and timeout), and every number it reports was emitted
by the report processor itself.

Used by `make demo` (demo/__main__.py), tests/e2e and tests/ltr.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote_plus

from runner.layout import DOCS_PREFIX

from demo.services import MotoServer
from modules.contract import RUNNER_IMAGE_HANDLER

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_APP = REPO_ROOT / "tests" / "laravel_app"
RUNNER_SOURCE = REPO_ROOT / "runner_image"
ACCOUNT_ID = "123456789012"  # moto's default account, the one in config/example.json

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# --------------------------------------------------------------------------- Lambda execution


@dataclass
class LambdaContext:
    """The parts of Lambda's context object the handlers use, with a real deadline."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    region: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


@dataclass(frozen=True)
class DeployedFunction:
    """A function as the emulator describes it after `terraform apply`."""

    name: str
    arn: str
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int
    package_type: str
    handler: str  # "module.function", from Handler (zip) or the image's command override

    def handler_module(self) -> str:
        module, _, function = self.handler.rpartition(".")
        if not module or function != "handler":
            raise RuntimeError(
                f"{self.name}: deployed handler {self.handler!r} is not module.handler"
            )
        return module


def describe_function(lambda_client, name: str) -> DeployedFunction:
    config = lambda_client.get_function_configuration(FunctionName=name)
    return DeployedFunction(
        name=config["FunctionName"],
        arn=config["FunctionArn"],
        environment=dict(config.get("Environment", {}).get("Variables", {})),
        timeout_seconds=int(config.get("Timeout", 3)),
        memory_mb=int(config.get("MemorySize", 128)),
        package_type=config.get("PackageType", "Zip"),
        handler=_deployed_handler(config),
    )


def _deployed_handler(config: Mapping[str, Any]) -> str:
    if config.get("PackageType") == "Image":
        command = config.get("ImageConfigResponse", {}).get("ImageConfig", {}).get("Command")
        # Without an override the image's own CMD names the handler.
        return command[0] if command else RUNNER_IMAGE_HANDLER
    return config.get("Handler", "")


@contextlib.contextmanager
def lambda_environment(values: Mapping[str, str]) -> Iterator[None]:
    """os.environ as inside the function, restored afterwards whatever happened."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def cold_start(module: str, search_path: Path | None = None) -> Iterator[Any]:
    """Import `module` as a new execution environment would, without any copy an earlier
    "deployment" in this process imported (with its cached clients, secrets and settings), and
    put the previous modules back afterwards so other code in this process is not affected."""
    package = module.split(".")[0]
    previous = {
        name: sys.modules.pop(name)
        for name in list(sys.modules)
        if name == package or name.startswith(package + ".")
    }
    added_path = search_path is not None and str(search_path) not in sys.path
    if added_path:
        sys.path.insert(0, str(search_path))
    try:
        yield importlib.import_module(module)
    finally:
        for name in list(sys.modules):
            if name == package or name.startswith(package + "."):
                del sys.modules[name]
        sys.modules.update(previous)
        if added_path:
            sys.path.remove(str(search_path))


def function_env(function: DeployedFunction, emulator: MotoServer) -> dict:
    """What Lambda puts in the environment, then the function's own variables, then only what
    must point at this machine."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 (Lambda's HOME is not writable either)
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),  # noqa: S108
        "AWS_REGION": emulator.region,
        "AWS_DEFAULT_REGION": emulator.region,
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
        **function.environment,
        **emulator.env,
    }


@dataclass(frozen=True)
class LocalRunnerSettings:
    """The only runner settings that differ from the deployed function: where the app and PHP
    are on this machine instead of in the image."""

    app_dir: Path = FIXTURE_APP
    php: str = field(default_factory=lambda: shutil.which("php") or "php")

    def overrides(self) -> dict[str, str]:
        return {"RUNNER_APP_DIR": str(self.app_dir), "RUNNER_PHP": self.php}


@contextlib.contextmanager
def function_log(stream: TextIO | None) -> Iterator[None]:
    """Where a handler's stdout/stderr go (Lambda would ship them to CloudWatch Logs): left
    alone when `stream` is None (pytest captures them), else into that file."""
    if stream is None:
        yield
        return
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        yield
    stream.flush()


def invoke_runner(
    emulator: MotoServer,
    function: DeployedFunction,
    event: Mapping[str, Any],
    local: LocalRunnerSettings,
    log: TextIO | None = None,
) -> dict:
    """`runner.handler.handler(event, context)` in-process, as the deployed function."""
    region = emulator.region
    env = {**function_env(function, emulator), **local.overrides()}
    with (
        lambda_environment(env),
        function_log(log),
        cold_start(function.handler_module(), RUNNER_SOURCE) as handler_module,
    ):
        context = LambdaContext(function.name, function.memory_mb, function.timeout_seconds, region)
        return handler_module.handler(json.loads(json.dumps(event)), context)


# --------------------------------------------------------------------------- EventBridge


@dataclass(frozen=True)
class ScheduledJob:
    rule: str
    schedule: str
    target_id: str
    target_arn: str
    event: dict

    @property
    def command(self) -> str:
        return str(self.event.get("command", "?"))


def scheduled_jobs(events_client) -> tuple[list[ScheduledJob], list[ScheduledJob]]:
    """(Lambda jobs, other targets) of every enabled scheduled rule, as deployed."""
    lambda_jobs, other = [], []
    paginator = events_client.get_paginator("list_rules")
    for page in paginator.paginate():
        for rule in page.get("Rules", []):
            if not rule.get("ScheduleExpression") or rule.get("State") != "ENABLED":
                continue
            targets = events_client.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            for target in sorted(targets, key=lambda t: t["Id"]):
                job = ScheduledJob(
                    rule=rule["Name"],
                    schedule=rule["ScheduleExpression"],
                    target_id=target["Id"],
                    target_arn=target["Arn"],
                    event=_target_event(target, rule),
                )
                is_lambda = ":lambda:" in target["Arn"] and ":function:" in target["Arn"]
                (lambda_jobs if is_lambda else other).append(job)
    return lambda_jobs, other


def _target_event(target: Mapping[str, Any], rule: Mapping[str, Any]) -> dict:
    if "Input" in target:
        return json.loads(target["Input"])
    # Without a constant input EventBridge sends the "Scheduled Event" itself.
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "resources": [rule["Arn"]],
        "detail": {},
    }


def function_name_from_arn(arn: str) -> str:
    # arn:aws:lambda:region:account:function:name[:qualifier]
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 else arn


# --------------------------------------------------------------------------- S3 notifications


@dataclass(frozen=True)
class StoredObject:
    key: str
    version_id: str | None
    etag: str
    size: int
    last_modified: datetime


def object_versions(s3, bucket: str) -> dict[tuple[str, str | None], StoredObject]:
    """Every object version in the bucket, so an overwrite counts as a new object."""
    found: dict[tuple[str, str | None], StoredObject] = {}
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        for item in page.get("Versions", []):
            version = item.get("VersionId")
            version = None if version in (None, "null") else version
            found[(item["Key"], version)] = StoredObject(
                item["Key"], version, item["ETag"], int(item["Size"]), item["LastModified"]
            )
    return found


@dataclass(frozen=True)
class NotificationRule:
    id: str
    function_arn: str
    events: tuple[str, ...]
    prefix: str
    suffix: str

    def matches(self, event_name: str, key: str) -> bool:
        wanted = any(
            pattern == f"s3:{event_name}"
            or (pattern.endswith(":*") and f"s3:{event_name}".startswith(pattern[:-1]))
            for pattern in self.events
        )
        return wanted and key.startswith(self.prefix) and key.endswith(self.suffix)


def notification_rules(s3, bucket: str) -> list[NotificationRule]:
    config = s3.get_bucket_notification_configuration(Bucket=bucket)
    rules = []
    for item in config.get("LambdaFunctionConfigurations", []):
        filters = {
            rule["Name"].lower(): rule["Value"]
            for rule in item.get("Filter", {}).get("Key", {}).get("FilterRules", [])
        }
        rules.append(
            NotificationRule(
                id=item.get("Id", ""),
                function_arn=item["LambdaFunctionArn"],
                events=tuple(item.get("Events", [])),
                prefix=filters.get("prefix", ""),
                suffix=filters.get("suffix", ""),
            )
        )
    return rules


def s3_event(rule: NotificationRule, bucket: str, obj: StoredObject, region: str) -> dict:
    """One ObjectCreated:Put notification shaped as S3 sends it (key URL-encoded, '+' for space)."""
    event_time = obj.last_modified.astimezone(UTC)
    object_part: dict[str, Any] = {
        "key": quote_plus(obj.key, safe="/"),
        "size": obj.size,
        "eTag": obj.etag.strip('"'),
        "sequencer": f"{int(event_time.timestamp() * 1_000_000):016X}",
    }
    if obj.version_id:
        object_part["versionId"] = obj.version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": event_time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": f"AWS:{ACCOUNT_ID}"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                    "x-amz-id-2": uuid.uuid4().hex,
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": rule.id,
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": ACCOUNT_ID},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": object_part,
                },
            }
        ]
    }


# --------------------------------------------------------------------------- EMF metrics


@dataclass(frozen=True)
class MetricValue:
    namespace: str
    name: str
    unit: str
    value: float
    dimensions: dict[str, str]


def metrics_from_emf(lines: str) -> list[MetricValue]:
    """Metric values from Embedded Metric Format records, as CloudWatch would extract them."""
    found = []
    for line in lines.splitlines():
        line = line.strip()
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        try:
            record = json.loads(line)
            directives = record["_aws"]["CloudWatchMetrics"]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        for directive in directives:
            for dimension_set in directive.get("Dimensions", []):
                dimensions = {name: str(record[name]) for name in dimension_set}
                for metric in directive.get("Metrics", []):
                    values = record.get(metric["Name"])
                    for value in values if isinstance(values, list) else [values]:
                        found.append(
                            MetricValue(
                                directive["Namespace"],
                                metric["Name"],
                                metric.get("Unit", "None"),
                                float(value),
                                dimensions,
                            )
                        )
    return found


@dataclass
class Delivery:
    key: str
    function: str
    response: Any
    metrics: list[MetricValue]
    error: str | None = None


def invoke_report_processor(
    emulator: MotoServer, function: DeployedFunction, event: dict, log: TextIO | None = None
) -> tuple[Any, str]:
    """The report processor in-process; returns its response and everything it printed (the
    EMF records go to stdout, which Lambda ships to CloudWatch Logs)."""
    captured = io.StringIO()
    region = emulator.region
    try:
        with (
            lambda_environment(function_env(function, emulator)),
            function_log(log),
            contextlib.redirect_stdout(captured),
            cold_start(function.handler_module()) as handler_module,
        ):
            context = LambdaContext(
                function.name, function.memory_mb, function.timeout_seconds, region
            )
            response = handler_module.handler(event, context)
    finally:
        if log is not None:
            log.write(captured.getvalue())
    return response, captured.getvalue()


class NotificationDelivery:
    """Delivers ObjectCreated notifications for objects that appeared since the last call, to
    the functions the bucket's notification configuration names, until none is left (objects
    the handlers write count too: a processor writing under its own trigger would show here)."""

    MAX_ROUNDS = 5

    def __init__(self, emulator: MotoServer, bucket: str, log: TextIO | None = None):
        self.emulator, self.bucket, self.region, self.log = emulator, bucket, emulator.region, log
        self.s3 = emulator.client("s3")
        self.lambda_client = emulator.client("lambda")
        self.seen = object_versions(self.s3, bucket)

    def new_objects(self) -> list[StoredObject]:
        current = object_versions(self.s3, self.bucket)
        fresh = [obj for ident, obj in current.items() if ident not in self.seen]
        self.seen = current
        return sorted(fresh, key=lambda obj: (obj.last_modified, obj.key))

    def deliver(self) -> list[Delivery]:
        deliveries: list[Delivery] = []
        rules = notification_rules(self.s3, self.bucket)
        for _ in range(self.MAX_ROUNDS):
            fresh = self.new_objects()
            matched = [
                (rule, obj)
                for obj in fresh
                for rule in rules
                if rule.matches("ObjectCreated:Put", obj.key)
            ]
            if not matched:
                return deliveries
            for rule, obj in matched:
                name = function_name_from_arn(rule.function_arn)
                function = describe_function(self.lambda_client, name)
                event = s3_event(rule, self.bucket, obj, self.region)
                try:
                    response, printed = invoke_report_processor(
                        self.emulator, function, event, self.log
                    )
                    deliveries.append(Delivery(obj.key, name, response, metrics_from_emf(printed)))
                except Exception as error:  # noqa: BLE001 (Lambda would log it and retry)
                    deliveries.append(
                        Delivery(obj.key, name, None, [], f"{type(error).__name__}: {error}")
                    )
        raise RuntimeError(
            f"notifications still produced new matching objects after {self.MAX_ROUNDS} rounds: "
            "a handler writes under its own trigger prefix"
        )


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
    lambda_client = emulator.client("lambda")
    jobs, not_run = scheduled_jobs(emulator.client("events"))
    notifications = NotificationDelivery(emulator, bucket, log)
    outcomes = []
    for job in jobs:
        if function_name_from_arn(job.target_arn) != runner_function:
            not_run.append(job)  # a Lambda target that is not this stack's runner
            continue
        # Read per job, as each invocation would see the function's configuration then.
        function = describe_function(lambda_client, runner_function)
        started = time.monotonic()
        progress(f"rule {job.rule} -> {job.target_id}: runner event {json.dumps(job.event)}")
        response = invoke_runner(emulator, function, job.event, local, log)
        deliveries = notifications.deliver()
        outcome = JobOutcome(job, response, deliveries, time.monotonic() - started)
        outcomes.append(outcome)
        progress(
            f"  runner: {response.get('status')} (exit {response.get('exit_code')}) in "
            f"{outcome.seconds:.1f}s; {len(deliveries)} S3 notification(s) delivered"
        )
    keys = sorted(obj.key for obj in notifications.seen.values())
    return NightlyResult(bucket, outcomes, not_run, keys)


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

    process: Any
    out_dir: Path
    log_path: Path
    stack_name: str

    @classmethod
    def start(cls, config_path: Path, out_dir: Path, stack_name: str) -> Synthesis:
        import subprocess

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
        import subprocess

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


def deploy(stack_dir: Path, work_dir: Path, emulator: MotoServer):
    """`terraform init` + `apply` of the synthesized stack against the emulator (demo/terraform.py
    keeps the emulator settings in an override file of its private copy)."""
    from demo.terraform import TerraformError, TerraformWorkspace

    try:
        workspace = TerraformWorkspace.prepare(stack_dir, work_dir)
        workspace.use_emulator(emulator.endpoint_url)
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

    config: Any  # modules.config.StackConfig
    config_path: Path
    emulator: MotoServer
    synthesis: Synthesis

    @classmethod
    def start(cls, moto, config_path: Path, work_dir: Path) -> EmulatedStack:
        from modules.config import load_config

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
    config: Any  # modules.config.StackConfig
    emulator: MotoServer
    stack_dir: Path
    resources: list[str]
    policy_workaround: PolicyWorkaround
    nightly: NightlyResult
    timings: dict[str, float]

    @property
    def bucket(self) -> str:
        return self.nightly.bucket

    def text(self, key: str) -> str:
        return read_text(self.emulator, self.bucket, key)


def run_pipeline(
    stack: EmulatedStack,
    postgres,
    work_dir: Path,
    step: Progress = _quiet,
    detail: Progress = _quiet,
    database_name: str = "ltr_demo",
    log: TextIO | None = None,
) -> PipelineRun:
    """Synthesized stack -> emulator -> nightly jobs through the runner -> S3 notifications to
    the report processor."""
    config, emulator = stack.config, stack.emulator
    names = config.names
    timings: dict[str, float] = {}

    started = time.monotonic()
    step("waiting for the synthesized stack")
    stack_dir = stack.synthesis.wait()
    timings["synth_wait"] = time.monotonic() - started
    detail(f"synthesized {stack_dir / 'cdk.tf.json'} (waited {timings['synth_wait']:.0f}s)")

    started = time.monotonic()
    step(f"terraform init + apply against the emulator ({emulator.endpoint_url})")
    workspace = deploy(stack_dir, work_dir / "terraform", emulator)
    resources = workspace.state_resources()
    timings["apply"] = time.monotonic() - started
    for configured, emulated in workspace.emulated_ids.items():
        detail(f"existing network: {configured} -> {emulated} (created in the emulator)")
    detail(f"applied {len(resources)} resources in {timings['apply']:.0f}s")
    workaround = relax_conditional_bucket_policy(emulator, names.results_bucket)
    for statement in workaround.removed:
        detail(
            f"emulator limit: bucket policy statement {statement.get('Sid', '?')!r} has a "
            "Condition moto cannot evaluate (it would deny every request); removed in the "
            "emulator only"
        )

    step("storing the database secret the stack references")
    credentials = postgres.create_database(database_name)
    store_database_secret(emulator, config.database.secret_arn, credentials.as_secret_json())
    detail(
        f"{config.database.secret_arn} -> PostgreSQL "
        f"{credentials.host}:{credentials.port}/{credentials.dbname}"
    )

    started = time.monotonic()
    step("running the nightly jobs as the deployed EventBridge rules define them")
    nightly = run_nightly_jobs(
        emulator, names.runner_function, names.results_bucket, progress=detail, log=log
    )
    timings["nightly"] = time.monotonic() - started
    return PipelineRun(config, emulator, stack_dir, resources, workaround, nightly, timings)
