"""Sharded runs through the real handler: the fixture app listed and run by real PHP/PHPUnit, a
real PostgreSQL (one database per shard cloned from a template), results in the moto server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime

import pytest
from runner.config import RunnerConfig
from runner.handler import handler

from report_processor.history.testid import stable_test_id
from tests.runner.conftest import FIXTURE_APP, LambdaContext
from tests.runner.test_handler_lambda import fixture_tree, run_prefix

pytestmark = pytest.mark.timeout(300)

# The default suites (Unit, Feature): Slow and Hostile run only when named, as in every test.
FIXTURE_CLASSES = {
    "Tests\\Unit\\OutcomesTest": "tests/Unit/OutcomesTest.php",
    "Tests\\Unit\\SlugTest": "tests/Unit/SlugTest.php",
    "Tests\\Feature\\ConnectionDumpTest": "tests/Feature/ConnectionDumpTest.php",
    "Tests\\Feature\\HealthTest": "tests/Feature/HealthTest.php",
    "Tests\\Feature\\NoteApiTest": "tests/Feature/NoteApiTest.php",
}
APP_ROOTS = (str(FIXTURE_APP.resolve()),)


def psql(postgres, sql: str) -> list[str]:
    """Rows of a query, as the cluster's superuser."""
    result = subprocess.run(
        [shutil.which("psql") or str(postgres.bin_dir / "psql"), "-At", "-v", "ON_ERROR_STOP=1"]
        + ["-h", postgres.host, "-p", str(postgres.port), "-U", postgres.superuser]
        + ["-d", "postgres", "-c", sql],
        env={**os.environ, "PGPASSWORD": postgres.superuser_password},
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in result.stdout.splitlines() if line]


def shard_databases(postgres) -> list[str]:
    # `_` is LIKE's any-character: escaped, so another test's `ltr_shards` is not one of them.
    return psql(postgres, r"SELECT datname FROM pg_database WHERE datname LIKE 'ltr\_shard\_%'")


@pytest.fixture
def template(postgres, database, monkeypatch):
    """The shards' template: a database the runner's role owns (so it may clone it), and the
    CREATEDB attribute the role needs (docs/sharding.md)."""
    name = f"tpl_{uuid.uuid4().hex[:10]}"
    psql(postgres, f"ALTER ROLE {database.username} CREATEDB")
    psql(postgres, f"CREATE DATABASE {name} OWNER {database.username}")
    monkeypatch.setenv("DB_SHARD_MODE", "template")
    monkeypatch.setenv("DB_TEMPLATE", name)
    return name


def outcomes(xml: bytes) -> Counter[tuple[str, str]]:
    """(stable test id, outcome) of every testcase; a Counter, so a test run twice shows."""
    found: Counter[tuple[str, str]] = Counter()
    for case in ET.fromstring(xml).iter("testcase"):  # noqa: S314 (this test's own PHPUnit run)
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        classname = case.get("class") or case.get("classname") or ""
        test_id = stable_test_id(case.get("file"), classname, case.get("name") or "", APP_ROOTS)
        found[(test_id, kinds[0] if kinds else "passed")] += 1
    return found


def plan_event(run_id: str, shards: int, args: list[str] | None = None) -> dict:
    event = {"action": "plan", "command": "test", "run_id": run_id, "shards": shards}
    return event | ({"args": args} if args is not None else {})


def shard_event(planned: dict, index: int) -> dict:
    return {
        "command": "test",
        "run_id": planned["run_id"],
        "shard": {"index": index, "count": planned["shard_count"], "plan_key": planned["plan_key"]},
    }


@pytest.mark.parametrize("shards", [2, 4])
def test_a_sharded_run_has_the_outcomes_of_an_unsharded_one(
    runner_env, database, template, postgres, shards
):
    before = fixture_tree()
    unsharded = handler({"command": "test"}, LambdaContext())
    assert unsharded["status"] == "failed"  # the fixture fails, errs and skips on purpose
    expected = outcomes(runner_env.read(run_prefix(unsharded, "test") + "junit.xml"))
    assert sum(expected.values()) == 13

    run_id = f"sharded-{shards}-{uuid.uuid4().hex[:6]}"
    planned = handler(plan_event(run_id, shards), LambdaContext())

    assert planned["status"] == "planned", planned
    assert planned["shard_count"] == shards
    assert planned["cap"] == {"requested": shards, "applied": shards, "reason": "as requested"}
    assert planned["tests_total"] == 13
    assert sum(shard["tests"] for shard in planned["shards"]) == 13
    assert planned["estimate_basis"] == "test_counts"  # no durations.json in this bucket
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert planned["plan_key"] == f"runs/{day}/{run_id}/test/plan.json"
    plan = json.loads(runner_env.read(planned["plan_key"]))
    assert plan["run_id"] == run_id and plan["shard_count"] == shards
    assert plan["classes_without_history"] == 5
    listed = {c["name"]: c["file"] for s in plan["shards"] for c in s["classes"]}
    assert listed == FIXTURE_CLASSES

    merged: Counter[tuple[str, str]] = Counter()
    for index in range(shards):
        response = handler(shard_event(planned, index), LambdaContext())
        prefix = f"runs/{day}/{run_id}/test/shards/{index:03d}/"
        assert response["shard"] == {"index": index, "count": shards}
        assert len(response["output_tail"]) <= 2048  # one of many in a Step Functions Map
        assert response["results_uri"] == f"s3://{runner_env.bucket}/{prefix}"
        assert response["status"] in ("passed", "failed"), response
        manifest = json.loads(runner_env.read(prefix + "manifest.json"))
        assert manifest["shard"] == {
            "index": index,
            "count": shards,
            "plan_key": planned["plan_key"],
            "tests_planned": planned["shards"][index]["tests"],
        }
        assert manifest["database"]["template"] == template
        assert manifest["database"]["dropped"] is True
        assert manifest["database"]["name"].startswith("ltr_shard_")
        shard_junit = runner_env.read(prefix + "junit.xml")
        found = outcomes(shard_junit)
        assert sum(found.values()) == planned["shards"][index]["tests"]
        merged += found
        if b"ConnectionDumpTest" in shard_junit:
            # The tests connected to the shard's own database, not the secret's.
            assert f"/{manifest['database']['name']}".encode() in shard_junit

    assert merged == expected
    keys = set(runner_env.keys(f"runs/{day}/{run_id}/"))
    assert keys == {planned["plan_key"]} | {
        f"runs/{day}/{run_id}/test/shards/{i:03d}/{name}"
        for i in range(shards)
        for name in ("junit.xml", "manifest.json", "output.log")
    }
    assert shard_databases(postgres) == []
    assert fixture_tree() == before


def put_durations(runner_env) -> None:
    """History's medians for four of the fixture's five classes."""
    runner_env.s3.put_object(
        Bucket=runner_env.bucket,
        Key="history/ltr/test/test/durations.json",
        Body=json.dumps(
            {
                "version": 1,
                "classes": {
                    "Tests\\Feature\\NoteApiTest": 40.0,
                    "Tests\\Feature\\HealthTest": 12.0,
                    "Tests.Unit.SlugTest": 10.0,
                    "Tests\\Unit\\OutcomesTest": 9.0,
                },
                "runs": 7,
                "updated_at": "2026-11-28T02:00:00Z",
            }
        ),
    )


def test_history_balances_the_plan_and_the_cap_is_named(runner_env, monkeypatch):
    put_durations(runner_env)
    monkeypatch.setenv("MAX_SHARDS", "2")
    planned = handler(plan_event("balanced-1", 4), LambdaContext())

    assert planned["status"] == "planned", planned
    assert planned["cap"] == {
        "requested": 4,
        "applied": 2,
        "reason": "capped by runner.max_shards (MAX_SHARDS=2)",
    }
    assert planned["classes_without_history"] == 1
    assert planned["estimate_basis"] == "history+median"
    plan = json.loads(runner_env.read(planned["plan_key"]))
    shards = [[c["name"] for c in shard["classes"]] for shard in plan["shards"]]
    # Longest first: NoteApiTest (40 s) alone; 12 + 10 + 9 + the median 11 = 42 s beside it.
    assert shards[0] == ["Tests\\Feature\\NoteApiTest"]
    assert [s["estimated_seconds"] for s in planned["shards"]] == [40.0, 42.0]
    dump = next(c for c in plan["shards"][1]["classes"] if "ConnectionDump" in c["name"])
    assert dump["estimated_seconds"] == 11.0  # the median of the classes with history


def test_a_shard_estimated_over_its_time_budget_is_named_before_it_runs(
    runner_env, monkeypatch, caplog
):
    put_durations(runner_env)
    monkeypatch.setenv("MAX_SHARDS", "2")
    margin = RunnerConfig.from_env().deadline_margin_seconds
    # A shard of this function has about 41 s before its deadline: 40 s fits, 42 s does not.
    planned = handler(plan_event("budget-1", 2), LambdaContext(timeout_seconds=margin + 41.5))

    assert planned["status"] == "planned", planned
    assert [s["estimated_seconds"] for s in planned["shards"]] == [40.0, 42.0]
    assert 40.0 < planned["shard_budget_seconds"] <= 41.5
    warnings = [r.getMessage() for r in caplog.records if "before its deadline" in r.getMessage()]
    assert len(warnings) == 1 and "shard 1 (42 s)" in warnings[0], warnings
    assert "shard 0" not in warnings[0]


def test_group_options_shape_the_plan_and_apply_in_the_shards(runner_env, database):
    planned = handler(
        plan_event("groups-1", 3, ["--exclude-group", "outcomes,leaky"]), LambdaContext()
    )

    assert planned["status"] == "planned", planned
    assert planned["tests_total"] == 8  # SlugTest 3, HealthTest 2, NoteApiTest 3
    assert planned["shard_count"] == 3
    statuses = {handler(shard_event(planned, i), LambdaContext())["status"] for i in range(3)}
    assert statuses == {"passed"}


def test_a_shard_stopped_at_its_deadline_still_drops_its_database(
    runner_env, database, template, postgres, monkeypatch
):
    planned = handler(plan_event("slow-1", 2, ["--testsuite", "Slow"]), LambdaContext())
    assert planned["status"] == "planned", planned
    assert planned["shard_count"] == 1
    assert planned["cap"]["reason"] == "capped by the number of test files (1)"

    monkeypatch.setenv("RUNNER_DEADLINE_MARGIN_SECONDS", "4")
    monkeypatch.setenv("RUNNER_KILL_GRACE_SECONDS", "1")
    started = time.monotonic()
    response = handler(shard_event(planned, 0), LambdaContext(timeout_seconds=12))

    assert response["status"] == "timed_out", response
    assert time.monotonic() - started < 12
    manifest = json.loads(
        runner_env.read(planned["plan_key"].replace("plan.json", "shards/000/manifest.json"))
    )
    assert manifest["status"] == "timed_out"
    assert manifest["database"]["dropped"] is True
    assert shard_databases(postgres) == []


def test_a_shard_refuses_a_plan_that_is_not_its_runs(runner_env):
    planned = handler(plan_event("real-run", 2), LambdaContext())
    assert planned["status"] == "planned", planned
    # Another run's plan copied under this run's key: the content names the other run.
    forged_key = planned["plan_key"].replace("real-run", "other-run")
    runner_env.s3.copy_object(
        Bucket=runner_env.bucket,
        Key=forged_key,
        CopySource={"Bucket": runner_env.bucket, "Key": planned["plan_key"]},
    )
    forged = handler(
        {
            "command": "test",
            "run_id": "other-run",
            "shard": {"index": 0, "count": 2, "plan_key": forged_key},
        },
        LambdaContext(),
    )
    assert forged["status"] == "rejected"
    assert "belongs to run 'real-run', not to 'other-run'" in forged["reason"]

    pointed = handler(
        {
            "command": "test",
            "run_id": "other-run",
            "shard": {"index": 0, "count": 2, "plan_key": planned["plan_key"]},
        },
        LambdaContext(),
    )
    assert pointed["status"] == "rejected"
    assert "is not the plan of run 'other-run'" in pointed["reason"]

    missing = handler(
        {
            "command": "test",
            "run_id": "no-plan",
            "shard": {
                "index": 0,
                "count": 2,
                "plan_key": planned["plan_key"].replace("real-run", "no-plan"),
            },
        },
        LambdaContext(),
    )
    assert missing["status"] == "rejected" and "no plan at s3://" in missing["reason"]

    miscounted = handler(
        {
            "command": "test",
            "run_id": "real-run",
            "shard": {"index": 2, "count": 3, "plan_key": planned["plan_key"]},
        },
        LambdaContext(),
    )
    assert miscounted["status"] == "rejected" and "the event says 3" in miscounted["reason"]
    assert not [key for key in runner_env.keys("runs/") if "/shards/" in key]


def test_a_reused_run_id_cannot_be_planned_again(runner_env):
    first = handler(plan_event("twice", 2), LambdaContext())
    assert first["status"] == "planned"
    plan = runner_env.s3.get_object(Bucket=runner_env.bucket, Key=first["plan_key"])
    # The same request again (Step Functions retrying the Plan step after a Lambda service
    # error): the same answer, from the plan.json already written, which stays as it was.
    again = handler(plan_event("twice", 2), LambdaContext())
    assert again == first
    after = runner_env.s3.get_object(Bucket=runner_env.bucket, Key=first["plan_key"])
    assert after["ETag"] == plan["ETag"] and after["LastModified"] == plan["LastModified"]
    # Anything else under that run id is refused: another number of shards, other args...
    for other in (plan_event("twice", 3), plan_event("twice", 2, ["--group", "fast"])):
        refused = handler(other, LambdaContext())
        assert refused["status"] == "rejected" and "twice" in refused["reason"], refused
    # ...and the same request once the run has finished (its run-level manifest exists).
    manifest_key = first["plan_key"].replace("plan.json", "manifest.json")
    runner_env.s3.put_object(Bucket=runner_env.bucket, Key=manifest_key, Body=b"{}")
    finished = handler(plan_event("twice", 2), LambdaContext())
    assert finished["status"] == "rejected" and "twice" in finished["reason"]


@pytest.mark.parametrize(
    ("createdb", "message"),
    [(False, "permission denied to create database"), (True, "does not exist")],
)
def test_a_clone_that_fails_is_an_error_before_any_test(
    runner_env, database, postgres, monkeypatch, createdb, message
):
    if createdb:
        psql(postgres, f"ALTER ROLE {database.username} CREATEDB")
    monkeypatch.setenv("DB_TEMPLATE", 'no_such"template')
    planned = handler(plan_event("no-template", 2), LambdaContext())
    response = handler(shard_event(planned, 0), LambdaContext())

    assert response["status"] == "error", response
    assert 'TEMPLATE "no_such""template"' in response["message"]
    assert message in response["message"]
    assert "Tests:" not in response["output_tail"]  # PHPUnit never started
    manifest_key = planned["plan_key"].replace("plan.json", "shards/000/manifest.json")
    manifest = json.loads(runner_env.read(manifest_key))
    assert manifest["status"] == "error" and manifest["exit_code"] is None
    assert "database" not in manifest
    assert database.password not in json.dumps(response)


def test_shared_mode_runs_every_shard_in_the_secrets_database(runner_env, database):
    planned = handler(plan_event("shared-1", 2, ["--group", "database"]), LambdaContext())
    assert planned["status"] == "planned" and planned["shard_count"] == 1  # one class
    response = handler(shard_event(planned, 0), LambdaContext())

    assert response["status"] == "passed", response
    manifest_key = planned["plan_key"].replace("plan.json", "shards/000/manifest.json")
    assert "database" not in json.loads(runner_env.read(manifest_key))


def test_a_plan_naming_a_file_the_app_lacks_runs_nothing(runner_env):
    planned = handler(plan_event("tampered-1", 2), LambdaContext())
    plan = json.loads(runner_env.read(planned["plan_key"]))
    plan["shards"][0]["classes"][0]["file"] = "tests/Unit/NoSuchTest.php"
    runner_env.s3.put_object(
        Bucket=runner_env.bucket, Key=planned["plan_key"], Body=json.dumps(plan).encode()
    )
    response = handler(shard_event(planned, 0), LambdaContext())

    assert response["status"] == "error", response
    assert "tests/Unit/NoSuchTest.php, which is not a file of this app" in response["message"]


PHPT_TEST = """--TEST--
a .phpt test beside the fixture's classes
--FILE--
<?php echo "ok";
--EXPECT--
ok
"""


def test_a_suite_with_a_phpt_test_is_not_planned_in_part(
    runner_env, database, monkeypatch, tmp_path
):
    """Real PHPUnit 9.6 lists a .phpt file as <phptFile path=…/>; shards name class files, so
    a plan whose groups run it is refused (with the file named) rather than silently leaving
    the test out."""
    app = tmp_path / "app"
    shutil.copytree(FIXTURE_APP, app, symlinks=True)
    (app / "tests" / "Unit" / "cli.phpt").write_text(PHPT_TEST)
    configuration = app / "phpunit.xml"
    configuration.write_text(
        configuration.read_text().replace(
            '<directory suffix="Test.php">./tests/Unit</directory>',
            '<directory suffix="Test.php">./tests/Unit</directory>\n'
            "            <file>./tests/Unit/cli.phpt</file>",
            1,
        )
    )
    monkeypatch.setenv("RUNNER_APP_DIR", str(app))
    planned = handler(plan_event(f"phpt-{uuid.uuid4().hex[:6]}", 2), LambdaContext())
    assert planned["status"] != "planned", planned
    assert "1 .phpt test" in planned["message"] and "cli.phpt" in planned["message"], planned
    assert "without shards" in planned["message"]
    # A group that is not "default" leaves the .phpt test out of any run: that plan goes ahead.
    grouped = plan_event(f"phpt-{uuid.uuid4().hex[:6]}", 2, ["--group", "outcomes"])
    planned = handler(grouped, LambdaContext())
    assert planned["status"] == "planned", planned
    plan = json.loads(runner_env.read(planned["plan_key"]))
    assert {c["name"] for shard in plan["shards"] for c in shard["classes"]} == {
        "Tests\\Unit\\OutcomesTest"  # the fixture's only class in the group "outcomes"
    }
