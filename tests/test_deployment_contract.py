"""What the stack hands each function (modules/contract.py) is what each function reads.

The stack synthesizes these same dictionaries (tests/infra checks the synthesized JSON); here the
deployed code itself reads them back.
"""

from __future__ import annotations

import sys

from runner.config import RunnerConfig

from modules.config import DEFAULT_CONFIG_PATH, load_config
from modules.contract import (
    NOTIFICATION_TOPIC_ARN,
    REPORT_PROCESSOR_HANDLER,
    RUNNER_IMAGE_HANDLER,
    SHARD_MERGE_HANDLER,
    report_processor_environment,
    runner_environment,
    shard_merge_environment,
)
from report_processor.handler import HandlerConfig

CONFIG = load_config(DEFAULT_CONFIG_PATH)


def test_the_runner_reads_the_environment_the_stack_gives_it():
    runner = RunnerConfig.from_env(runner_environment(CONFIG, "the-bucket"))
    assert runner.results_bucket == "the-bucket"
    assert runner.db_secret_arn == CONFIG.database.secret_arn
    assert runner.commands == CONFIG.runner.commands
    assert (runner.project, runner.environment) == (CONFIG.project, CONFIG.environment)


def test_the_report_processor_reads_the_environment_the_stack_gives_it():
    env = report_processor_environment(CONFIG)
    handler = HandlerConfig.from_env(env)
    assert (handler.project, handler.environment) == (CONFIG.project, CONFIG.environment)
    assert handler.namespace == CONFIG.metrics_namespace
    # The deployed allowlist, in the runner's own format (the Command metric dimension, issue 9).
    assert RunnerConfig.from_env(env).commands == CONFIG.runner.commands


def test_the_report_processor_gets_the_notification_topic_only_when_there_is_one():
    arn = "arn:aws:sns:us-east-1:123456789012:ltr-example-test-runs"
    with_topic = report_processor_environment(CONFIG, arn)
    assert with_topic[NOTIFICATION_TOPIC_ARN] == arn
    # Everything else is the same; without a topic (tests, the demo) the variable is absent.
    without = report_processor_environment(CONFIG)
    assert NOTIFICATION_TOPIC_ARN not in without
    assert {k: v for k, v in with_topic.items() if k != NOTIFICATION_TOPIC_ARN} == without


def test_the_source_url_template_reaches_the_report_processor():
    from dataclasses import replace

    from report_processor.config import ProcessorConfig
    from report_processor.location import DEFAULT_APP_ROOT

    assert "REPORT_SOURCE_URL_TEMPLATE" not in report_processor_environment(CONFIG)
    template = "https://github.com/acme/shop/blob/{app_version}/{path}#L{line}"
    stack = replace(
        CONFIG, report_processor=replace(CONFIG.report_processor, source_url_template=template)
    )
    paths = ProcessorConfig.from_env(report_processor_environment(stack)).paths
    assert (paths.app_root, paths.source_url_template) == (DEFAULT_APP_ROOT, template)


def test_the_merge_function_reads_the_environment_the_stack_gives_it():
    merge = HandlerConfig.from_env(shard_merge_environment(CONFIG))
    assert (merge.project, merge.environment) == (CONFIG.project, CONFIG.environment)
    assert merge.namespace == CONFIG.metrics_namespace  # ShardMakespanSeconds beside the others
    assert merge.commands == frozenset(CONFIG.runner.commands)


def test_handlers_name_real_functions():
    import importlib

    for dotted in (REPORT_PROCESSOR_HANDLER, RUNNER_IMAGE_HANDLER, SHARD_MERGE_HANDLER):
        module, _, function = dotted.rpartition(".")
        assert callable(getattr(importlib.import_module(module), function)), dotted


def test_the_contract_module_stays_import_light():
    import subprocess

    code = (
        "import sys, modules.contract; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('cdktf', 'constructs', 'jsii', "
        "'cdktf_cdktf_provider_aws', 'boto3')]; print(heavy); sys.exit(bool(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_runner_reads_the_shard_caps_the_stack_gives_it():
    import dataclasses

    from modules.contract import MAX_SHARDS, RESERVED_CONCURRENCY

    config = dataclasses.replace(
        CONFIG, runner=dataclasses.replace(CONFIG.runner, reserved_concurrency=7)
    )
    env = runner_environment(config, "the-bucket")
    assert env[RESERVED_CONCURRENCY] == "7"
    limits = RunnerConfig.from_env(env).shard_limits
    assert limits.reserved_concurrency == 7
    assert limits.max_shards == getattr(config.runner, "max_shards", None)
    if getattr(config.runner, "max_shards", None) is not None:
        assert env[MAX_SHARDS] == str(config.runner.max_shards)


def test_the_runner_reads_the_shard_databases_the_stack_gives_it():
    import dataclasses

    from modules.config import ShardDatabasesConfig
    from modules.contract import (
        DB_ADMIN_DATABASE,
        DB_CONNECTION_BUDGET,
        DB_CONNECTIONS_PER_SHARD,
        DB_SHARD_MODE,
        DB_TEMPLATE,
    )

    def with_shards(shards: ShardDatabasesConfig | None):
        database = dataclasses.replace(CONFIG.database, shard_databases=shards)
        return runner_environment(dataclasses.replace(CONFIG, database=database), "the-bucket")

    env = with_shards(ShardDatabasesConfig("template", "app_template", "maintenance", 20, 3))
    assert (env[DB_SHARD_MODE], env[DB_TEMPLATE], env[DB_ADMIN_DATABASE]) == (
        "template",
        "app_template",
        "maintenance",
    )
    runner = RunnerConfig.from_env(env)
    database = runner.shard_database
    assert (database.mode, database.template, database.admin_database) == (
        "template",
        "app_template",
        "maintenance",
    )
    assert runner.shard_limits.db_connection_budget == 20
    assert runner.shard_limits.db_connections_per_shard == 3
    assert (env[DB_CONNECTION_BUDGET], env[DB_CONNECTIONS_PER_SHARD]) == ("20", "3")

    # Not configured: nothing set, the runner's own defaults (every shard on the secret's database).
    bare = RunnerConfig.from_env(with_shards(None))
    assert bare.shard_database.mode == "shared" and bare.shard_database.template is None
    assert not {DB_SHARD_MODE, DB_TEMPLATE, DB_ADMIN_DATABASE} & set(with_shards(None))
    shared = with_shards(ShardDatabasesConfig("shared", connection_budget=10))
    assert shared == {**with_shards(None), DB_SHARD_MODE: "shared", DB_CONNECTION_BUDGET: "10"}
    assert RunnerConfig.from_env(shared).shard_limits.db_connection_budget == 10
