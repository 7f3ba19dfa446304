"""Stack configuration: one JSON file per environment, loaded into frozen dataclasses.

This module is deliberately free of cdktf and AWS imports so the `ltr` CLI, the demo and the
tests can read the deployed names in milliseconds (importing the provider bindings takes ~20 s).

Every problem in a file is collected and reported at once, each naming the field and the fix,
so a user fixes a config in one pass instead of one error per run.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.layout import command_slug

from report_processor.location import validate_template

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "config"
DEFAULT_CONFIG_PATH = CONFIG_DIR / "example.json"

STACK_NAME = "lambda-test-runner"
KNOWN_COMMANDS = ("test", "scribe:generate", "api:export-markdown")
DEFAULT_METRICS_NAMESPACE = "LambdaTestRunner"
NIGHTLY_CRON = "cron(0 2 * * ? *)"
# Sharded runs (issue 13): the most shards one run may ask for by default, and ever. A Map
# state's inline iterations run at most 40 at a time, whatever MaxConcurrency says.
DEFAULT_MAX_SHARDS = 8
MAX_SHARDS_LIMIT = 40

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
# E-mail subscriptions to the run notification topic the stack manages (a team beyond this
# subscribes a mailing list, or its own endpoints to the topic output).
MAX_NOTIFICATION_EMAILS = 20
# EventBridge rule names: 1-64 characters.
RULE_NAME_LIMIT = 64
# CloudWatch alarms with periods of an hour or more: period x evaluation periods <= 7 days.
MAX_ALARM_WINDOW_HOURS = 7 * 24
DEFAULT_MISSING_RESULT_HOURS = 28
# How late a result may land compared with the schedule before the missing-result alarm fires:
# a run's own duration plus EventBridge and S3 event delays.
RESULT_JITTER_HOURS = 2
# The VPC endpoints the runner may need; "ecr" is the pair ecr.api + ecr.dkr.
ENDPOINT_SERVICES = ("s3", "secretsmanager", "logs", "ecr")
# Only Fargate tasks send logs (awslogs driver) and pull the image from inside the VPC; Lambda
# does both outside the function's VPC.
FARGATE_ONLY_ENDPOINTS = ("logs", "ecr")
ENDPOINT_MODES = ("create", "exists", "none")
# Fargate CPU units and the memory (MiB) range each allows.
FARGATE_MEMORY_BY_CPU = {
    256: (512, 2048),
    512: (1024, 4096),
    1024: (2048, 8192),
    2048: (4096, 16384),
    4096: (8192, 30720),
    8192: (16384, 61440),
    16384: (32768, 122880),
}
# The fields each part of a config file accepts: "" is the top level, "schedules[]" an item of
# the schedules list. The validation reads these sets (any other key is an unknown field), and
# tests/test_docs.py holds docs/deploying.md's configuration reference to them.
CONFIG_FIELDS: Mapping[str, frozenset[str]] = {
    "": frozenset(
        {
            "project",
            "environment",
            "region",
            "vpc",
            "database",
            "image",
            "runner",
            "report_processor",
            "schedules",
            "alarms",
            "fargate",
            "retention",
            "encryption",
            "notifications",
            "metrics_namespace",
            "results_bucket_name",
            "state_backend",
        }
    ),
    "vpc": frozenset({"vpc_id", "private_subnet_ids", "private_route_table_ids", "endpoints"}),
    "vpc.endpoints": frozenset(ENDPOINT_SERVICES),
    "database": frozenset(
        {"security_group_id", "port", "secret_arn", "secret_kms_key_arn", "shard_databases"}
    ),
    "database.shard_databases": frozenset(
        {"mode", "template", "admin_database", "connection_budget", "connections_per_shard"}
    ),
    "image": frozenset({"tag", "digest"}),
    "runner": frozenset(
        {
            "memory_mb",
            "timeout_seconds",
            "ephemeral_storage_mb",
            "reserved_concurrency",
            "commands",
            "max_shards",
        }
    ),
    "report_processor": frozenset(
        {"memory_mb", "timeout_seconds", "reserved_concurrency", "source_url_template"}
    ),
    "schedules[]": frozenset({"name", "cron", "target", "runs", "enabled", "shards"}),
    "schedules[].runs[]": frozenset({"command", "args"}),
    "alarms": frozenset(
        {
            "pass_rate_threshold",
            "missing_result_hours",
            "runner_errors_threshold",
            "runner_throttles_threshold",
            "email",
            "minimum_tests",
            "run_not_passed",
            "new_failures",
        }
    ),
    "fargate": frozenset({"enabled", "cpu", "memory_mb"}),
    "retention": frozenset(
        {
            "log_days",
            "results_days",
            "noncurrent_version_days",
            "keep_images",
            "untagged_image_days",
            "ci_tag_prefixes",
        }
    ),
    "encryption": frozenset({"customer_managed_key"}),
    "notifications": frozenset({"emails"}),
    "state_backend": frozenset({"s3"}),
    "state_backend.s3": frozenset({"bucket", "key", "region"}),
}
# Fields that used to exist: recognised only to refuse them with a message saying what replaced
# them (not accepted).
REMOVED_CONFIG_FIELDS: Mapping[str, frozenset[str]] = {
    "vpc": frozenset({"create_vpc_endpoints"}),
}

_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{1,19}$")
_ENVIRONMENT_RE = re.compile(r"^[a-z][a-z0-9-]{0,11}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_VPC_RE = re.compile(r"^vpc-[0-9a-f]{8}([0-9a-f]{9})?$")
_SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?$")
_SG_RE = re.compile(r"^sg-[0-9a-f]{8}([0-9a-f]{9})?$")
_ROUTE_TABLE_RE = re.compile(r"^rtb-[0-9a-f]{8}([0-9a-f]{9})?$")
# Secret names may hold `/_+=.@-`; RDS-managed secrets are named `rds!db-<uuid>` (or
# `rds!cluster-<uuid>`), so `!` is allowed too.
_SECRET_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:secret:[\w/+=.@!-]+$"
)
# A KMS key ARN (single- or multi-region key). IAM evaluates kms:Decrypt against the key ARN,
# never an alias ARN, so an alias cannot stand in for it in a policy's Resource.
_KMS_KEY_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):\d{12}:key/"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$"
)
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_COMMAND_RE = re.compile(r"^[a-z][a-z0-9-]*(:[a-z0-9-]+)*$")
_SCHEDULE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_CRON_RE = re.compile(r"^cron\((?P<fields>(\S+ ){5}\S+)\)$")
_RATE_RE = re.compile(r"^rate\((?P<value>[1-9]\d*) (?P<unit>minute|hour|day)(?P<plural>s?)\)$")
_TAG_PREFIX_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9/_.#:-]{1,255}$")
# An environment name as --env / LTR_ENV give it: it names config/<env>.json.
ENV_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")


class ConfigError(ValueError):
    """A configuration file is unusable; `.problems` lists every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the configuration:\n{lines}")


# --------------------------------------------------------------------------- typed config


@dataclass(frozen=True)
class EndpointsConfig:
    """Per service: "create" (this stack creates the endpoint), "exists" (the VPC already has
    one: a route table holds one route per service, so a second S3 gateway would fail) or "none"
    (the private subnets reach the service through a NAT gateway)."""

    s3: str
    secretsmanager: str
    logs: str
    ecr: str

    def mode(self, service: str) -> str:
        return str(getattr(self, service))

    def with_mode(self, mode: str) -> tuple[str, ...]:
        return tuple(service for service in ENDPOINT_SERVICES if self.mode(service) == mode)


@dataclass(frozen=True)
class VpcConfig:
    vpc_id: str
    private_subnet_ids: tuple[str, ...]
    # The S3 gateway endpoint is attached to these route tables (those of the private subnets).
    private_route_table_ids: tuple[str, ...]
    endpoints: EndpointsConfig


SHARD_DATABASE_MODES = ("template", "shared")  # runner/config.py TEMPLATE, SHARED
DEFAULT_CONNECTIONS_PER_SHARD = 2  # runner/config.py's default: the tests' + the runner's own


@dataclass(frozen=True)
class ShardDatabasesConfig:
    """The database each shard of a sharded run uses (docs/sharding.md#databases); None
    fields are left to the runner's defaults (its variables are then not set)."""

    mode: str = "shared"
    template: str | None = None  # the database each shard's own is cloned from (mode template)
    admin_database: str | None = None  # where the runner creates and drops (runner: postgres)
    connection_budget: int | None = None  # connections the shards of one run may hold together
    connections_per_shard: int | None = None


@dataclass(frozen=True)
class DatabaseConfig:
    security_group_id: str
    port: int
    secret_arn: str
    # The customer-managed KMS key the secret is encrypted with, when not Secrets Manager's
    # AWS-managed key: the runner roles get kms:Decrypt on it through Secrets Manager only.
    secret_kms_key_arn: str | None = None
    # Absent from the config file: the runner's defaults (every shard on the secret's database).
    shard_databases: ShardDatabasesConfig | None = None


@dataclass(frozen=True)
class ImageConfig:
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        """What follows the repository URL: `:tag` or `@sha256:...`."""
        return f"@{self.digest}" if self.digest else f":{self.tag}"


@dataclass(frozen=True)
class RunnerConfig:
    memory_mb: int
    timeout_seconds: int
    ephemeral_storage_mb: int
    reserved_concurrency: int | None
    commands: tuple[str, ...]
    # The most shards one sharded run starts (the runner may apply a lower cap: its reserved
    # concurrency, the database connection budget); also the state machine's MaxConcurrency.
    max_shards: int = DEFAULT_MAX_SHARDS

    @property
    def shard_concurrency(self) -> int:
        """The state machine's MaxConcurrency: never more than the runner may run at once."""
        reserved = self.reserved_concurrency
        return min(self.max_shards, reserved) if reserved else self.max_shards


@dataclass(frozen=True)
class ReportProcessorConfig:
    memory_mb: int
    timeout_seconds: int
    reserved_concurrency: int | None
    # Links each failing line in the summary to the source: `{path}`, `{line}`, `{app_version}`.
    source_url_template: str | None = None


@dataclass(frozen=True)
class ScheduledRun:
    command: str
    args: tuple[str, ...]

    @property
    def slug(self) -> str:
        return command_slug(self.command)

    def lambda_event(self) -> dict[str, Any]:
        """The JSON input EventBridge hands the runner Lambda."""
        return {"command": self.command, "args": list(self.args)}

    def fargate_command(self) -> list[str]:
        """Container command after the image's `python -m runner` entry point."""
        return ["run", self.command, *self.args]


@dataclass(frozen=True)
class Schedule:
    name: str
    expression: str
    target: str  # "lambda" or "fargate"
    runs: tuple[ScheduledRun, ...]
    enabled: bool
    # Sharded: its `test` runs start the sharded-run state machine with this many shards instead
    # of invoking the runner; its other runs invoke the runner as usual.
    shards: int | None = None

    def is_sharded(self, run: ScheduledRun) -> bool:
        return self.shards is not None and run.command == "test"

    def invocations(self, run: ScheduledRun) -> int:
        """Runner invocations this run starts at once (a sharded run's shards run together)."""
        return self.shards if self.shards is not None and self.is_sharded(run) else 1


@dataclass(frozen=True)
class AlarmConfig:
    pass_rate_threshold: float
    # The missing-result alarm fires when no `test` result arrived in this many hours (hourly
    # periods, so a result landing a little later than the night before does not flap).
    missing_result_hours: int
    runner_errors_threshold: int
    runner_throttles_threshold: int
    email: str | None
    # The too-few-tests alarm fires when a `test` report counts fewer tests than this.
    minimum_tests: int = 1
    # The run-not-passed alarm (RunsNotPassed >= 1): any `test` run whose verdict is not
    # "passed", including a command that failed over a clean report (issue 9). On by default.
    run_not_passed: bool = True
    # The new-failures alarm (NewFailures >= 1, from the run history). Off by default: the run
    # notification topic already says so once per run.
    new_failures: bool = False


@dataclass(frozen=True)
class NotificationsConfig:
    # E-mail addresses subscribed to the run notification topic (one message per run whose
    # status changed or that has new failures); none by default.
    emails: tuple[str, ...] = ()


@dataclass(frozen=True)
class FargateConfig:
    enabled: bool
    cpu: int
    memory_mb: int


@dataclass(frozen=True)
class EncryptionConfig:
    # One customer-managed KMS key for this stack (log groups, both functions' environment, the
    # alerts topic, the failure queues and the results bucket). Off by default: AWS-managed and
    # service-owned keys cost nothing, a customer key costs $1/month plus requests.
    customer_managed_key: bool


@dataclass(frozen=True)
class RetentionConfig:
    log_days: int
    results_days: int
    noncurrent_version_days: int
    # Untagged images (superseded pushes) expire after this many days.
    untagged_image_days: int = 7
    # Images whose tag starts with one of these (CI builds) beyond the newest `keep_images`
    # expire; every other tag is a release and is kept (the deployed image must never expire).
    ci_tag_prefixes: tuple[str, ...] = ()
    keep_images: int = 20


@dataclass(frozen=True)
class S3StateBackend:
    bucket: str
    key: str
    region: str


@dataclass(frozen=True)
class ResourceNames:
    """Every deployed name, derived in one place (the CLI and the demo read these)."""

    stack: str
    prefix: str
    repository: str
    runner_function: str
    report_function: str
    results_bucket: str
    cluster: str
    task_family: str
    container: str
    dashboard: str
    alerts_topic: str
    notification_topic: str
    runner_dlq: str
    report_dlq: str
    schedule_dlq: str
    runner_log_group: str
    report_log_group: str
    task_log_group: str
    runner_role: str
    report_role: str
    task_role: str
    task_execution_role: str
    events_role: str
    runner_security_group: str
    endpoints_security_group: str
    pass_rate_alarm: str
    missing_result_alarm: str
    runner_errors_alarm: str
    runner_throttles_alarm: str
    runner_failures_alarm: str
    report_failures_alarm: str
    schedule_failures_alarm: str
    too_few_tests_alarm: str
    run_not_passed_alarm: str
    new_failures_alarm: str
    kms_alias: str
    local_state_file: str
    state_machine: str
    merge_function: str
    merge_log_group: str
    merge_role: str
    state_machine_role: str
    state_machine_log_group: str
    sharded_schedule_role: str
    sharded_run_failed_alarm: str

    def schedule_rule(self, schedule_name: str) -> str:
        return f"{self.prefix}-{schedule_name}"


@dataclass(frozen=True)
class StackConfig:
    project: str
    environment: str
    region: str
    vpc: VpcConfig
    database: DatabaseConfig
    image: ImageConfig
    runner: RunnerConfig
    report_processor: ReportProcessorConfig
    schedules: tuple[Schedule, ...]
    alarms: AlarmConfig
    fargate: FargateConfig
    retention: RetentionConfig
    encryption: EncryptionConfig
    metrics_namespace: str
    results_bucket_name: str | None
    state_backend: S3StateBackend | None
    source: str
    notifications: NotificationsConfig = NotificationsConfig()

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"

    @property
    def names(self) -> ResourceNames:
        prefix = f"{self.project}-{self.environment}"
        runner_function = f"{prefix}-runner"
        report_function = f"{prefix}-report-processor"
        return ResourceNames(
            stack=STACK_NAME,
            prefix=prefix,
            repository=f"{prefix}-runner",
            runner_function=runner_function,
            report_function=report_function,
            results_bucket=self.results_bucket_name or f"{prefix}-test-results",
            cluster=f"{prefix}-runner",
            task_family=f"{prefix}-runner",
            container="runner",
            dashboard=f"{prefix}-tests",
            alerts_topic=f"{prefix}-test-alerts",
            notification_topic=f"{prefix}-test-runs",
            runner_dlq=f"{prefix}-runner-failures",
            report_dlq=f"{prefix}-report-failures",
            schedule_dlq=f"{prefix}-schedule-failures",
            runner_log_group=f"/aws/lambda/{runner_function}",
            report_log_group=f"/aws/lambda/{report_function}",
            task_log_group=f"/ecs/{prefix}-runner",
            runner_role=f"{prefix}-runner",
            report_role=f"{prefix}-report-processor",
            task_role=f"{prefix}-runner-task",
            task_execution_role=f"{prefix}-runner-task-execution",
            events_role=f"{prefix}-events-run-task",
            runner_security_group=f"{prefix}-runner",
            endpoints_security_group=f"{prefix}-vpc-endpoints",
            pass_rate_alarm=f"{prefix}-pass-rate-low",
            missing_result_alarm=f"{prefix}-nightly-result-missing",
            runner_errors_alarm=f"{prefix}-runner-errors",
            runner_throttles_alarm=f"{prefix}-runner-throttles",
            runner_failures_alarm=f"{prefix}-runner-failures-queued",
            report_failures_alarm=f"{prefix}-report-failures-queued",
            schedule_failures_alarm=f"{prefix}-schedule-failures-queued",
            too_few_tests_alarm=f"{prefix}-too-few-tests",
            run_not_passed_alarm=f"{prefix}-run-not-passed",
            new_failures_alarm=f"{prefix}-new-failures",
            kms_alias=f"alias/{prefix}",
            local_state_file=f"terraform.{prefix}.tfstate",
            state_machine=f"{prefix}-sharded-run",
            merge_function=f"{prefix}-shard-merge",
            merge_log_group=f"/aws/lambda/{prefix}-shard-merge",
            merge_role=f"{prefix}-shard-merge",
            state_machine_role=f"{prefix}-sharded-run",
            state_machine_log_group=f"/aws/vendedlogs/states/{prefix}-sharded-run",
            sharded_schedule_role=f"{prefix}-events-start-sharded-run",
            sharded_run_failed_alarm=f"{prefix}-sharded-run-failed",
        )


# --------------------------------------------------------------------------- reading


class _Reader:
    """Walks the raw JSON, recording problems instead of raising on the first one."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, field: str, message: str) -> None:
        self.problems.append(f"{field}: {message}")

    def section(self, raw: Mapping[str, Any], key: str, field: str, allowed: Set[str]) -> dict:
        value = raw.get(key, {})
        if not isinstance(value, dict):
            self.problem(field, f"must be an object like {{...}}, got {_kind(value)}")
            return {}
        self.unknown_keys(value, field, allowed)
        return value

    def unknown_keys(self, raw: Mapping[str, Any], field: str, allowed: Set[str]) -> None:
        for key in raw:
            if key.startswith("//") or key in allowed:
                continue
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = (
                f'; did you mean "{close[0]}"?'
                if close
                else f"; known: {', '.join(sorted(allowed))}"
            )
            self.problem(f"{field}.{key}" if field else key, f"unknown field{hint}")

    def string(
        self,
        raw: Mapping[str, Any],
        key: str,
        field: str,
        pattern: re.Pattern[str],
        example: str,
        default: str | None = None,
        required: bool = True,
    ) -> str | None:
        if key not in raw or raw[key] is None:
            if default is not None or not required:
                return default
            self.problem(field, f'is required, e.g. "{example}"')
            return None
        value = raw[key]
        if not isinstance(value, str) or not pattern.match(value):
            self.problem(field, f'{_show(value)} is not valid; use a value like "{example}"')
            return None
        return value

    def integer(
        self, raw: Mapping[str, Any], key: str, field: str, default: int | None, low: int, high: int
    ) -> int | None:
        if key not in raw:
            if default is None:
                self.problem(field, f"is required: a whole number from {low} to {high}")
            return default
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(field, f"must be a whole number from {low} to {high}, got {_show(value)}")
            return default
        if not low <= value <= high:
            self.problem(field, f"{value} is out of range; use {low} to {high}")
            return default
        return value

    def number(
        self, raw: Mapping[str, Any], key: str, field: str, default: float, low: float, high: float
    ) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(field, f"must be a number from {low:g} to {high:g}, got {_show(value)}")
            return default
        if not low <= value <= high:
            self.problem(field, f"{value:g} is out of range; use {low:g} to {high:g}")
            return default
        return float(value)

    def boolean(self, raw: Mapping[str, Any], key: str, field: str, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            self.problem(field, f"must be true or false, got {_show(value)}")
            return default
        return value

    def string_list(
        self,
        raw: Mapping[str, Any],
        key: str,
        field: str,
        pattern: re.Pattern[str],
        example: str,
        minimum: int,
        default: list[str] | None = None,
    ) -> tuple[str, ...]:
        value = raw.get(key, default)
        noun = key.removeprefix("private_").replace("_", " ")  # "subnet ids", "commands"
        if minimum == 1 and noun.endswith("s"):
            noun = noun[:-1]
        need = f'need at least {minimum} {noun} like "{example}"'
        if value is None:
            if minimum:
                self.problem(field, need)
            return ()
        if not isinstance(value, list):
            self.problem(
                field, f'must be a list, e.g. ["{example}"]' + (f"; {need}" if minimum else "")
            )
            return ()
        good = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not pattern.match(item):
                self.problem(f"{field}[{index}]", f'{_show(item)} is not valid; use "{example}"')
            else:
                good.append(item)
        if len(value) < minimum:
            self.problem(field, need)
        duplicates = sorted({item for item in good if good.count(item) > 1})
        if duplicates:
            self.problem(field, f"lists {', '.join(duplicates)} more than once; list each once")
        return tuple(dict.fromkeys(good))


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_config(raw: Any, source: str = "<config>") -> StackConfig:
    """Validate raw JSON data; raise ConfigError listing every problem."""
    reader = _Reader()
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"the file must hold a JSON object, got {_kind(raw)}"])
    reader.unknown_keys(raw, "", CONFIG_FIELDS[""])

    project, environment, region = _parse_identity(reader, raw)
    fargate = _parse_fargate(reader, raw)
    vpc = _parse_vpc(reader, raw, fargate.enabled)
    database = _parse_database(reader, raw, region)
    image = _parse_image(reader, raw)
    runner = _parse_runner(reader, raw)
    report_processor = _parse_report_processor(reader, raw)
    prefix = f"{project}-{environment}" if project and environment else None
    schedules = _parse_checked_schedules(reader, raw, runner, fargate.enabled, prefix)
    alarms = _parse_alarms(reader, raw)
    _check_missing_result_window(reader, schedules, alarms.missing_result_hours)
    retention = _parse_retention(reader, raw)
    _check_image_outlives_lifecycle(reader, image, retention)
    encryption = _parse_encryption(reader, raw)
    notifications = _parse_notifications(reader, raw)
    namespace = _parse_metrics_namespace(reader, raw)
    bucket_name = _parse_results_bucket_name(reader, raw)
    state_backend = _parse_state_backend(reader, raw)

    if reader.problems:
        raise ConfigError(source, reader.problems)
    assert project and environment and region and namespace  # guaranteed when no problems
    return StackConfig(
        project=project,
        environment=environment,
        region=region,
        vpc=vpc,
        database=database,
        image=image,
        runner=runner,
        report_processor=report_processor,
        schedules=schedules,
        alarms=alarms,
        fargate=fargate,
        retention=retention,
        encryption=encryption,
        metrics_namespace=namespace,
        results_bucket_name=bucket_name,
        state_backend=state_backend,
        source=source,
        notifications=notifications,
    )


def _parse_identity(
    reader: _Reader, raw: Mapping[str, Any]
) -> tuple[str | None, str | None, str | None]:
    """project, environment and region (None where invalid: the reader has the problem)."""
    project = reader.string(raw, "project", "project", _PROJECT_RE, "ltr", required=True)
    if project is None and "project" in raw:
        reader.problems[-1] += " (2-20 characters: lowercase letters, digits, dashes)"
    environment = reader.string(raw, "environment", "environment", _ENVIRONMENT_RE, "dev")
    if environment is None and "environment" in raw:
        reader.problems[-1] += " (1-12 characters: lowercase letters, digits, dashes)"
    region = reader.string(raw, "region", "region", _REGION_RE, "eu-west-1")
    return project, environment, region


def _parse_checked_schedules(
    reader: _Reader,
    raw: Mapping[str, Any],
    runner: RunnerConfig,
    fargate_enabled: bool,
    prefix: str | None,
) -> tuple[Schedule, ...]:
    """The schedules, checked against the runner's shard limit and reserved concurrency."""
    schedules = _parse_schedules(reader, raw, runner.commands, fargate_enabled, prefix)
    _check_shards(reader, schedules, runner)
    _check_simultaneous_targets(reader, schedules, runner.reserved_concurrency)
    return schedules


def _parse_metrics_namespace(reader: _Reader, raw: Mapping[str, Any]) -> str | None:
    return reader.string(
        raw,
        "metrics_namespace",
        "metrics_namespace",
        _NAMESPACE_RE,
        DEFAULT_METRICS_NAMESPACE,
        default=DEFAULT_METRICS_NAMESPACE,
    )


def _parse_results_bucket_name(reader: _Reader, raw: Mapping[str, Any]) -> str | None:
    bucket_name = reader.string(
        raw,
        "results_bucket_name",
        "results_bucket_name",
        _BUCKET_RE,
        "acme-ltr-dev-test-results",
        required=False,
    )
    if bucket_name and (".." in bucket_name or bucket_name.startswith("xn--")):
        reader.problem("results_bucket_name", "is not a valid S3 bucket name")
    return bucket_name


def _parse_vpc(reader: _Reader, raw: Mapping[str, Any], fargate_enabled: bool) -> VpcConfig:
    if "vpc" not in raw:
        reader.problem("vpc", 'is required: {"vpc_id": ..., "private_subnet_ids": [...]}')
    section = reader.section(raw, "vpc", "vpc", CONFIG_FIELDS["vpc"] | REMOVED_CONFIG_FIELDS["vpc"])
    if "create_vpc_endpoints" in section:
        reader.problem(
            "vpc.create_vpc_endpoints",
            'is replaced by one setting per endpoint: "endpoints": {"s3": "create", '
            '"secretsmanager": "create", "logs": "create", "ecr": "create"} (each "create", '
            '"exists" or "none"); true was every endpoint "create", false every one "none"',
        )
    vpc_id = reader.string(section, "vpc_id", "vpc.vpc_id", _VPC_RE, "vpc-0abc1234def567890")
    subnets = reader.string_list(
        section,
        "private_subnet_ids",
        "vpc.private_subnet_ids",
        _SUBNET_RE,
        "subnet-0abc1234def567890",
        minimum=2,
    )
    endpoints = _parse_endpoints(reader, section, fargate_enabled)
    route_tables = reader.string_list(
        section,
        "private_route_table_ids",
        "vpc.private_route_table_ids",
        _ROUTE_TABLE_RE,
        "rtb-0abc1234def567890",
        minimum=0,
    )
    if endpoints.s3 == "create" and not route_tables and "private_route_table_ids" not in section:
        reader.problem(
            "vpc.private_route_table_ids",
            'need the private subnets\' route table ids like "rtb-0abc1234def567890" for the S3 '
            'gateway endpoint, or set "endpoints": {"s3": "exists"} when the VPC already has one '
            '(or "none" when a NAT gateway carries S3 traffic)',
        )
    return VpcConfig(vpc_id or "", subnets, route_tables, endpoints)


def _parse_endpoints(
    reader: _Reader, section: Mapping[str, Any], fargate_enabled: bool
) -> EndpointsConfig:
    field = "vpc.endpoints"
    value = reader.section(section, "endpoints", field, CONFIG_FIELDS[field])
    modes = {}
    for service in ENDPOINT_SERVICES:
        needed = fargate_enabled or service not in FARGATE_ONLY_ENDPOINTS
        mode = value.get(service, "create" if needed else "none")
        if mode not in ENDPOINT_MODES:
            reader.problem(
                f"{field}.{service}",
                f'{_show(mode)} is not valid; use "create" (this stack creates it), "exists" '
                '(the VPC already has one) or "none" (a NAT gateway carries the traffic)',
            )
            mode = "none"
        elif mode == "create" and not needed:
            reader.problem(
                f"{field}.{service}",
                '"create" without the Fargate path: only a Fargate task sends logs and pulls the '
                'image from inside the VPC (Lambda does both outside it); use "none" or '
                'set "fargate": {"enabled": true}',
            )
        modes[service] = mode if needed else "none"
    return EndpointsConfig(**modes)


def _parse_database(reader: _Reader, raw: Mapping[str, Any], region: str | None) -> DatabaseConfig:
    if "database" not in raw:
        reader.problem(
            "database", 'is required: {"security_group_id": ..., "port": 5432, "secret_arn": ...}'
        )
    section = reader.section(raw, "database", "database", CONFIG_FIELDS["database"])
    group = reader.string(
        section, "security_group_id", "database.security_group_id", _SG_RE, "sg-0abc1234def567890"
    )
    port = reader.integer(section, "port", "database.port", 5432, 1, 65535)
    secret = reader.string(
        section,
        "secret_arn",
        "database.secret_arn",
        _SECRET_ARN_RE,
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ltr/db-AbCdEf",
    )
    if secret and region:
        secret_region = _SECRET_ARN_RE.match(secret)["region"]  # type: ignore[index]
        if secret_region != region:
            reader.problem(
                "database.secret_arn",
                f"is in {secret_region} but the stack is in {region}; the runner reads the "
                "secret through the stack region's endpoint, so use a secret in the same region",
            )
    key = _parse_secret_key(reader, section, secret)
    shard_databases = _parse_shard_databases(reader, section)
    return DatabaseConfig(group or "", port or 5432, secret or "", key, shard_databases)


# A database name the runner quotes as one identifier; plain ASCII so its 63-byte limit is 63
# characters (PostgreSQL would silently shorten a longer one).
_DATABASE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")


def _parse_shard_databases(
    reader: _Reader, database: Mapping[str, Any]
) -> ShardDatabasesConfig | None:
    field = "database.shard_databases"
    if "shard_databases" not in database:
        return None
    section = reader.section(database, "shard_databases", field, CONFIG_FIELDS[field])
    template = reader.string(
        section, "template", f"{field}.template", _DATABASE_NAME_RE, "app_test_template",
        required=False,
    )  # fmt: skip
    mode = section.get("mode", "template" if section.get("template") else "shared")
    if mode not in SHARD_DATABASE_MODES:
        reader.problem(
            f"{field}.mode",
            f"{_show(mode)} is not valid; use one of {', '.join(SHARD_DATABASE_MODES)}",
        )
        mode = "shared"
    admin = reader.string(
        section, "admin_database", f"{field}.admin_database", _DATABASE_NAME_RE, "postgres",
        required=False,
    )  # fmt: skip
    if mode == "template" and "template" not in section:
        reader.problem(
            f"{field}.template",
            'is required with mode "template": the database each shard\'s own is cloned from, '
            'e.g. "app_test_template"',
        )
    if mode == "shared" and "template" in section:
        reader.problem(
            f"{field}.template", 'is used only with mode "template"; remove it or set the mode'
        )
    if template and template == (admin or "postgres"):
        reader.problem(
            f"{field}.admin_database",
            f"is the template ({template}): PostgreSQL refuses to clone a database with open "
            "sessions, and the runner connects to admin_database to clone; use postgres",
        )
    budget = None
    if section.get("connection_budget") is not None:
        budget = reader.integer(
            section, "connection_budget", f"{field}.connection_budget", None, 1, 100000
        )
    per_shard = None
    if section.get("connections_per_shard") is not None:
        per_shard = reader.integer(
            section, "connections_per_shard", f"{field}.connections_per_shard", None, 1, 1000
        )
    if budget is not None and budget < (per_shard or DEFAULT_CONNECTIONS_PER_SHARD):
        reader.problem(
            f"{field}.connection_budget",
            f"{budget} leaves no room for one shard of "
            f"{per_shard or DEFAULT_CONNECTIONS_PER_SHARD} connections (connections_per_shard)",
        )
    return ShardDatabasesConfig(mode, template, admin, budget, per_shard)


def _parse_secret_key(
    reader: _Reader, section: Mapping[str, Any], secret: str | None
) -> str | None:
    field = "database.secret_kms_key_arn"
    value = section.get("secret_kms_key_arn")
    if isinstance(value, str) and ":alias/" in value:
        reader.problem(
            field,
            f"{_show(value)} is an alias; IAM grants kms:Decrypt on the key ARN only. Use the "
            "key's ARN (aws kms describe-key --key-id <alias> --query KeyMetadata.Arn)",
        )
        return None
    key = reader.string(
        section,
        "secret_kms_key_arn",
        field,
        _KMS_KEY_ARN_RE,
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        required=False,
    )
    if key and secret:
        key_region = _KMS_KEY_ARN_RE.match(key)["region"]  # type: ignore[index]
        secret_region = _SECRET_ARN_RE.match(secret)["region"]  # type: ignore[index]
        if key_region != secret_region:
            reader.problem(
                field,
                f"is in {key_region} but the secret is in {secret_region}; Secrets Manager uses "
                "a key in the secret's own region",
            )
    return key


def _parse_image(reader: _Reader, raw: Mapping[str, Any]) -> ImageConfig:
    section = reader.section(raw, "image", "image", CONFIG_FIELDS["image"])
    tag = reader.string(section, "tag", "image.tag", _TAG_RE, "v1.4.2", required=False)
    digest = reader.string(
        section, "digest", "image.digest", _DIGEST_RE, "sha256:" + "0" * 64, required=False
    )
    if "tag" in section and "digest" in section:
        reader.problem("image", 'set either "tag" or "digest", not both')
    elif "tag" not in section and "digest" not in section:
        reader.problem("image", 'is required: {"tag": "v1.4.2"} or {"digest": "sha256:..."}')
    if tag == "latest":
        reader.problem(
            "image.tag",
            '"latest" cannot be pushed twice to an immutable repository; '
            'use a version like "v1.4.2"',
        )
    return ImageConfig(tag=tag, digest=digest)


def _parse_runner(reader: _Reader, raw: Mapping[str, Any]) -> RunnerConfig:
    section = reader.section(raw, "runner", "runner", CONFIG_FIELDS["runner"])
    memory = reader.integer(section, "memory_mb", "runner.memory_mb", 2048, 128, 10240)
    timeout = reader.integer(section, "timeout_seconds", "runner.timeout_seconds", 900, 1, 900)
    if "timeout_seconds" in section and timeout == 900 and section["timeout_seconds"] != 900:
        reader.problems[-1] += " (Lambda stops at 15 minutes; use the Fargate path for longer runs)"
    storage = reader.integer(
        section, "ephemeral_storage_mb", "runner.ephemeral_storage_mb", 1024, 512, 10240
    )
    concurrency = None
    if section.get("reserved_concurrency") is not None:
        concurrency = reader.integer(
            section, "reserved_concurrency", "runner.reserved_concurrency", None, 1, 1000
        )
    commands = reader.string_list(
        section,
        "commands",
        "runner.commands",
        _COMMAND_RE,
        "scribe:generate",
        minimum=1,
        default=list(KNOWN_COMMANDS),
    )
    max_shards = reader.integer(
        section,
        "max_shards",
        "runner.max_shards",
        DEFAULT_MAX_SHARDS,
        1,
        MAX_SHARDS_LIMIT,
    )
    if isinstance(section.get("max_shards"), int) and section["max_shards"] > MAX_SHARDS_LIMIT:
        reader.problems[-1] += " (a Step Functions Map runs at most 40 inline iterations at once)"
    return RunnerConfig(
        memory or 2048,
        timeout or 900,
        storage or 1024,
        concurrency,
        commands,
        max_shards or DEFAULT_MAX_SHARDS,
    )


def _parse_report_processor(reader: _Reader, raw: Mapping[str, Any]) -> ReportProcessorConfig:
    field = "report_processor"
    section = reader.section(raw, field, field, CONFIG_FIELDS[field])
    memory = reader.integer(section, "memory_mb", f"{field}.memory_mb", 512, 128, 10240)
    timeout = reader.integer(section, "timeout_seconds", f"{field}.timeout_seconds", 120, 1, 900)
    concurrency = None
    if section.get("reserved_concurrency") is not None:
        concurrency = reader.integer(
            section, "reserved_concurrency", f"{field}.reserved_concurrency", None, 1, 1000
        )
    template = section.get("source_url_template")
    if template is not None:
        problem = (
            validate_template(template)
            if isinstance(template, str)
            else "must be a string like https://github.com/org/app/blob/{app_version}/{path}#L{line}"
        )
        if problem:
            reader.problem(f"{field}.source_url_template", problem)
            template = None
    return ReportProcessorConfig(memory or 512, timeout or 120, concurrency, template)


def _parse_fargate(reader: _Reader, raw: Mapping[str, Any]) -> FargateConfig:
    section = reader.section(raw, "fargate", "fargate", CONFIG_FIELDS["fargate"])
    enabled = reader.boolean(section, "enabled", "fargate.enabled", False)
    cpu = section.get("cpu", 1024)
    if cpu not in FARGATE_MEMORY_BY_CPU or isinstance(cpu, bool):
        choices = ", ".join(str(c) for c in FARGATE_MEMORY_BY_CPU)
        reader.problem(
            "fargate.cpu", f"{_show(cpu)} is not a Fargate CPU size; use one of {choices}"
        )
        cpu = 1024
    low, high = FARGATE_MEMORY_BY_CPU[cpu]
    memory = reader.integer(section, "memory_mb", "fargate.memory_mb", max(low, 4096), 512, 122880)
    if memory is not None and not low <= memory <= high:
        reader.problem(
            "fargate.memory_mb", f"{memory} does not fit cpu {cpu}; use {low} to {high} MiB"
        )
    return FargateConfig(enabled, cpu, memory or low)


def _parse_schedules(
    reader: _Reader,
    raw: Mapping[str, Any],
    commands: tuple[str, ...],
    fargate_enabled: bool,
    prefix: str | None,
) -> tuple[Schedule, ...]:
    default = [
        {"name": "nightly", "cron": NIGHTLY_CRON, "runs": [{"command": c} for c in KNOWN_COMMANDS]}
    ]
    value = raw.get("schedules", default)
    if not isinstance(value, list):
        reader.problem("schedules", "must be a list of {name, cron, runs}")
        return ()
    schedules = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        field = f"schedules[{index}]"
        if not isinstance(item, dict):
            reader.problem(field, 'must be an object like {"name": "nightly", "cron": ...}')
            continue
        reader.unknown_keys(item, field, CONFIG_FIELDS["schedules[]"])
        name = reader.string(item, "name", f"{field}.name", _SCHEDULE_NAME_RE, "nightly")
        if name in seen:
            reader.problem(f"{field}.name", f'"{name}" is used twice; schedule names must differ')
        seen.add(name or "")
        if name and prefix and len(f"{prefix}-{name}") > RULE_NAME_LIMIT:
            rule = f"{prefix}-{name}"
            reader.problem(
                f"{field}.name",
                f'makes the EventBridge rule name "{rule}" {len(rule)} characters long; '
                f"EventBridge allows {RULE_NAME_LIMIT}: shorten this name to at most "
                f"{RULE_NAME_LIMIT - len(prefix) - 1} characters (or shorten project/environment)",
            )
        expression = item.get("cron", NIGHTLY_CRON)
        schedule_problem = _schedule_problem(expression)
        if schedule_problem:
            reader.problem(f"{field}.cron", schedule_problem)
        target = item.get("target", "lambda")
        if target not in ("lambda", "fargate"):
            reader.problem(
                f"{field}.target", f'{_show(target)} is not valid; use "lambda" or "fargate"'
            )
        elif target == "fargate" and not fargate_enabled:
            reader.problem(
                f"{field}.target",
                '"fargate" needs the Fargate path; '
                'set "fargate": {"enabled": true} or use "lambda"',
            )
        enabled = reader.boolean(item, "enabled", f"{field}.enabled", True)
        runs = _parse_runs(reader, item.get("runs"), f"{field}.runs", commands)
        shards = _parse_shards(reader, item, field, target, runs)
        if name and schedule_problem is None:
            schedules.append(Schedule(name, expression, str(target), runs, enabled, shards))
    return tuple(schedules)


def _parse_runs(
    reader: _Reader, value: Any, field: str, commands: tuple[str, ...]
) -> tuple[ScheduledRun, ...]:
    if not isinstance(value, list) or not value:
        reader.problem(field, 'need at least 1 run like {"command": "test", "args": []}')
        return ()
    if len(value) > 5:
        reader.problem(
            field,
            f"has {len(value)} runs; EventBridge allows 5 targets per rule, "
            "so split them over several schedules",
        )
    runs = []
    for index, item in enumerate(value):
        run_field = f"{field}[{index}]"
        if not isinstance(item, dict):
            reader.problem(run_field, 'must be an object like {"command": "test", "args": []}')
            continue
        reader.unknown_keys(item, run_field, CONFIG_FIELDS["schedules[].runs[]"])
        command = item.get("command")
        if command not in commands:
            reader.problem(
                f"{run_field}.command",
                f"{_show(command)} is not in runner.commands ({', '.join(commands)}); "
                "add it there or pick one of those",
            )
            continue
        args = item.get("args", [])
        if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
            reader.problem(
                f"{run_field}.args", 'must be a list of strings like ["--filter", "Api"]'
            )
            continue
        for arg_index, arg in enumerate(args):
            if any(ch in arg for ch in "\x00\r\n") or len(arg) > 512:
                reader.problem(
                    f"{run_field}.args[{arg_index}]",
                    "must be at most 512 characters without NUL or line breaks",
                )
        runs.append(ScheduledRun(command, tuple(args)))
    return tuple(runs)


def _parse_shards(
    reader: _Reader,
    item: Mapping[str, Any],
    field: str,
    target: Any,
    runs: tuple[ScheduledRun, ...],
) -> int | None:
    if item.get("shards") is None:
        return None
    shards = reader.integer(item, "shards", f"{field}.shards", None, 2, MAX_SHARDS_LIMIT)
    if shards is None:
        return None
    if target != "lambda":
        reader.problem(
            f"{field}.shards",
            'needs "target": "lambda": a sharded run fans out over runner Lambdas (a run '
            "longer than 15 minutes is what sharding splits); remove shards or the target",
        )
    if runs and not any(run.command == "test" for run in runs):
        reader.problem(
            f"{field}.shards",
            'shards only the "test" command and this schedule has no "test" run; remove shards '
            'or add {"command": "test"}',
        )
    return shards


def _check_shards(reader: _Reader, schedules: tuple[Schedule, ...], runner: RunnerConfig) -> None:
    """A schedule asking for more shards than runner.max_shards would be capped every night."""
    for index, schedule in enumerate(schedules):
        if schedule.shards is not None and schedule.shards > runner.max_shards:
            reader.problem(
                f"schedules[{index}].shards",
                f"{schedule.shards} is more than runner.max_shards ({runner.max_shards}), so "
                f"only {runner.max_shards} would ever start; lower shards or raise "
                f"runner.max_shards (up to {MAX_SHARDS_LIMIT})",
            )


# --------------------------------------------------------------------------- schedule arithmetic

_DAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_HOURS_IN_A_MONTH = 31 * 24


def _schedule_problem(expression: Any) -> str | None:
    """What is wrong with an EventBridge schedule expression, or None."""
    usage = 'use "cron(0 2 * * ? *)" (six fields, UTC) or "rate(1 day)"'
    if not isinstance(expression, str):
        return f"{_show(expression)} is not an EventBridge schedule; {usage}"
    if expression.startswith("rate("):
        rate = _RATE_RE.match(expression)
        if rate is None:
            return f'{_show(expression)} is not a rate; use "rate(1 day)" or "rate(2 days)"'
        value, unit = int(rate["value"]), rate["unit"]
        if (value == 1) == bool(rate["plural"]):
            right = f"rate({value} {unit}{'' if value == 1 else 's'})"
            return (
                f"{_show(expression)}: EventBridge wants the singular unit for 1 and the plural "
                f'otherwise; use "{right}"'
            )
        return None
    cron = _CRON_RE.match(expression)
    if cron is None:
        return f"{_show(expression)} is not an EventBridge schedule; {usage}"
    minutes, hours, day_of_month, _month, day_of_week, _year = cron["fields"].split(" ")
    if (day_of_month == "?") == (day_of_week == "?"):
        return (
            f'{_show(expression)}: EventBridge needs "?" in exactly one of day-of-month (3rd '
            'field) and day-of-week (5th field); use "cron(0 2 * * ? *)" for daily or '
            '"cron(0 3 ? * SUN *)" for weekly'
        )
    if "?" in minutes + hours + _month + _year:
        return f'{_show(expression)}: "?" is allowed only in day-of-month and day-of-week'
    if _cron_values(minutes, 59) is None or _cron_values(hours, 23) is None:
        return (
            f"{_show(expression)}: minutes (0-59) and hours (0-23) take numbers, ranges, lists, "
            '"*" and steps like "*/15"'
        )
    return None


def _cron_values(field: str, highest: int) -> frozenset[int] | None:
    """The values a numeric cron field selects (`*`, `5`, `1-5`, `*/15`, `0-30/10`, lists)."""
    values: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        if step_text and not step_text.isdigit():
            return None
        step = int(step_text) if step_text else 1
        if base == "*":
            low, high = 0, highest
        elif re.fullmatch(r"\d+(-\d+)?", base):
            low_text, _, high_text = base.partition("-")
            low = int(low_text)
            high = int(high_text) if high_text else (highest if step_text else low)
        else:
            return None
        if step < 1 or not 0 <= low <= high <= highest:
            return None
        values.update(range(low, high + 1, step))
    return frozenset(values)


def _fire_times(expression: str) -> frozenset[tuple[int, int]] | None:
    """The (hour, minute) pairs a cron schedule fires at, on the days it fires; None for rate()."""
    cron = _CRON_RE.match(expression)
    if cron is None:
        return None
    minutes, hours = cron["fields"].split(" ")[:2]
    minute_values = _cron_values(minutes, 59) or frozenset()
    hour_values = _cron_values(hours, 23) or frozenset()
    return frozenset((hour, minute) for hour in hour_values for minute in minute_values)


def _longest_gap_hours(expression: str) -> int:
    """An upper bound on the hours between two consecutive firings of a schedule."""
    rate = _RATE_RE.match(expression)
    if rate:
        minutes = int(rate["value"]) * {"minute": 1, "hour": 60, "day": 24 * 60}[rate["unit"]]
        return max(1, -(-minutes // 60))  # whole hours, rounded up
    cron = _CRON_RE.match(expression)
    assert cron is not None  # validated before
    _minutes, hours, day_of_month, month, day_of_week, _year = cron["fields"].split(" ")
    if month != "*" or day_of_month not in ("*", "?"):
        return _HOURS_IN_A_MONTH
    if day_of_week in ("*", "?"):
        fired = sorted(_cron_values(hours, 23) or {0})
        gaps = [b - a for a, b in zip(fired, fired[1:], strict=False)]
        return max([*gaps, 24 - fired[-1] + fired[0]])
    days = _days_of_week(day_of_week)
    if not days:
        return _HOURS_IN_A_MONTH  # "L" or "#": monthly
    ordered = sorted(days)
    gaps = [b - a for a, b in zip(ordered, ordered[1:], strict=False)]
    return 24 * max([*gaps, 7 - ordered[-1] + ordered[0]])


def _days_of_week(field: str) -> set[int]:
    days: set[int] = set()
    for part in field.upper().split(","):
        low_text, _, high_text = part.partition("-")
        low = _DAY_NAMES.get(low_text) or (int(low_text) if low_text.isdigit() else None)
        high = _DAY_NAMES.get(high_text) or (int(high_text) if high_text.isdigit() else None)
        if low is None or (high_text and high is None) or not 1 <= low <= 7:
            return set()
        days.update(range(low, (high or low) + 1))
    return days


def _check_simultaneous_targets(
    reader: _Reader, schedules: tuple[Schedule, ...], reserved: int | None
) -> None:
    """Every target of a rule fires at the same instant, and so do rules at the same time: with
    reserved concurrency below that count, the extra invocations are throttled every time."""
    if reserved is None:
        return
    lambda_schedules = [s for s in schedules if s.enabled and s.target == "lambda"]
    # A rate() schedule's phase is set by when the rule was created: assume it can meet any other.
    floating = [s for s in lambda_schedules if _fire_times(s.expression) is None]
    fixed = {s.name: _fire_times(s.expression) or frozenset() for s in lambda_schedules}
    instants = {instant for times in fixed.values() for instant in times} or {(0, 0)}
    together_at = {
        instant: [s for s in lambda_schedules if instant in fixed[s.name]] + floating
        for instant in sorted(instants)
    }

    def invocations(schedule: Schedule) -> int:
        # A sharded run's shards run at once, up to the state machine's MaxConcurrency.
        return sum(min(schedule.invocations(run), max(1, reserved)) for run in schedule.runs)

    (hour, minute), together = max(
        together_at.items(), key=lambda item: sum(invocations(s) for s in item[1])
    )
    peak = sum(invocations(s) for s in together)
    if peak <= reserved:
        return
    parts = ", ".join(f'"{s.name}" ({_plural(len(s.runs), "run")})' for s in together)
    when = f" at {hour:02d}:{minute:02d} UTC" if any(fixed.values()) else ""
    reader.problem(
        "runner.reserved_concurrency",
        f"{reserved} is fewer than the {peak} runner invocations the schedules start at the same "
        f"time ({parts}{when}), so {peak - reserved} would be throttled "
        f"every time; raise it to at least {peak}, remove it (the function then uses the "
        "account's unreserved concurrency), or move runs to a schedule at another time",
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _check_missing_result_window(
    reader: _Reader, schedules: tuple[Schedule, ...], hours: int
) -> None:
    """The missing-result alarm window must cover the longest gap between scheduled `test` runs
    plus the usual lateness, or it fires on nights when nothing is wrong."""
    gaps = [
        (_longest_gap_hours(s.expression), s)
        for s in schedules
        if s.enabled and any(run.command == "test" for run in s.runs)
    ]
    if not gaps:
        return
    gap, schedule = min(gaps, key=lambda pair: pair[0])
    needed = min(gap + RESULT_JITTER_HOURS, MAX_ALARM_WINDOW_HOURS)
    if hours < needed:
        reader.problem(
            "alarms.missing_result_hours",
            f'{hours} is shorter than the gap between scheduled "test" runs (up to {gap} hours '
            f'for schedule "{schedule.name}") plus {RESULT_JITTER_HOURS} hours for a late '
            f"result, so the alarm would fire when nothing is wrong; use at least {needed}",
        )


def _check_image_outlives_lifecycle(
    reader: _Reader, image: ImageConfig, retention: RetentionConfig
) -> None:
    if image.tag and image.tag.startswith(retention.ci_tag_prefixes or ("\0",)):
        reader.problem(
            "image.tag",
            f'"{image.tag}" starts with one of retention.ci_tag_prefixes, whose images expire '
            f"beyond the newest {retention.keep_images}, which can remove the deployed image; "
            "deploy a release tag or an image digest",
        )


def _parse_alarms(reader: _Reader, raw: Mapping[str, Any]) -> AlarmConfig:
    section = reader.section(raw, "alarms", "alarms", CONFIG_FIELDS["alarms"])
    threshold = reader.number(
        section, "pass_rate_threshold", "alarms.pass_rate_threshold", 100, 0, 100
    )
    hours = reader.integer(
        section,
        "missing_result_hours",
        "alarms.missing_result_hours",
        DEFAULT_MISSING_RESULT_HOURS,
        1,
        MAX_ALARM_WINDOW_HOURS,
    )
    asked = section.get("missing_result_hours")
    if isinstance(asked, int) and asked > MAX_ALARM_WINDOW_HOURS:
        reader.problems[-1] += " (CloudWatch evaluates at most 7 days of hourly periods)"
    minimum = reader.integer(section, "minimum_tests", "alarms.minimum_tests", 1, 1, 1_000_000)
    errors = reader.integer(
        section, "runner_errors_threshold", "alarms.runner_errors_threshold", 1, 1, 1000
    )
    throttles = reader.integer(
        section, "runner_throttles_threshold", "alarms.runner_throttles_threshold", 1, 1, 1000
    )
    email = reader.string(
        section, "email", "alarms.email", _EMAIL_RE, "team@example.com", required=False
    )
    run_not_passed = reader.boolean(section, "run_not_passed", "alarms.run_not_passed", True)
    new_failures = reader.boolean(section, "new_failures", "alarms.new_failures", False)
    return AlarmConfig(
        threshold,
        hours or DEFAULT_MISSING_RESULT_HOURS,
        errors or 1,
        throttles or 1,
        email,
        minimum or 1,
        run_not_passed,
        new_failures,
    )


def _parse_retention(reader: _Reader, raw: Mapping[str, Any]) -> RetentionConfig:
    section = reader.section(raw, "retention", "retention", CONFIG_FIELDS["retention"])
    # 30 days by default: test logs are also kept in the results bucket, and CloudWatch Logs
    # storage is billed per GB-month. Compliance baselines (checkov CKV_AWS_338) want >= 365,
    # which config/example.json sets.
    log_days = section.get("log_days", 30)
    if log_days not in LOG_RETENTION_DAYS or isinstance(log_days, bool):
        choices = ", ".join(str(d) for d in LOG_RETENTION_DAYS)
        reader.problem(
            "retention.log_days",
            f"{_show(log_days)} is not allowed by CloudWatch Logs; use one of {choices}",
        )
        log_days = 30
    results = reader.integer(section, "results_days", "retention.results_days", 90, 1, 3650)
    noncurrent = reader.integer(
        section, "noncurrent_version_days", "retention.noncurrent_version_days", 30, 1, 3650
    )
    untagged = reader.integer(
        section, "untagged_image_days", "retention.untagged_image_days", 7, 1, 3650
    )
    prefixes = reader.string_list(
        section,
        "ci_tag_prefixes",
        "retention.ci_tag_prefixes",
        _TAG_PREFIX_RE,
        "ci-",
        minimum=0,
        default=[],
    )
    keep = reader.integer(section, "keep_images", "retention.keep_images", 20, 1, 1000)
    if "keep_images" in section and not prefixes:
        reader.problem(
            "retention.keep_images",
            "counts only images whose tag starts with one of retention.ci_tag_prefixes (release "
            'tags are never expired); add "ci_tag_prefixes": ["ci-"] or remove keep_images',
        )
    return RetentionConfig(
        log_days, results or 90, noncurrent or 30, untagged or 7, prefixes, keep or 20
    )


def _parse_encryption(reader: _Reader, raw: Mapping[str, Any]) -> EncryptionConfig:
    section = reader.section(raw, "encryption", "encryption", CONFIG_FIELDS["encryption"])
    value = section.get("customer_managed_key", False)
    if not isinstance(value, bool):
        reader.problem(
            "encryption.customer_managed_key",
            f"must be true (create a customer-managed KMS key for this stack) or false "
            f"(AWS-managed keys), got {_show(value)}",
        )
        value = False
    return EncryptionConfig(customer_managed_key=value)


def _parse_notifications(reader: _Reader, raw: Mapping[str, Any]) -> NotificationsConfig:
    field = "notifications"
    section = reader.section(raw, field, field, CONFIG_FIELDS[field])
    emails = reader.string_list(
        section,
        "emails",
        f"{field}.emails",
        _EMAIL_RE,
        "team@example.com",
        minimum=0,
        default=[],
    )
    if len(emails) > MAX_NOTIFICATION_EMAILS:
        reader.problem(
            f"{field}.emails",
            f"lists {len(emails)} addresses; at most {MAX_NOTIFICATION_EMAILS} (each needs its "
            "own confirmation): subscribe a mailing list instead",
        )
    return NotificationsConfig(emails)


def _parse_state_backend(reader: _Reader, raw: Mapping[str, Any]) -> S3StateBackend | None:
    if raw.get("state_backend") is None:
        return None
    section = reader.section(raw, "state_backend", "state_backend", CONFIG_FIELDS["state_backend"])
    s3 = reader.section(section, "s3", "state_backend.s3", CONFIG_FIELDS["state_backend.s3"])
    if not s3:
        reader.problem(
            "state_backend.s3", 'is required: {"bucket": ..., "key": ..., "region": ...}'
        )
        return None
    bucket = reader.string(s3, "bucket", "state_backend.s3.bucket", _BUCKET_RE, "acme-tf-state")
    key = reader.string(
        s3, "key", "state_backend.s3.key", re.compile(r"^[\w./-]{1,1024}$"), "ltr/dev.tfstate"
    )
    region = reader.string(s3, "region", "state_backend.s3.region", _REGION_RE, "eu-west-1")
    if bucket and key and region:
        return S3StateBackend(bucket, key, region)
    return None


# --------------------------------------------------------------------------- locating files


def load_config(path_or_env: str | os.PathLike[str]) -> StackConfig:
    """Load the file at that path, or `config/<env>.json` when given an environment name (a
    string that names no existing file and is a valid environment name)."""
    text = os.fspath(path_or_env)
    is_name = ENV_NAME_RE.fullmatch(text) and not Path(text).exists()
    path = environment_config_path(text) if is_name else Path(text)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
        raise ConfigError(
            source,
            [
                "file not found; create it (copy config/example.json) or pick one of: "
                + ", ".join(known)
            ],
        ) from None
    except OSError as error:
        raise ConfigError(source, [f"cannot read the file: {error.strerror}"]) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            source, [f"not valid JSON at line {error.lineno} column {error.colno}: {error.msg}"]
        ) from None
    return parse_config(raw, source)


def environment_config_path(name: str) -> Path:
    """`dev` -> `<repo>/config/dev.json`: the checkout the stack is synthesized from."""
    return CONFIG_DIR / f"{name}.json"


def resolve_config_source(
    environ: Mapping[str, str] | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    config: str | None = None,
    env: str | None = None,
) -> Path:
    """The config file to use; `main.py` (synth, deploy) and `ltr` both decide here.

    The first given of: a path (`ltr --config`), an environment name (`ltr --env`), $LTR_CONFIG
    (a path), $LTR_ENV (a name), the cdktf context keys `ltrConfig` (a path) and `ltrEnv` (a
    name), else config/example.json. A path is taken as given (relative to the working
    directory); a name means `config/<name>.json` in the repository and must match
    ENV_NAME_RE, so it can never point elsewhere. Raises ConfigError for an invalid name."""
    environ = os.environ if environ is None else environ
    context = context or {}
    candidates: tuple[tuple[str, object, bool], ...] = (
        ("--config", config, True),
        ("--env", env, False),
        ("LTR_CONFIG", environ.get("LTR_CONFIG"), True),
        ("LTR_ENV", environ.get("LTR_ENV"), False),
        ("cdktf context ltrConfig", context.get("ltrConfig"), True),
        ("cdktf context ltrEnv", context.get("ltrEnv"), False),
    )
    for origin, value, is_path in candidates:
        if not value:
            continue
        text = str(value)
        if is_path:
            return Path(text)
        if not ENV_NAME_RE.fullmatch(text):
            raise ConfigError(
                f"{origin} {text[:80]!r}",
                [
                    "not an environment name: use lower-case letters, digits and '-' (it "
                    "names config/<env>.json); give a file with --config or LTR_CONFIG instead"
                ],
            )
        return environment_config_path(text)
    return DEFAULT_CONFIG_PATH
