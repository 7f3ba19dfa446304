"""What the stack hands each function: environment variables, handlers, service names.

One home for the deployment contract between the stack (modules/runner.py, reporting.py,
fargate.py) and the code it deploys (runner/config.py, report_processor/handler.py), so the
tests, the demo and `ltr`'s emulator fixtures build exactly what the stack deploys.

Import-light on purpose: no cdktf, no provider bindings (importing those takes ~20 s), only
modules.config, which is itself free of them.
"""

from __future__ import annotations

import json

from modules.config import StackConfig

# ----------------------------------------------------------------------------- variable names
# Read by runner/config.py (Lambda and Fargate alike).
RESULTS_BUCKET = "RESULTS_BUCKET"
DB_SECRET_ARN = "DB_SECRET_ARN"  # noqa: S105 (a variable name, not a secret)
RUNNER_COMMANDS = "RUNNER_COMMANDS"  # JSON list of the allowlisted artisan commands
PROJECT = "PROJECT"
ENVIRONMENT = "ENVIRONMENT"
# Sharded runs (issue 13), read by runner/config.py; docs/sharding.md describes each.
MAX_SHARDS = "MAX_SHARDS"  # config runner.max_shards
RESERVED_CONCURRENCY = "RESERVED_CONCURRENCY"  # config runner.reserved_concurrency
DB_CONNECTION_BUDGET = "DB_CONNECTION_BUDGET"
DB_CONNECTIONS_PER_SHARD = "DB_CONNECTIONS_PER_SHARD"
DB_SHARD_MODE = "DB_SHARD_MODE"  # "template" or "shared"
DB_TEMPLATE = "DB_TEMPLATE"
DB_ADMIN_DATABASE = "DB_ADMIN_DATABASE"
# Read by report_processor/handler.py (and by Powertools itself).
METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
# Optional: links each failing line of a summary to the source (report_processor/location.py).
REPORT_SOURCE_URL_TEMPLATE = "REPORT_SOURCE_URL_TEMPLATE"
# Where the runner's app lives, to show paths relative to it; the default is the runner image's
# app directory (report_processor.location.DEFAULT_APP_ROOT), so the stack does not set it.
REPORT_APP_ROOT = "REPORT_APP_ROOT"
# The report processor reads RUNNER_COMMANDS too: the Command metric dimension takes only
# values from the deployed allowlist (issue 9), in the same JSON format the runner reads.
NOTIFICATION_TOPIC_ARN = "NOTIFICATION_TOPIC_ARN"

# ----------------------------------------------------------------------------- handlers
REPORT_PROCESSOR_HANDLER = "report_processor.handler.handler"
REPORT_PROCESSOR_RUNTIME = "python3.12"
REPORT_PROCESSOR_SERVICE = "report-processor"
# The merge step of a sharded run: its own function, deployed from the report processor's zip.
SHARD_MERGE_HANDLER = "report_processor.merge_handler.handler"
SHARD_MERGE_SERVICE = "shard-merge"
# The runner image's own CMD (runner_image/Dockerfile); the stack does not override it.
RUNNER_IMAGE_HANDLER = "runner.handler.handler"
# The Fargate task runs the runner's command line instead of the Lambda runtime client.
# The image's full interpreter: the Lambda base image's bare `python` is not guaranteed on PATH
# outside the Lambda bootstrap, and this one has the runner's pinned dependencies.
FARGATE_ENTRY_POINT = ("/var/lang/bin/python3.12", "-m", "runner")


def commands_value(config: StackConfig) -> str:
    """The allowlist as both functions read it: a JSON list of command names."""
    return json.dumps(list(config.runner.commands))


def runner_environment(config: StackConfig, bucket_name: str) -> dict[str, str]:
    """The runner's variables, on Lambda and Fargate alike. `bucket_name` is a Terraform
    reference in the stack and the plain name elsewhere."""
    env = {
        RESULTS_BUCKET: bucket_name,
        DB_SECRET_ARN: config.database.secret_arn,
        RUNNER_COMMANDS: commands_value(config),
        PROJECT: config.project,
        ENVIRONMENT: config.environment,
    }
    # The plan caps the number of shards by these (reserved concurrency unset: no such cap).
    env[MAX_SHARDS] = str(config.runner.max_shards)
    if config.runner.reserved_concurrency is not None:
        env[RESERVED_CONCURRENCY] = str(config.runner.reserved_concurrency)
    env.update(shard_database_environment(config))
    return env


def shard_database_environment(config: StackConfig) -> dict[str, str]:
    """database.shard_databases as the runner reads it (runner/config.py); what is not
    configured is not set, so the runner's defaults apply (docs/sharding.md#databases)."""
    shards = config.database.shard_databases
    if shards is None:
        return {}
    env = {DB_SHARD_MODE: shards.mode}
    optional = {
        DB_TEMPLATE: shards.template,
        DB_ADMIN_DATABASE: shards.admin_database,
        DB_CONNECTION_BUDGET: shards.connection_budget,
        DB_CONNECTIONS_PER_SHARD: shards.connections_per_shard,
    }
    env.update({name: str(value) for name, value in optional.items() if value is not None})
    return env


def shard_merge_environment(config: StackConfig) -> dict[str, str]:
    """The merge function reads the same settings as the report processor (limits, namespace)."""
    return {**report_processor_environment(config), SERVICE_NAME: SHARD_MERGE_SERVICE}


def report_processor_environment(
    config: StackConfig, notification_topic_arn: str | None = None
) -> dict[str, str]:
    """The report processor's variables. `notification_topic_arn` is the run notification
    topic (a Terraform reference in the stack, the emulator's ARN elsewhere); without one the
    variable is left out and no notification is sent (tests and the demo without a topic)."""
    environment = {
        PROJECT: config.project,
        ENVIRONMENT: config.environment,
        METRICS_NAMESPACE: config.metrics_namespace,
        SERVICE_NAME: REPORT_PROCESSOR_SERVICE,
        RUNNER_COMMANDS: commands_value(config),
    }
    if notification_topic_arn is not None:
        environment[NOTIFICATION_TOPIC_ARN] = notification_topic_arn
    template = config.report_processor.source_url_template
    if template:
        environment[REPORT_SOURCE_URL_TEMPLATE] = template
    return environment
