"""A sharded run executed by the emulator's Step Functions interpreter, from the definition the
construct deploys (modules/shard_flow.py), against the real fixture app and PostgreSQL.

What is real: moto runs the state machine (Plan, the Map with its MaxConcurrency, Retry, Catch,
Merge); every Lambda invocation it makes runs a handler in this process (demo/step_functions.py
LambdaStandIn); the runner's plan and every shard are the real runner handler (PHPUnit's own
listing, the packing, plan.json, each shard's generated configuration and uploads) on the real
fixture app, PHP and PostgreSQL; the merge function and the report processor are the real
handlers with the deployed environment.
What is played, by necessity: the Lambda service running the container (the stand-in runs the
handler in-process, one invocation at a time), a Lambda service error (a 500 ServiceException)
and a killed shard (the stand-in answers as Lambda reports its hard timeout, Sandbox.Timedout,
without running it): demo/sharded_sandbox.py ShardedRunner.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import threading
import time
import xml.etree.ElementTree as ET  # noqa: S405 (our own PHPUnit's output, parsed as an oracle)

import pytest

from demo.delivery import NotificationDelivery
from demo.lambda_runtime import lambda_environment
from demo.sharded_sandbox import Sandbox, sharded_sandbox
from demo.step_functions import ServiceUnavailable, run_execution
from ltr.cli import cmd_run
from modules.config import DEFAULT_CONFIG_PATH, ShardDatabasesConfig, load_config
from modules.shard_flow import execution_input
from report_processor.history.testid import stable_test_id

CONFIG = load_config(DEFAULT_CONFIG_PATH)
NAMES = CONFIG.names
BUCKET = NAMES.results_bucket


@pytest.fixture(scope="module")
def harness(postgres):
    with sharded_sandbox(CONFIG, postgres, "sharded_run") as sandbox:
        yield sandbox


def outcomes(junit: bytes | str) -> dict[str, str]:
    """stable test id -> outcome, from a PHPUnit JUnit report (each id once)."""
    root = ET.fromstring(junit)  # noqa: S314
    found: dict[str, str] = {}
    for case in root.iter("testcase"):
        tags = {child.tag for child in case}
        outcome = next((t for t in ("error", "failure", "skipped") if t in tags), "passed")
        test_id = stable_test_id(
            case.get("file"),
            case.get("class") or case.get("classname") or "",
            case.get("name") or "",
        )
        assert test_id not in found, f"{test_id} twice"
        found[test_id] = outcome
    return found


def delivered(harness: Sandbox, run_id: str):
    deliveries = NotificationDelivery(harness.emulator, BUCKET)
    deliveries.seen = {}  # every object of the bucket is new to this delivery
    return [d for d in deliveries.deliver() if f"/{run_id}/" in d.key]


def test_ltr_run_shards_wait_follows_the_execution_and_shows_the_merged_report(harness):
    played = harness.play()
    notifications = NotificationDelivery(harness.emulator, BUCKET)
    out, err, progress = io.StringIO(), io.StringIO(), io.StringIO()
    # The fixture's shards take a fraction of a second: shard 2 is held until ltr has shown it
    # running, so the test sees what a user sees during a long shard.
    shown_running = threading.Event()
    real = played.shard

    def held_shard(event):
        if event["shard"]["index"] == 2:
            shown_running.wait(60)
        return real(event)

    played.shard = held_shard  # type: ignore[method-assign]

    def sleep(seconds: float) -> None:
        time.sleep(min(seconds, 0.3))
        if "slowest still running" in progress.getvalue():
            shown_running.set()
        if shown_running.is_set():
            # Between polls, S3 delivers what landed (the merged junit.xml) to the processor.
            with harness.stand_in.exclusive():
                notifications.deliver()

    argv = ["test", "--shards", "3", "--wait", "--config", str(DEFAULT_CONFIG_PATH)]
    with lambda_environment({**os.environ, **harness.emulator.env}):
        code = cmd_run(argv, out, err, time.monotonic, sleep, progress)
    assert code == 1, err.getvalue()  # the fixture fails tests on purpose: the run did not pass
    assert "over 3 shards on ltr-example-sharded-run" in err.getvalue()
    assert "cap: 3 shards as requested" in err.getvalue()
    lines = progress.getvalue().splitlines()
    assert any(re.search(r"[0-2]/3 shards done; slowest still running: shard \d", x) for x in lines)
    assert any("3/3 shards done" in line or "execution succeeded" in line for line in lines)
    assert "## Shards (3)" in out.getvalue()


def test_a_three_shard_run_merges_into_the_unsharded_runs_tests_and_outcomes(harness):
    harness.play()
    run_id = "20261129T023000Z-shards3"
    execution = run_execution(
        harness.emulator, harness.state_machine_arn, run_id, execution_input("test", [], 3)
    )
    assert execution.status == "SUCCEEDED", execution.failures()
    entered = execution.states_entered()
    assert entered[:3] == ["Plan", "Planned", "Shards"] and entered[-1] == "Merge"
    assert entered.count("RunShard") == 3 and entered.count("ShardDone") == 3
    assert "ShardFailed" not in entered
    result = execution.output
    assert [row["index"] for row in result["shards"]] == [0, 1, 2]
    assert result["tests_not_run"] == 0

    # The runner planned it: PHPUnit's own listing, packed into 3 shards (one file per unit).
    plan_key = result["junit_key"].replace("junit.xml", "plan.json")
    plan = json.loads(harness.text(plan_key))
    assert plan["run_id"] == run_id and plan["shard_count"] == 3
    assert plan["cap"] == {"requested": 3, "applied": 3, "reason": "as requested"}
    planned_files = [c["file"] for shard in plan["shards"] for c in shard["classes"]]
    assert all(f.startswith("tests/") and f.endswith(".php") for f in planned_files)
    # Each shard is the runner's own: its manifest under shards/<i:03d>/, naming its shard.
    for index in range(3):
        manifest = json.loads(
            harness.text(plan_key.replace("plan.json", f"shards/{index:03d}/manifest.json"))
        )
        assert manifest["shard"]["index"] == index and manifest["shard"]["plan_key"] == plan_key

    merged = harness.text(result["junit_key"])
    unsharded = outcomes(harness.unsharded_junit.read_text())
    assert outcomes(merged) == unsharded
    assert plan["tests_total"] == len(unsharded)
    assert all(test_id.startswith("tests/") for test_id in unsharded)  # the file is in the id
    # The fixture prints its database URL: every shard's upload is masked, so is the merge.
    assert harness.database_password not in merged
    # Shard files never reach the report processor as reports; the run-level junit.xml does.
    deliveries = delivered(harness, run_id)
    processed = [
        r for d in deliveries for r in d.response["results"] if r["outcome"] == "processed"
    ]
    assert [r["key"] for r in processed] == [result["junit_key"]]
    pass_rates = [m for d in deliveries for m in d.metrics if m.name == "PassRate"]
    assert len(pass_rates) == 1
    summary = json.loads(harness.text(processed[0]["report_prefix"] + "summary.json"))
    assert summary["metadata"]["run_id"] == run_id
    assert [row["index"] for row in summary["metadata"]["shards"]] == [0, 1, 2]
    assert summary["totals"]["tests"] == len(outcomes(merged))
    markdown = harness.text(processed[0]["report_prefix"] + "summary.md")
    assert "## Shards (3)" in markdown
    assert "could not use pgsql://" in markdown and harness.database_password not in markdown
    # The merge function's own metric for the dashboard.
    assert any('"ShardMakespanSeconds"' in text for text in harness.printed)


def test_a_killed_shard_is_caught_and_the_run_is_error_with_its_tests_not_run(harness):
    # Shard 0's first invocation fails in the Lambda service (retried: runs once more); shard 1
    # is killed (Lambda's timeout: a function error, caught, never retried).
    played = harness.play(kill=frozenset({1}))
    failing_once = {0}
    real = played.shard

    def shard_with_a_service_error(event):
        if event["shard"]["index"] in failing_once:
            failing_once.clear()
            raise ServiceUnavailable("the Lambda service failed the Invoke call")
        return real(event)

    played.shard = shard_with_a_service_error  # type: ignore[method-assign]
    before = len(harness.stand_in.invocations)
    run_id = "20261129T023000Z-killed1"
    execution = run_execution(
        harness.emulator, harness.state_machine_arn, run_id, execution_input("test", [], 3)
    )
    assert execution.status == "SUCCEEDED", execution.failures()
    entered = execution.states_entered()
    assert entered.count("ShardFailed") == 1 and entered.count("ShardDone") == 2
    calls = [
        (i.payload.get("shard", {}).get("index"), i.outcome)
        for i in harness.stand_in.invocations[before:]
        if i.function == NAMES.runner_function and "shard" in i.payload
    ]
    assert calls.count((0, "ServiceException")) == 1 and calls.count((0, "ok")) == 1
    assert calls.count((1, "Sandbox.Timedout")) == 1  # not retried

    result = execution.output
    plan = json.loads(harness.text(result["junit_key"].replace("junit.xml", "plan.json")))
    killed_tests = sum(c["tests"] for c in plan["shards"][1]["classes"])
    assert killed_tests > 0
    assert result["status"] == "error" and result["tests_not_run"] == killed_tests
    deliveries = delivered(harness, run_id)
    [prefix] = [
        r["report_prefix"]
        for d in deliveries
        for r in d.response["results"]
        if r["outcome"] == "processed"
    ]
    summary = json.loads(harness.text(prefix + "summary.json"))
    assert summary["status"] == "error"
    assert summary["metadata"]["tests_not_run"] == killed_tests
    assert summary["metadata"]["shards"][1]["status"] == "timed_out"
    markdown = harness.text(prefix + "summary.md")
    noun = "test" if killed_tests == 1 else "tests"
    assert f"{killed_tests} {noun} not run: 1 of 3 shards did not finish" in markdown


def superuser_sql(postgres, sql: str) -> str:
    result = subprocess.run(
        [shutil.which("psql") or str(postgres.bin_dir / "psql"), "-At", "-v", "ON_ERROR_STOP=1"]
        + ["-h", postgres.host, "-p", str(postgres.port), "-U", postgres.superuser]
        + ["-d", "postgres", "-c", sql],
        env={**os.environ, "PGPASSWORD": postgres.superuser_password},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_with_a_template_each_shard_runs_in_its_own_database_and_drops_it(harness, postgres):
    """database.shard_databases as configured, through runner_environment as the stack passes
    it: each of 4 shards clones the template, runs, and drops its database; the merged report
    has the unsharded run's test ids and outcomes."""
    user = harness.database_user
    superuser_sql(postgres, f"ALTER ROLE {user} CREATEDB")
    superuser_sql(postgres, f"CREATE DATABASE sharded_template OWNER {user}")
    harness.play(shard_databases=ShardDatabasesConfig("template", "sharded_template"))
    run_id = "20261129T023000Z-template4"
    execution = run_execution(
        harness.emulator, harness.state_machine_arn, run_id, execution_input("test", [], 4)
    )
    assert execution.status == "SUCCEEDED", execution.failures()
    result = execution.output
    assert result["status"] == "failed" and result["tests_not_run"] == 0  # the fixture's failures
    merged = harness.text(result["junit_key"])
    assert outcomes(merged) == outcomes(harness.unsharded_junit.read_text())
    names = set()
    for index in range(4):
        key = result["junit_key"].replace("junit.xml", f"shards/{index:03d}/manifest.json")
        database = json.loads(harness.text(key))["database"]
        assert database["mode"] == "template" and database["template"] == "sharded_template"
        assert database["name"].startswith("ltr_shard_") and database["dropped"] is True
        names.add(database["name"])
    assert len(names) == 4
    left = superuser_sql(
        postgres, r"SELECT datname FROM pg_database WHERE datname LIKE 'ltr\_shard\_%'"
    )
    assert left.split() == []
