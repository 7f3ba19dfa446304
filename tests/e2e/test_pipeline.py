"""End to end without AWS: the synthesized stack applied to a moto server, the nightly jobs run
as the deployed EventBridge rules define them through the real runner (fixture Laravel app, real
PostgreSQL), S3 notifications built from the deployed notification configuration delivered to the
real report processor. Every hop is checked against what the emulator holds.

The same code path as `make demo` (demo/pipeline.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET  # noqa: S405 (our own PHPUnit's output, parsed as an oracle)
from pathlib import Path

import pytest

from demo.pipeline import EmulatedStack, run_pipeline
from demo.services import MotoServer
from demo.step_functions import LambdaStandIn
from demo.terraform import find_plugin_mirror, find_terraform
from modules.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = REPO_ROOT / "config" / "example.json"
FIXTURE_APP = REPO_ROOT / "tests" / "laravel_app"
LAMBDA_COMMANDS = ("test", "scribe:generate", "api:export-markdown")

pytestmark = pytest.mark.skipif(
    find_terraform() is None or find_plugin_mirror() is None,
    reason="terraform or its offline provider mirror is missing: the e2e test applies the "
    "synthesized stack (see the README, Try it locally)",
)


@pytest.fixture(scope="module")
def pipeline(postgres, tmp_path_factory):
    """One pipeline run for the whole module, on a moto server of its own (the stack's fixed
    names would collide with other tests applying it to the shared one)."""
    work_dir = tmp_path_factory.mktemp("e2e")
    config = load_config(CONFIG_PATH)
    stand_in = LambdaStandIn()  # the state machine's Lambda invocations (sharded runs)
    with (
        MotoServer.start(region=config.region, service_port=stand_in.port) as moto,
        stand_in.serving(moto),
    ):
        stack = EmulatedStack.start(moto, CONFIG_PATH, work_dir)
        try:
            yield run_pipeline(
                stack, postgres, work_dir, database_name="ltr_e2e", stand_in=stand_in
            )
        finally:
            stack.stop()


@pytest.fixture(scope="module")
def emulator(pipeline) -> MotoServer:
    return pipeline.emulator


def outcome_for(pipeline, command):
    matches = [o for o in pipeline.nightly.outcomes if o.job.command == command]
    assert len(matches) == 1, [o.job.command for o in pipeline.nightly.outcomes]
    return matches[0]


def keys_under(pipeline, prefix: str) -> list[str]:
    s3 = pipeline.emulator.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=pipeline.bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


# --------------------------------------------------------------------------- EventBridge hop


def test_every_scheduled_lambda_target_ran_with_its_deployed_input(pipeline):
    config = pipeline.config
    expected = [
        run.lambda_event()
        for schedule in config.schedules
        if schedule.target == "lambda" and schedule.enabled
        for run in schedule.runs
        if not schedule.is_sharded(run)  # those start the state machine (test below)
    ]
    ran = [outcome.job.event for outcome in pipeline.nightly.outcomes]
    assert sorted(ran, key=json.dumps) == sorted(expected, key=json.dumps)
    assert {e["command"] for e in ran} == set(LAMBDA_COMMANDS)
    for outcome in pipeline.nightly.outcomes:
        assert outcome.job.rule.startswith(config.names.prefix)
        assert outcome.job.schedule.startswith(("cron(", "rate("))
    # The Fargate schedule is deployed too, and named as not run.
    assert any(":ecs:" in job.target_arn for job in pipeline.nightly.not_run)


def test_the_sharded_nightly_run_is_executed_from_the_deployed_state_machine(pipeline):
    """The emulator executes the deployed definition; the merged report has the unsharded
    nightly run's test ids and outcomes, with a shard table and one PassRate datapoint."""
    [sharded] = pipeline.sharded
    schedule = next(s for s in pipeline.config.schedules if s.shards)
    assert sharded.job.event == {"command": "test", "args": [], "shards": schedule.shards}
    assert sharded.execution.status == "SUCCEEDED", sharded.execution.failures()
    output = sharded.execution.output
    assert len(output["shards"]) >= 3 and output["tests_not_run"] == 0
    # The deployed runner planned it (PHPUnit's listing, packed): its plan.json, its cap.
    plan = json.loads(pipeline.text(output["junit_key"].replace("junit.xml", "plan.json")))
    assert plan["run_id"] == sharded.execution.arn.rsplit(":", 1)[-1]  # the execution's name
    assert plan["cap"]["requested"] == schedule.shards
    assert plan["cap"]["applied"] == plan["shard_count"] == len(output["shards"])
    assert plan["estimate_basis"] in ("history", "history+median", "test_counts")
    [prefix] = sharded.report_prefixes
    summary = json.loads(pipeline.text(prefix + "summary.json"))
    unsharded = json.loads(
        pipeline.text(outcome_for(pipeline, "test").report_prefixes[0] + "summary.json")
    )
    assert summary["totals"]["tests"] == unsharded["totals"]["tests"]
    for count in ("passed", "failed", "errors", "skipped"):
        assert summary["totals"][count] == unsharded["totals"][count]
    failing = {(f["classname"], f["name"], f["kind"]) for f in summary["failures"]}
    assert failing == {(f["classname"], f["name"], f["kind"]) for f in unsharded["failures"]}
    assert f"## Shards ({len(output['shards'])})" in pipeline.text(prefix + "summary.md")
    assert [m.name for m in sharded.metrics].count("PassRate") == 1


# --------------------------------------------------------------------------- runner hop


def test_the_deployed_bucket_policy_is_tls_only(pipeline):
    """Read back before the emulator-only workaround (demo/pipeline.py says why) removed it."""
    workaround = pipeline.policy_workaround
    statements = workaround.deployed["Statement"]
    tls = [
        st
        for st in statements
        if st["Effect"] == "Deny"
        and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert len(tls) == 1
    assert all(st in statements for st in workaround.removed)
    bucket_arn = f"arn:aws:s3:::{pipeline.bucket}"
    resources = tls[0]["Resource"]
    assert set(resources if isinstance(resources, list) else [resources]) == {
        bucket_arn,
        f"{bucket_arn}/*",
    }


def test_runner_wrote_every_run_under_runs(pipeline):
    expected_status = {
        "test": "failed",
        "scribe:generate": "passed",
        "api:export-markdown": "passed",
    }
    for command in LAMBDA_COMMANDS:
        response = outcome_for(pipeline, command).response
        # The fixture app fails and errors on purpose; the docs commands succeed.
        assert response["status"] == expected_status[command], response
        prefix = response["results_uri"].removeprefix(f"s3://{pipeline.bucket}/")
        assert prefix.startswith("runs/") and prefix.endswith(command.replace(":", "-") + "/")
        keys = keys_under(pipeline, prefix)
        assert prefix + "manifest.json" in keys
        assert prefix + "output.log" in keys
        manifest = json.loads(pipeline.text(prefix + "manifest.json"))
        assert manifest["command"] == command
        assert manifest["run_id"] == response["run_id"]
        assert manifest["status"] == response["status"]
        # Artifacts name every object the run stored: its own and the docs/latest/ copies.
        assert set(manifest["artifacts"]) <= set(keys_under(pipeline, ""))
    test_prefix = outcome_for(pipeline, "test").response["results_uri"].split("/", 3)[3]
    assert test_prefix + "junit.xml" in keys_under(pipeline, test_prefix)


def test_docs_were_published_under_docs_latest(pipeline):
    docs = keys_under(pipeline, "docs/latest/")
    for slug in ("scribe-generate", "api-export-markdown"):
        assert any(key.startswith(f"docs/latest/{slug}/") for key in docs), docs
        assert outcome_for(pipeline, slug.replace("-", ":", 1)).response["status"] == "passed"


# --------------------------------------------------------------------------- report hop


def phpunit_oracle(tmp_path: Path, postgres) -> dict[str, int]:
    """What the fixture's tests really do: PHPUnit run directly (no runner, no report
    processor), its JUnit counted here with the standard library."""
    phpunit = shutil.which("phpunit")
    if phpunit is None:
        pytest.skip("phpunit is not installed (apt-get install phpunit)")
    credentials = postgres.create_database("ltr_e2e_oracle")
    junit = tmp_path / "oracle.xml"
    env = {
        **os.environ,
        "DB_CONNECTION": "pgsql",
        "DB_HOST": credentials.host,
        "DB_PORT": str(credentials.port),
        "DB_DATABASE": credentials.dbname,
        "DB_USERNAME": credentials.username,
        "DB_PASSWORD": credentials.password,
    }
    subprocess.run(
        [phpunit, "--log-junit", str(junit)],
        cwd=FIXTURE_APP,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    counts = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}
    for case in ET.parse(junit).iter("testcase"):  # noqa: S314 (PHPUnit output)
        counts["tests"] += 1
        if case.find("error") is not None:
            counts["errors"] += 1
        elif case.find("failure") is not None:
            counts["failed"] += 1
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
    counts["passed"] = counts["tests"] - counts["failed"] - counts["errors"] - counts["skipped"]
    return counts


def test_summary_counts_match_what_the_fixture_tests_really_do(pipeline, postgres, tmp_path):
    [prefix] = outcome_for(pipeline, "test").report_prefixes
    summary = json.loads(pipeline.text(prefix + "summary.json"))
    oracle = phpunit_oracle(tmp_path, postgres)
    totals = summary["totals"]
    assert {name: totals[name] for name in oracle} == oracle
    # The fixture fails, errors and skips on purpose (tests/Unit/OutcomesTest.php).
    assert oracle["failed"] >= 1 and oracle["errors"] >= 1 and oracle["skipped"] >= 1
    runnable = totals["tests"] - totals["skipped"]
    assert summary["pass_rate"] == pytest.approx(totals["passed"] / runnable)
    assert summary["metadata"]["run_id"] == outcome_for(pipeline, "test").response["run_id"]
    assert summary["metadata"]["command"] == "test"


def test_summary_markdown_names_the_failures(pipeline):
    [prefix] = outcome_for(pipeline, "test").report_prefixes
    markdown = pipeline.text(prefix + "summary.md")
    assert "test_a_failing_assertion" in markdown
    assert "the fixture fails on purpose" in markdown
    assert "test_an_error" in markdown
    # reports/latest/ follows the run that started last: the sharded nightly run, after it.
    [newest] = pipeline.sharded[-1].report_prefixes if pipeline.sharded else [prefix]
    assert pipeline.text("reports/latest/summary.md") == pipeline.text(newest + "summary.md")
    assert prefix.startswith("reports/") and "/test/" in prefix


def test_only_junit_objects_triggered_the_report_processor(pipeline):
    delivered = [d.key for o in pipeline.nightly.outcomes for d in o.deliveries]
    assert delivered and all(k.startswith("runs/") and k.endswith(".xml") for k in delivered)
    assert not pipeline.nightly.errors
    # Nothing the processor wrote matched its own trigger (the delivery loop would have run it).
    assert all(not key.startswith("runs/") for key in keys_under(pipeline, "reports/"))


# --------------------------------------------------------------------------- metrics and alarms


def test_metrics_emitted_match_the_summary(pipeline):
    [prefix] = outcome_for(pipeline, "test").report_prefixes
    totals = json.loads(pipeline.text(prefix + "summary.json"))["totals"]
    metrics = {m.name: m for m in outcome_for(pipeline, "test").metrics}
    config = pipeline.config
    assert metrics["TestsTotal"].value == totals["tests"]
    assert metrics["TestsPassed"].value == totals["passed"]
    assert metrics["TestsFailed"].value == totals["failed"]
    assert metrics["TestsErrored"].value == totals["errors"]
    assert metrics["TestsSkipped"].value == totals["skipped"]
    assert metrics["PassRate"].value == pytest.approx(
        100 * totals["passed"] / (totals["tests"] - totals["skipped"]), abs=1e-3
    )
    assert metrics["ReportParseErrors"].value == 0
    for metric in metrics.values():
        assert metric.namespace == config.metrics_namespace
        assert metric.dimensions == {
            "Project": config.project,
            "Environment": config.environment,
            "Command": "test",
        }


def test_deployed_alarms_watch_the_emitted_metrics(pipeline):
    config = pipeline.config
    names = config.names
    cloudwatch = pipeline.emulator.client("cloudwatch")
    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    emitted = {
        (m.namespace, m.name, tuple(sorted(m.dimensions.items()))) for m in pipeline.nightly.metrics
    }

    pass_rate = alarms[names.pass_rate_alarm]
    dims = tuple(sorted((d["Name"], d["Value"]) for d in pass_rate["Dimensions"]))
    assert (pass_rate["Namespace"], pass_rate["MetricName"], dims) in emitted
    assert pass_rate["MetricName"] == "PassRate"
    assert pass_rate["Threshold"] == config.alarms.pass_rate_threshold
    assert pass_rate["ComparisonOperator"] == "LessThanThreshold"

    missing = alarms[names.missing_result_alarm]
    dims = tuple(sorted((d["Name"], d["Value"]) for d in missing["Dimensions"]))
    assert (missing["Namespace"], missing["MetricName"], dims) in emitted
    assert missing["TreatMissingData"] == "breaching"
    assert missing["Period"] * missing["EvaluationPeriods"] <= (
        config.alarms.missing_result_hours * 3600
    )

    # The run-not-passed alarm watches a series the report processor really publishes, and the
    # fixture app's failing night puts it over the threshold.
    not_passed = alarms[names.run_not_passed_alarm]
    dims = tuple(sorted((d["Name"], d["Value"]) for d in not_passed["Dimensions"]))
    assert (not_passed["Namespace"], "RunsNotPassed", dims) in emitted
    [value] = [
        m.value
        for m in pipeline.nightly.metrics
        if m.name == "RunsNotPassed" and tuple(sorted(m.dimensions.items())) == dims
    ]
    assert value >= not_passed["Threshold"] == 1
    [prefix] = outcome_for(pipeline, "test").report_prefixes
    assert json.loads(pipeline.text(prefix + "summary.json"))["status"] == "failed"

    for alarm_name, metric_name, threshold in (
        (names.runner_errors_alarm, "Errors", config.alarms.runner_errors_threshold),
        (names.runner_throttles_alarm, "Throttles", config.alarms.runner_throttles_threshold),
    ):
        alarm = alarms[alarm_name]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric_name)
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": names.runner_function}]
        assert alarm["Threshold"] == threshold


# ----------------------------------------------------------------- ltr on the deployed stack


def test_ltr_reads_the_deployed_stack(pipeline, monkeypatch):
    """The CLI users type, against the resources Terraform created (names from the config)."""
    import io

    from ltr.cli import main as ltr_main

    for name, value in pipeline.emulator.env.items():
        monkeypatch.setenv(name, value)
    config_path = str(pipeline.config.source)
    out, err = io.StringIO(), io.StringIO()
    assert ltr_main(["runs", "--config", config_path], out, err) == 0, err.getvalue()
    listed = {line.split()[0]: line.split()[1] for line in out.getvalue().splitlines()[2:]}
    expected = {o.response["run_id"]: o.job.command for o in pipeline.nightly.outcomes}
    # The sharded nightly run is one run (its execution's name); its shards are not listed.
    expected |= {s.execution.arn.rsplit(":", 1)[-1]: "test" for s in pipeline.sharded}
    assert listed == expected

    test_run = outcome_for(pipeline, "test").response["run_id"]
    out, err = io.StringIO(), io.StringIO()
    assert ltr_main(["report", test_run, "--config", config_path], out, err) == 0
    [prefix] = outcome_for(pipeline, "test").report_prefixes
    assert out.getvalue() == pipeline.text(prefix + "summary.md").rstrip("\n") + "\n"


# ----------------------------------------------------------------- memory across runs (last:
# it runs the nightly jobs a second time, so every test above sees the first night only)


def test_the_second_night_is_compared_with_the_first(pipeline):
    """The demo's release (demo/history_story.py) through the deployed schedules again: the
    fixture's switches reach PHPUnit through the runner, and the history remembers night one."""
    from demo.history_story import run_second_night

    [first] = outcome_for(pipeline, "test").report_prefixes
    assert json.loads(pipeline.text(first + "summary.json"))["history"]["baseline"] is None
    second = run_second_night(pipeline, lambda _line: None)
    assert not second.nightly.errors
    [outcome] = [o for o in second.nightly.outcomes if o.job.command == "test"]
    [prefix] = outcome.report_prefixes
    history = json.loads(pipeline.text(prefix + "summary.json"))["history"]
    # The baseline is the newest earlier `test` run: the sharded nightly run (its execution's
    # name is its run id), which started after the unsharded one.
    [sharded] = pipeline.sharded
    assert history["baseline"]["run_id"] == sharded.execution.arn.rsplit(":", 1)[-1]
    assert history["run"]["app_version"] == "1.5.0"
    assert [t["test_id"].rsplit("::", 1)[1] for t in history["new_failures"]] == [
        "test_collection_sums"
    ]
    assert [t.rsplit("::", 1)[1] for t in history["fixed"]] == ["test_a_failing_assertion"]
    assert history["counts"]["flaky"] == 0  # each change came with the new version
    assert history["notification"]["subject"].startswith("[ltr] test on example: 1 new failure")
    metrics = {m.name: m.value for m in outcome.metrics}
    assert (metrics["NewFailures"], metrics["FixedTests"], metrics["FlakyTests"]) == (1, 1, 0)
