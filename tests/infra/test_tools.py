"""The synthesized stack against real tools: terraform validate, checkov, and apply/destroy on
a moto server (the emulator settings live only in the working copy's override file)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from demo.step_functions import LambdaStandIn
from demo.terraform import (
    OVERRIDE_FILE,
    TerraformError,
    TerraformWorkspace,
    emulator_override,
    find_plugin_mirror,
    find_terraform,
    terraform_missing_reason,
    write_cli_config,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKOV = Path(sys.executable).parent / "checkov"


def require_terraform() -> None:
    if find_terraform() is None:
        pytest.skip(terraform_missing_reason())
    if find_plugin_mirror() is None:
        pytest.skip(
            "no offline provider mirror holding hashicorp/aws; set LTR_TF_PLUGIN_MIRROR "
            "to the folder that contains registry.terraform.io/"
        )


def test_mirror_discovery_honours_the_environment_override(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "registry.terraform.io" / "hashicorp" / "aws").mkdir(parents=True)
    assert find_plugin_mirror({"LTR_TF_PLUGIN_MIRROR": str(mirror)}) == mirror
    # An override pointing at a folder without the provider finds nothing, rather than
    # silently falling back to another mirror.
    assert find_plugin_mirror({"LTR_TF_PLUGIN_MIRROR": str(tmp_path)}) is None


def test_cli_config_installs_hashicorp_providers_from_the_mirror_only(tmp_path):
    text = write_cli_config(tmp_path / "rc", Path("/opt/mirror")).read_text()
    assert 'path = "/opt/mirror"' in text
    assert 'exclude = ["registry.terraform.io/hashicorp/*"]' in text


def test_emulator_override_points_every_service_at_the_emulator():
    override = emulator_override("http://127.0.0.1:1234")
    provider = override["provider"]["aws"][0]
    assert set(provider["endpoints"][0].values()) == {"http://127.0.0.1:1234"}
    assert {"s3", "lambda", "events", "cloudwatch", "ecs"} <= set(provider["endpoints"][0])
    assert override["terraform"]["backend"] == {"local": {"path": "terraform.tfstate"}}


@pytest.mark.parametrize("stack", ["synthesized", "synthesized_variant"])
def test_terraform_validate_passes_offline(stack, request, tmp_path):
    """The example and the variant (existing endpoints read with postconditions, NAT egress)."""
    require_terraform()
    synthesized = request.getfixturevalue(stack)
    workspace = TerraformWorkspace.prepare(synthesized.stack_dir, tmp_path / "validate")
    workspace.init()
    result = workspace.validate()
    assert result["valid"], result["diagnostics"]
    assert result["warning_count"] == 0, result["diagnostics"]


def checkov_failed_ids(stack_dir: Path, *extra: str) -> set[str]:
    completed = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(stack_dir),
            "--framework",
            "terraform_json",
            "--skip-download",
            "--compact",
            "--quiet",
            "--output",
            "json",
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=stack_dir,
        timeout=300,
    )
    assert completed.returncode in (0, 1), completed.stderr[-2000:]
    report = json.loads(completed.stdout) if completed.stdout.strip() else {}
    if isinstance(report, list):
        [report] = report
    failed = report.get("results", {}).get("failed_checks", [])
    return {check["check_id"] for check in failed}


def configured_suppressions() -> list[str]:
    lines = (REPO_ROOT / ".checkov.yaml").read_text().splitlines()
    start = lines.index("skip-check:")
    return [
        line.split("- ", 1)[1].strip() for line in lines[start + 1 :] if line.startswith("  - ")
    ]


def test_checkov_finds_nothing_and_every_suppression_is_still_needed(synthesized):
    if not CHECKOV.exists():
        pytest.skip(f"checkov is not installed at {CHECKOV}; run `make install`")
    suppressed = configured_suppressions()
    assert 0 < len(suppressed) <= 10
    with_config = checkov_failed_ids(
        synthesized.stack_dir, "--config-file", str(REPO_ROOT / ".checkov.yaml")
    )
    assert with_config == set(), f"checkov failed checks: {sorted(with_config)}"
    without_suppressions = checkov_failed_ids(synthesized.stack_dir)
    assert without_suppressions == set(suppressed), (
        "keep .checkov.yaml exact: stale suppressions "
        f"{sorted(set(suppressed) - without_suppressions)}, "
        f"unlisted failures {sorted(without_suppressions - set(suppressed))}"
    )


@pytest.fixture
def sfn_endpoint(moto_server):
    """moto 5.2.5 lacks two Step Functions calls the AWS provider makes; the demo's stand-in
    answers them and forwards everything else to moto (demo/step_functions.py)."""
    stand_in = LambdaStandIn()
    with stand_in.serving(moto_server):
        yield stand_in.url


def test_stack_applies_reads_back_and_destroys_on_the_emulator(
    synthesized, moto_server, sfn_endpoint, tmp_path
):
    require_terraform()
    config = synthesized.config
    names = config.names
    moto_server.reset()
    workspace = TerraformWorkspace.prepare(synthesized.stack_dir, tmp_path / "apply")
    ids = workspace.use_emulator(moto_server.endpoint_url, service_endpoints={"sfn": sfn_endpoint})
    assert (workspace.directory / OVERRIDE_FILE).is_file()
    assert not (synthesized.stack_dir / OVERRIDE_FILE).exists(), (
        "the synthesized stack is untouched"
    )
    workspace.init()
    try:
        workspace.apply()
        outputs = workspace.outputs()
        assert outputs["runner_function_name"] == names.runner_function
        machine = moto_server.client("stepfunctions").describe_state_machine(
            stateMachineArn=str(outputs["state_machine_arn"])
        )
        assert machine["name"] == names.state_machine
        assert outputs["results_bucket"] == names.results_bucket
        assert str(outputs["task_definition_arn"]).endswith(
            f"task-definition/{names.task_family}:1"
        )

        lam = moto_server.client("lambda")
        runner = lam.get_function_configuration(FunctionName=names.runner_function)
        assert sorted(runner["VpcConfig"]["SubnetIds"]) == sorted(
            ids[subnet] for subnet in config.vpc.private_subnet_ids
        )
        assert runner["PackageType"] == "Image"
        assert runner["Timeout"] == 900
        assert runner["Environment"]["Variables"]["RESULTS_BUCKET"] == names.results_bucket
        [runner_group] = runner["VpcConfig"]["SecurityGroupIds"]
        ec2 = moto_server.client("ec2")
        database_group = ec2.describe_security_groups(
            GroupIds=[ids[config.database.security_group_id]]
        )["SecurityGroups"][0]
        sources = [
            pair["GroupId"]
            for permission in database_group["IpPermissions"]
            if permission.get("FromPort") == 5432
            for pair in permission["UserIdGroupPairs"]
        ]
        assert runner_group in sources

        events = moto_server.client("events")
        targets = events.list_targets_by_rule(Rule=names.schedule_rule("nightly"))["Targets"]
        inputs = {t["Id"]: json.loads(t["Input"]) for t in targets}
        assert inputs == {
            "test": {"command": "test", "args": []},
            "scribe-generate": {"command": "scribe:generate", "args": []},
            "api-export-markdown": {"command": "api:export-markdown", "args": []},
        }
        rule = events.describe_rule(Name=names.schedule_rule("nightly"))
        assert rule["ScheduleExpression"] == "cron(0 2 * * ? *)"
        [weekly] = events.list_targets_by_rule(Rule=names.schedule_rule("weekly-full"))["Targets"]
        assert weekly["EcsParameters"]["LaunchType"] == "FARGATE"
        sqs = moto_server.client("sqs")
        schedule_dlq = sqs.get_queue_attributes(
            QueueUrl=sqs.get_queue_url(QueueName=names.schedule_dlq)["QueueUrl"],
            AttributeNames=["QueueArn", "Policy"],
        )["Attributes"]
        for target in [*targets, weekly]:
            assert target["DeadLetterConfig"] == {"Arn": schedule_dlq["QueueArn"]}, target["Id"]
            assert target["RetryPolicy"] == {
                "MaximumEventAgeInSeconds": 3600,
                "MaximumRetryAttempts": 8,
            }
        [queue_statement] = json.loads(schedule_dlq["Policy"])["Statement"]
        assert sorted(queue_statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == sorted(
            events.describe_rule(Name=names.schedule_rule(s.name))["Arn"] for s in config.schedules
        )

        ecr = moto_server.client("ecr")
        pull = json.loads(ecr.get_repository_policy(repositoryName=names.repository)["policyText"])
        [pull_statement] = pull["Statement"]
        assert pull_statement["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert (
            pull_statement["Condition"]["StringLike"]["aws:sourceArn"][0] == runner["FunctionArn"]
        )
        lifecycle = json.loads(
            ecr.get_lifecycle_policy(repositoryName=names.repository)["lifecyclePolicyText"]
        )
        assert [r["selection"]["tagStatus"] for r in lifecycle["rules"]] == ["tagged", "untagged"]

        permission = json.loads(lam.get_policy(FunctionName=names.report_function)["Policy"])
        [s3_invoke] = permission["Statement"]
        assert s3_invoke["Condition"]["StringEquals"]["AWS:SourceAccount"] == "123456789012"

        s3 = moto_server.client("s3")
        notification = s3.get_bucket_notification_configuration(Bucket=names.results_bucket)
        [target] = notification["LambdaFunctionConfigurations"]
        rules = {r["Name"].lower(): r["Value"] for r in target["Filter"]["Key"]["FilterRules"]}
        assert rules == {"prefix": "runs/", "suffix": "junit.xml"}
        assert target["LambdaFunctionArn"].endswith(f":function:{names.report_function}")
        block = s3.get_public_access_block(Bucket=names.results_bucket)
        assert all(block["PublicAccessBlockConfiguration"].values())

        check_deployed_alarms(moto_server.client("cloudwatch"), config, outputs["alerts_topic_arn"])
        # config/example.json switches both run alarms on: both were read back above.
        assert config.alarms.run_not_passed and config.alarms.new_failures

        # The run notification topic: handed to the report processor, e-mails subscribed.
        sns = moto_server.client("sns")
        notification_topic = outputs["notification_topic_arn"]
        assert notification_topic.endswith(f":{names.notification_topic}")
        report_env = lam.get_function_configuration(FunctionName=names.report_function)[
            "Environment"
        ]["Variables"]
        assert report_env["NOTIFICATION_TOPIC_ARN"] == notification_topic
        subscribed = sns.list_subscriptions_by_topic(TopicArn=notification_topic)["Subscriptions"]
        assert sorted((s["Protocol"], s["Endpoint"]) for s in subscribed) == [
            ("email", email) for email in config.notifications.emails
        ]
        # Each command's history expires with the results; the quarantine list does not.
        lifecycle_rules = {
            r["ID"]: r
            for r in s3.get_bucket_lifecycle_configuration(Bucket=names.results_bucket)["Rules"]
        }
        history_rule = lifecycle_rules["expire-old-history-test"]
        assert history_rule["Filter"] == {"Prefix": f"history/{config.project}/example/test/"}
        assert history_rule["Expiration"] == {"Days": config.retention.results_days}
        assert "Expiration" not in lifecycle_rules["expire-replaced-history"]

        # The customer-managed key (config/example.json turns it on) and every consumer of it.
        kms = moto_server.client("kms")
        key = kms.describe_key(KeyId=names.kms_alias)["KeyMetadata"]
        assert key["KeyManager"] == "CUSTOMER" and key["KeyState"] == "Enabled"
        assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
        policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
        logs_statement = next(
            s for s in policy["Statement"] if s["Sid"] == "CloudWatchLogsForThisStacksLogGroups"
        )
        assert logs_statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"][
            0
        ] == (f"arn:aws:logs:{config.region}:123456789012:log-group:{names.runner_log_group}")
        groups = moto_server.client("logs").describe_log_groups(logGroupNamePrefix="/")
        encrypted = {g["logGroupName"]: g.get("kmsKeyId") for g in groups["logGroups"]}
        for group in (names.runner_log_group, names.report_log_group, names.task_log_group):
            assert encrypted[group] == key["Arn"], group
        assert runner["KMSKeyArn"] == key["Arn"]
        report = lam.get_function_configuration(FunctionName=names.report_function)
        assert report["KMSKeyArn"] == key["Arn"]
        for arn in (outputs["alerts_topic_arn"], notification_topic):
            topic = sns.get_topic_attributes(TopicArn=arn)
            assert topic["Attributes"]["KmsMasterKeyId"] == key["Arn"], arn
        for queue in (names.runner_dlq, names.report_dlq, names.schedule_dlq):
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            assert attributes["Attributes"]["KmsMasterKeyId"] == key["Arn"], queue
        sse = s3.get_bucket_encryption(Bucket=names.results_bucket)
        [sse_rule] = sse["ServerSideEncryptionConfiguration"]["Rules"]
        assert sse_rule["ApplyServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": key["Arn"],
        }
        assert sse_rule["BucketKeyEnabled"] is True
    finally:
        workspace.destroy()
    assert workspace.state_resources() == []
    remaining = moto_server.client("lambda").list_functions()["Functions"]
    assert not [f for f in remaining if f["FunctionName"].startswith(names.prefix)]


def expected_alarms(config) -> dict[str, dict]:
    """Every alarm the stack deploys, written out from the config (not from modules/)."""
    names = config.names
    alarms = config.alarms
    hours = alarms.missing_result_hours
    tests = {
        "Namespace": config.metrics_namespace,
        "MetricName": "TestsTotal",
        "Dimensions": {"Project": "ltr", "Environment": "example", "Command": "test"},
    }
    runner = {"Namespace": "AWS/Lambda", "Dimensions": {"FunctionName": names.runner_function}}

    def queue(name: str) -> dict:
        return {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": {"QueueName": name},
            "Statistic": "Maximum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0,
            "TreatMissingData": "notBreaching",
        }

    # RunsNotPassed and NewFailures: the run's verdict and the history's diff, both 0 or more
    # per run; any run above 0 alarms, and an hour without a run is not breaching.
    per_run = {
        **tests,
        "Statistic": "Maximum",
        "Period": 3600,
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1,
        "TreatMissingData": "notBreaching",
    }
    switched = {
        names.run_not_passed_alarm: (alarms.run_not_passed, "RunsNotPassed"),
        names.new_failures_alarm: (alarms.new_failures, "NewFailures"),
    }
    return {
        **{
            name: {**per_run, "MetricName": metric}
            for name, (enabled, metric) in switched.items()
            if enabled
        },
        names.pass_rate_alarm: {
            **tests,
            "MetricName": "PassRate",
            "Statistic": "Minimum",
            "Period": 3600,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "ComparisonOperator": "LessThanThreshold",
            "Threshold": alarms.pass_rate_threshold,
            "TreatMissingData": "notBreaching",
        },
        # Hourly periods over the configured window, every one empty to alarm.
        names.missing_result_alarm: {
            **tests,
            "Statistic": "SampleCount",
            "Period": 3600,
            "EvaluationPeriods": hours,
            "DatapointsToAlarm": hours,
            "ComparisonOperator": "LessThanThreshold",
            "Threshold": 1,
            "TreatMissingData": "breaching",
        },
        names.too_few_tests_alarm: {
            **tests,
            "Statistic": "Minimum",
            "Period": 3600,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "ComparisonOperator": "LessThanThreshold",
            "Threshold": alarms.minimum_tests,
            "TreatMissingData": "notBreaching",
        },
        names.runner_errors_alarm: {
            **runner,
            "MetricName": "Errors",
            "Statistic": "Sum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": alarms.runner_errors_threshold,
            "TreatMissingData": "notBreaching",
        },
        names.runner_throttles_alarm: {
            **runner,
            "MetricName": "Throttles",
            "Statistic": "Sum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": alarms.runner_throttles_threshold,
            "TreatMissingData": "notBreaching",
        },
        names.runner_failures_alarm: queue(names.runner_dlq),
        names.report_failures_alarm: queue(names.report_dlq),
        names.schedule_failures_alarm: queue(names.schedule_dlq),
        names.sharded_run_failed_alarm: {
            "Namespace": "AWS/States",
            "MetricName": "ExecutionsFailed",
            "Dimensions": {
                "StateMachineArn": f"arn:aws:states:{config.region}:123456789012:stateMachine:"
                + names.state_machine
            },
            "Statistic": "Sum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "TreatMissingData": "notBreaching",
        },
    }


def check_deployed_alarms(cloudwatch, config, topic_arn: str) -> None:
    """Read every alarm back from the emulator and compare it with the config's arithmetic."""
    deployed = {
        alarm["AlarmName"]: alarm
        for alarm in cloudwatch.describe_alarms(AlarmNamePrefix=config.names.prefix)["MetricAlarms"]
    }
    expected = expected_alarms(config)
    assert set(deployed) == set(expected)
    for name, want in expected.items():
        alarm = deployed[name]
        got = {key: alarm.get(key) for key in want}
        got["Dimensions"] = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert got == want, name
        assert alarm["AlarmActions"] == alarm["OKActions"] == [topic_arn], name
    missing = deployed[config.names.missing_result_alarm]
    # CloudWatch's limit for periods of an hour or more: period x evaluation periods <= 7 days.
    assert missing["Period"] * missing["EvaluationPeriods"] <= 7 * 24 * 3600


def test_private_dns_check_stops_the_plan_when_the_vpc_lacks_dns_hostnames(
    synthesized, moto_server, tmp_path
):
    """The synthesized `data.aws_vpc` block, planned on its own against the emulator: a VPC without
    enableDnsHostnames (the default for a new VPC) stops the plan with the stack's message."""
    require_terraform()
    ec2 = moto_server.in_region(synthesized.config.region).client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    [(name, block)] = synthesized.data["data"]["aws_vpc"].items()
    block = {key: value for key, value in block.items() if key != "//"}
    block["id"] = vpc_id
    stack_dir = tmp_path / "dns-check"
    stack_dir.mkdir()
    (stack_dir / "cdk.tf.json").write_text(
        json.dumps(
            {
                "terraform": {
                    "required_providers": synthesized.data["terraform"]["required_providers"]
                },
                "provider": {"aws": [{"region": synthesized.config.region}]},
                "data": {"aws_vpc": {name: block}},
            }
        )
    )
    workspace = TerraformWorkspace.prepare(stack_dir, tmp_path / "work")
    # Not use_emulator(): that maps literal ids to new emulator VPCs; this id is the emulator's.
    override = emulator_override(moto_server.endpoint_url)
    (workspace.directory / OVERRIDE_FILE).write_text(json.dumps(override))
    workspace.extra_env.update(
        {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_PROFILE": ""}
    )
    workspace.init()
    with pytest.raises(TerraformError) as failed:
        workspace.run("plan", "-input=false", "-no-color")
    message = " ".join(str(failed.value).split())
    assert f"VPC {synthesized.config.vpc.vpc_id} needs enableDnsSupport and" in message
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    workspace.run("plan", "-input=false", "-no-color")
