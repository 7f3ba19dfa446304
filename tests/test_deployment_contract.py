"""What the stack hands each function (modules/contract.py) is what each function reads.

The stack synthesizes these same dictionaries (tests/infra checks the synthesized JSON); here the
deployed code itself reads them back.
"""

from __future__ import annotations

import sys

from runner.config import RunnerConfig

from modules.config import DEFAULT_CONFIG_PATH, load_config
from modules.contract import (
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
