"""The sharded-run construct as synthesized: the definition the emulator tests execute, least
privilege around it, logging and tracing, the schedule that starts it."""

from __future__ import annotations

import json

from modules.contract import SHARD_MERGE_HANDLER
from modules.shard_flow import execution_input, state_machine_definition

MACHINE = "sharding/state_machine"
MERGE = "sharding/merge"


def reference(synthesized, resource_type: str, path_suffix: str, attribute: str) -> str:
    for logical, body in synthesized.resources(resource_type).items():
        if body["//"]["metadata"]["path"].endswith("/" + path_suffix):
            return f"${{{resource_type}.{logical}.{attribute}}}"
    raise AssertionError(path_suffix)


def test_the_deployed_definition_is_the_one_the_emulator_tests_execute(synthesized):
    machine = synthesized.resource("aws_sfn_state_machine", MACHINE)
    runner = reference(synthesized, "aws_lambda_function", "runner/function", "arn")
    merge = reference(synthesized, "aws_lambda_function", MERGE, "arn")
    bucket = reference(synthesized, "aws_s3_bucket", "results/bucket", "bucket")
    assert json.loads(machine["definition"]) == state_machine_definition(
        runner_function_arn=runner, merge_function_arn=merge, bucket=bucket, max_concurrency=8
    )
    assert machine["type"] == "STANDARD"
    assert machine["tracing_configuration"] == {"enabled": True}
    logging = machine["logging_configuration"]
    assert logging["level"] == "ALL" and logging["include_execution_data"] is True
    group = reference(synthesized, "aws_cloudwatch_log_group", "machine_logs/log_group", "arn")
    assert logging["log_destination"] == f"{group}:*"


def test_the_state_machine_may_invoke_only_the_runner_and_the_merge_function(synthesized):
    statements = synthesized.policy_statements("sharding/role_policy_document")
    invoke = [s for s in statements if any(a.startswith("lambda:") for a in s["actions"])]
    assert [s["actions"] for s in invoke] == [["lambda:InvokeFunction"]]
    assert invoke[0]["resources"] == [
        reference(synthesized, "aws_lambda_function", "runner/function", "arn"),
        reference(synthesized, "aws_lambda_function", MERGE, "arn"),
    ]
    for statement in statements:
        assert not any(a.startswith(("s3:", "states:", "iam:")) for a in statement["actions"])


def test_the_runner_cannot_start_executions(synthesized):
    for document in ("runner/role_policy_document", "fargate/task_role_policy_document"):
        for statement in synthesized.policy_statements(document):
            assert not any(a.startswith("states:") for a in statement["actions"]), statement


def test_the_merge_function_writes_only_run_manifests_and_reports(synthesized):
    function = synthesized.resource("aws_lambda_function", MERGE)
    assert function["handler"] == SHARD_MERGE_HANDLER
    assert function["tracing_config"] == {"mode": "Active"}
    statements = {
        s["sid"]: s for s in synthesized.policy_statements("sharding/merge_role_policy_document")
    }
    writes = statements["WriteRunManifestAndReport"]["resources"]
    assert [r.split("}", 1)[1] for r in writes] == ["/runs/*/manifest.json", "/runs/*/junit.xml"]
    assert statements["ReadPlansAndShards"]["actions"] == ["s3:GetObject"]


def test_the_sharded_schedule_starts_the_state_machine_through_its_own_role(synthesized):
    target = synthesized.resource("aws_cloudwatch_event_target", "schedules/nightly-sharded_test")
    machine = reference(synthesized, "aws_sfn_state_machine", MACHINE, "arn")
    assert target["arn"] == machine
    assert json.loads(target["input"]) == execution_input("test", [], 4)
    role = reference(synthesized, "aws_iam_role", "schedules/sharded_role", "arn")
    assert target["role_arn"] == role
    [statement] = synthesized.policy_statements("schedules/sharded_role_policy_document")
    assert statement["actions"] == ["states:StartExecution"]
    assert statement["resources"] == [machine]


def test_the_dashboard_shows_the_shard_makespan(synthesized):
    dashboard = synthesized.resource("aws_cloudwatch_dashboard", "monitoring/dashboard")
    body = json.loads(dashboard["dashboard_body"])
    metrics = [m[1] for w in body["widgets"] for m in w["properties"]["metrics"]]
    assert "ShardMakespanSeconds" in metrics


def test_a_failed_execution_alarms(synthesized):
    [watched] = [
        a
        for a in synthesized.resources("aws_cloudwatch_metric_alarm").values()
        if a["alarm_name"] == "ltr-example-sharded-run-failed"
    ]
    assert (watched["namespace"], watched["metric_name"]) == ("AWS/States", "ExecutionsFailed")
    machine = reference(synthesized, "aws_sfn_state_machine", MACHINE, "arn")
    assert watched["dimensions"] == {"StateMachineArn": machine}
    assert watched["threshold"] == 1 and watched["treat_missing_data"] == "notBreaching"
