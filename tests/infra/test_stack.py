"""Construct assertions on the synthesized stack (one synth per session, see conftest.py)."""

from __future__ import annotations

import json

import pytest
from cdktf import Testing

RUNNER = "runner/function"
REPORT = "reporting/function"


def has(synthesized, resource_type: str, properties: dict) -> bool:
    return Testing.to_have_resource_with_properties(synthesized.text, resource_type, properties)


def topic_arn(synthesized) -> str:
    """The reference to the run notification topic."""
    [logical_id] = [
        logical
        for logical, body in synthesized.resources("aws_sns_topic").items()
        if body["//"]["metadata"]["path"].endswith("notifications/topic")
    ]
    return f"${{aws_sns_topic.{logical_id}.arn}}"


def key_arn(synthesized) -> str:
    """The reference to the stack's one customer-managed key."""
    [logical_id] = synthesized.resources("aws_kms_key")
    return f"${{aws_kms_key.{logical_id}.arn}}"


ACCOUNT_ID = "${data.aws_caller_identity.account.account_id}"


def key_policy(synthesized) -> dict:
    return json.loads(synthesized.resource("aws_kms_key", "encryption/key")["policy"])


# --------------------------------------------------------------------------- network


def test_runner_function_runs_in_the_private_subnets_with_its_own_group(synthesized):
    config = synthesized.config
    runner = synthesized.resource("aws_lambda_function", RUNNER)
    assert runner["vpc_config"]["subnet_ids"] == list(config.vpc.private_subnet_ids)
    [group] = runner["vpc_config"]["security_group_ids"]
    assert group.startswith("${aws_security_group.network_runner_")


def test_runner_reaches_only_the_database_and_the_endpoints(synthesized):
    config = synthesized.config
    egress = synthesized.resources("aws_vpc_security_group_egress_rule").values()
    rules = {
        (rule["from_port"], rule.get("referenced_security_group_id") or rule.get("prefix_list_id"))
        for rule in egress
    }
    assert (5432, config.database.security_group_id) in rules
    assert all(rule["from_port"] in (443, 5432) for rule in egress)
    assert not any("cidr_ipv4" in rule for rule in egress), "no internet egress with endpoints"
    assert has(
        synthesized,
        "aws_vpc_security_group_ingress_rule",
        {
            "security_group_id": config.database.security_group_id,
            "ip_protocol": "tcp",
            "from_port": 5432,
            "to_port": 5432,
        },
    )


def test_vpc_endpoints_for_s3_secrets_logs_and_ecr(synthesized):
    endpoints = synthesized.resources("aws_vpc_endpoint").values()
    services = {e["service_name"].split("us-east-1.")[1]: e for e in endpoints}
    assert set(services) == {"s3", "secretsmanager", "logs", "ecr.api", "ecr.dkr"}
    assert services["s3"]["vpc_endpoint_type"] == "Gateway"
    assert services["s3"]["route_table_ids"] == list(synthesized.config.vpc.private_route_table_ids)
    for name in ("secretsmanager", "logs"):
        assert services[name]["vpc_endpoint_type"] == "Interface"
        assert services[name]["private_dns_enabled"] is True


def test_every_security_group_rule_is_described(synthesized):
    for kind in ("egress", "ingress"):
        for rule in synthesized.resources(f"aws_vpc_security_group_{kind}_rule").values():
            assert rule["description"]


# --------------------------------------------------------------------------- runner


def test_runner_function_settings_and_environment(synthesized):
    config = synthesized.config
    assert has(
        synthesized,
        "aws_lambda_function",
        {
            "function_name": "ltr-example-runner",
            "package_type": "Image",
            "memory_size": config.runner.memory_mb,
            "timeout": 900,
            "ephemeral_storage": {"size": config.runner.ephemeral_storage_mb},
        },
    )
    runner = synthesized.resource("aws_lambda_function", RUNNER)
    # Unset in the example: reserving concurrency fails `apply` in low-quota accounts.
    assert "reserved_concurrent_executions" not in runner
    report = synthesized.resource("aws_lambda_function", REPORT)
    assert "reserved_concurrent_executions" not in report
    assert runner["image_uri"].endswith("repository_url}:v1.0.0")
    env = runner["environment"]["variables"]
    assert env["RESULTS_BUCKET"].startswith("${aws_s3_bucket.results_bucket_")
    assert env["DB_SECRET_ARN"] == config.database.secret_arn
    assert json.loads(env["RUNNER_COMMANDS"]) == ["test", "scribe:generate", "api:export-markdown"]
    assert (env["PROJECT"], env["ENVIRONMENT"]) == ("ltr", "example")


def test_runner_async_invocations_are_not_retried_and_failures_go_to_sqs(synthesized):
    invoke = synthesized.resource("aws_lambda_function_event_invoke_config", "runner/async")
    assert invoke["maximum_retry_attempts"] == 0
    assert invoke["destination_config"]["on_failure"]["destination"].startswith(
        "${aws_sqs_queue.runner_failures_"
    )
    queue = synthesized.resource("aws_sqs_queue", "runner/failures")
    assert queue["kms_master_key_id"] == key_arn(synthesized)  # else SQS-managed SSE


def test_log_groups_have_retention(synthesized):
    groups = {g["name"]: g for g in synthesized.resources("aws_cloudwatch_log_group").values()}
    assert set(groups) == {
        "/aws/lambda/ltr-example-runner",
        "/aws/lambda/ltr-example-report-processor",
        "/ecs/ltr-example-runner",
        "/aws/lambda/ltr-example-shard-merge",
        "/aws/vendedlogs/states/ltr-example-sharded-run",
    }
    assert {g["retention_in_days"] for g in groups.values()} == {365}  # config/example.json


# --------------------------------------------------------------------------- IAM


def all_statements(synthesized) -> list[dict]:
    return [
        statement
        for body in synthesized.data["data"]["aws_iam_policy_document"].values()
        for statement in body["statement"]
    ]


def test_no_wildcard_actions_anywhere(synthesized):
    for statement in all_statements(synthesized):
        for action in statement["actions"]:
            assert "*" not in action, statement["sid"]
    for statement in key_policy(synthesized)["Statement"]:
        for action in statement["Action"]:
            assert "*" not in action, statement["Sid"]


ALLOWED_STAR_RESOURCES = {
    "DescribeNetworkInterfaces",  # ec2:Describe* accept only "*"
    "XRayTracing",  # X-Ray has no resource-level permissions
    "GetRegistryToken",  # ecr:GetAuthorizationToken is account-wide
    "DeliverExecutionLogs",  # Step Functions' vended-log delivery API accepts only "*"
}


def test_star_resources_only_where_aws_requires_them(synthesized):
    for statement in all_statements(synthesized):
        if "*" in statement["resources"]:
            assert statement["sid"] in ALLOWED_STAR_RESOURCES, statement


def test_runner_policy_is_scoped_to_its_prefixes_secret_and_queue(synthesized):
    statements = {s["sid"]: s for s in synthesized.policy_statements("runner/role_policy_document")}
    write = statements["WriteRunResultsAndDocs"]
    assert write["actions"] == ["s3:PutObject", "s3:AbortMultipartUpload"]
    assert [r.split("}")[-1] for r in write["resources"]] == ["/runs/*", "/docs/latest/*"]
    assert statements["ReadDatabaseSecret"]["resources"] == [synthesized.config.database.secret_arn]
    assert statements["ReadDatabaseSecret"]["actions"] == ["secretsmanager:GetSecretValue"]
    # HeadObject on an earlier run's manifest (run id reuse) needs GetObject, and ListBucket
    # so that a new run id reads as 404 rather than 403.
    check = statements["CheckRunIdNotUsed"]
    assert check["actions"] == ["s3:GetObject"]
    assert [r.split("}")[-1] for r in check["resources"]] == ["/runs/*"]
    assert statements["ListResultsBucket"]["actions"] == ["s3:ListBucket"]
    ec2 = f"arn:aws:ec2:us-east-1:{ACCOUNT_ID}"
    in_vpc = [
        {"test": "ArnEquals", "variable": "ec2:Vpc", "values": [f"{ec2}:vpc/vpc-0a1b2c3d4e5f60718"]}
    ]
    create = statements["CreateNetworkInterfacesInPrivateSubnets"]
    assert create["resources"] == [
        f"{ec2}:network-interface/*",
        f"{ec2}:security-group/*",
        f"{ec2}:subnet/subnet-0a1b2c3d4e5f60718",
        f"{ec2}:subnet/subnet-0b1c2d3e4f5a60719",
    ]
    assert create["condition"] == in_vpc
    manage = statements["ManageOwnNetworkInterfaces"]
    assert manage["resources"] == [f"{ec2}:network-interface/*"]
    assert manage["condition"] == in_vpc
    assert statements["WriteOwnLogs"]["resources"][0].startswith(
        "${aws_cloudwatch_log_group.runner_log_group_"
    )


def test_report_processor_reads_runs_and_writes_reports_and_history_only(synthesized):
    statements = {
        s["sid"]: s for s in synthesized.policy_statements("reporting/role_policy_document")
    }
    assert statements["ReadRunResults"]["actions"] == ["s3:GetObject"]
    assert statements["ReadRunResults"]["resources"][0].endswith("/runs/*")
    assert statements["WriteAndReadReports"]["resources"][0].endswith("/reports/*")
    writes = [s for s in statements.values() if "s3:PutObject" in s["actions"]]
    assert sorted(r.split("}")[-1] for s in writes for r in s["resources"]) == [
        "/history/*",
        "/reports/*",
    ]


def test_report_processor_reads_and_writes_the_run_history(synthesized):
    statements = {
        s["sid"]: s for s in synthesized.policy_statements("reporting/role_policy_document")
    }
    history = statements["ReadAndWriteHistory"]
    # Rows above 8 MiB go up in parts: a failed upload is aborted by the same role.
    assert history["actions"] == ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
    [resource] = history["resources"]
    assert resource.startswith("${aws_s3_bucket.results_bucket_") and resource.endswith(
        ".arn}/history/*"
    )
    # Listing is unconditioned: a missing index.json must read as 404, not 403.
    listing = statements["ListResultsBucket"]
    assert listing["actions"] == ["s3:ListBucket"] and listing["condition"] == []


def test_report_processor_may_publish_to_the_notification_topic_only(synthesized):
    statements = {
        s["sid"]: s for s in synthesized.policy_statements("reporting/role_policy_document")
    }
    publish = [s for s in all_statements(synthesized) if "sns:Publish" in s["actions"]]
    assert publish == [statements["PublishRunNotifications"]]
    assert publish[0]["actions"] == ["sns:Publish"]
    [topic] = publish[0]["resources"]
    assert topic.startswith("${aws_sns_topic.notifications_topic_") and topic.endswith(".arn}")


def test_roles_trust_only_their_service(synthesized):
    services = {
        role["name"]: json.loads(role["assume_role_policy"])["Statement"][0]["Principal"]["Service"]
        for role in synthesized.resources("aws_iam_role").values()
    }
    assert services == {
        "ltr-example-runner": "lambda.amazonaws.com",
        "ltr-example-report-processor": "lambda.amazonaws.com",
        "ltr-example-runner-task": "ecs-tasks.amazonaws.com",
        "ltr-example-runner-task-execution": "ecs-tasks.amazonaws.com",
        "ltr-example-events-run-task": "events.amazonaws.com",
        "ltr-example-shard-merge": "lambda.amazonaws.com",
        "ltr-example-sharded-run": "states.amazonaws.com",
        "ltr-example-events-start-sharded-run": "events.amazonaws.com",
    }


# --------------------------------------------------------------------------- registry


def test_ecr_is_immutable_scanned_encrypted_and_bounded(synthesized):
    assert has(
        synthesized,
        "aws_ecr_repository",
        {
            "name": "ltr-example-runner",
            "image_tag_mutability": "IMMUTABLE",
            "image_scanning_configuration": {"scan_on_push": True},
            "encryption_configuration": [{"encryption_type": "KMS"}],
        },
    )
    policy = json.loads(synthesized.resource("aws_ecr_lifecycle_policy", "lifecycle")["policy"])
    ci, untagged = policy["rules"]
    assert ci["selection"] == {
        "tagStatus": "tagged",
        "tagPrefixList": ["ci-"],
        "countType": "imageCountMoreThan",
        "countNumber": 20,
    }
    assert untagged["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 7,
    }
    assert [r["rulePriority"] for r in policy["rules"]] == [1, 2]
    assert all(r["action"] == {"type": "expire"} for r in policy["rules"])
    # No rule selects every image: release tags (and so the deployed image) never expire.
    assert not any(r["selection"]["tagStatus"] == "any" for r in policy["rules"])


def test_variant_without_ci_prefixes_only_expires_untagged_images(synthesized_variant):
    policy = json.loads(
        synthesized_variant.resource("aws_ecr_lifecycle_policy", "lifecycle")["policy"]
    )
    [rule] = policy["rules"]
    assert rule["selection"]["tagStatus"] == "untagged"


def test_lambda_may_pull_the_image_for_this_stacks_runner_only(synthesized):
    repository_policy = synthesized.resource("aws_ecr_repository_policy", "registry/lambda_pull")
    assert repository_policy["repository"].startswith("${aws_ecr_repository.registry_repository_")
    [statement] = json.loads(repository_policy["policy"])["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:ltr-example-runner"
    assert statement["Condition"] == {"StringLike": {"aws:sourceArn": [function, f"{function}:*"]}}
    # The function is created after the policy, so Lambda can pull on the first apply.
    runner = synthesized.resource("aws_lambda_function", RUNNER)
    assert any(d.startswith("aws_ecr_repository_policy.") for d in runner["depends_on"])


# --------------------------------------------------------------------------- results bucket


def test_bucket_blocks_all_public_access(synthesized):
    assert has(
        synthesized,
        "aws_s3_bucket_public_access_block",
        {
            "block_public_acls": True,
            "block_public_policy": True,
            "ignore_public_acls": True,
            "restrict_public_buckets": True,
        },
    )


def test_bucket_policy_denies_plain_http(synthesized):
    policy = json.loads(synthesized.resource("aws_s3_bucket_policy", "tls_only")["policy"])
    [statement] = policy["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Principal"] == "*" and statement["Action"] == "s3:*"


def test_bucket_encryption_versioning_ownership_and_expiry(synthesized):
    encryption = synthesized.resource(
        "aws_s3_bucket_server_side_encryption_configuration", "results/encryption"
    )
    rule = encryption["rule"][0]
    assert rule["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
    assert has(
        synthesized, "aws_s3_bucket_versioning", {"versioning_configuration": {"status": "Enabled"}}
    )
    assert has(
        synthesized,
        "aws_s3_bucket_ownership_controls",
        {"rule": {"object_ownership": "BucketOwnerEnforced"}},
    )
    rules = {
        r["id"]: r
        for r in synthesized.resource("aws_s3_bucket_lifecycle_configuration", "lifecycle")["rule"]
    }
    assert rules["expire-old-runs"]["filter"] == [{"prefix": "runs/"}]
    assert rules["expire-old-runs"]["expiration"] == [{"days": 90}]
    # The run history of every command follows the results' retention (retention.results_days)
    history = {
        rule["filter"][0]["prefix"]: rule["expiration"]
        for rule in rules.values()
        if rule["filter"][0]["prefix"].startswith("history/") and "expiration" in rule
    }
    assert history == {
        f"history/ltr/example/{slug}/": [{"days": 90}]
        for slug in ("api-export-markdown", "scribe-generate", "test")
    }
    # ...but not the environment's quarantine list: only its replaced versions expire.
    assert rules["expire-replaced-history"]["filter"] == [{"prefix": "history/"}]
    assert "expiration" not in rules["expire-replaced-history"]
    assert rules["expire-replaced-history"]["noncurrent_version_expiration"] == [
        {"noncurrent_days": 30}
    ]
    assert rules["abort-incomplete-uploads"]["abort_incomplete_multipart_upload"] == [
        {"days_after_initiation": 1}
    ]


def test_junit_uploads_notify_the_report_processor_after_the_permission(synthesized):
    notification = synthesized.resource("aws_s3_bucket_notification", "reporting/notification")
    [target] = notification["lambda_function"]
    assert target["filter_prefix"] == "runs/"
    # Only runs/<date>/<run_id>/<slug>/junit.xml, never any other .xml under runs/.
    assert target["filter_suffix"] == "junit.xml"
    assert target["events"] == ["s3:ObjectCreated:*"]
    assert target["lambda_function_arn"].startswith("${aws_lambda_function.reporting_function_")
    assert notification["depends_on"] == [
        "aws_lambda_permission.reporting_allow_bucket_E87064A9"
    ] or notification["depends_on"][0].startswith("aws_lambda_permission.reporting_allow_bucket")
    permission = synthesized.resource("aws_lambda_permission", "reporting/allow_bucket")
    assert permission["principal"] == "s3.amazonaws.com"
    assert permission["source_arn"].startswith("${aws_s3_bucket.results_bucket_")
    # Bucket ARNs carry no account: the permission is bound to this one too.
    assert permission["source_account"] == ACCOUNT_ID


# --------------------------------------------------------------------------- report processor


def test_report_processor_is_a_python_312_zip_with_powertools_settings(synthesized):
    report = synthesized.resource("aws_lambda_function", REPORT)
    assert report["runtime"] == "python3.12"
    assert report["handler"] == "report_processor.handler.handler"
    assert report["filename"].startswith("assets/") and report["filename"].endswith(".zip")
    assert report["source_code_hash"]
    assert report["environment"]["variables"] == {
        "PROJECT": "ltr",
        "ENVIRONMENT": "example",
        "POWERTOOLS_METRICS_NAMESPACE": "LambdaTestRunner",
        "POWERTOOLS_SERVICE_NAME": "report-processor",
        "RUNNER_COMMANDS": '["test", "scribe:generate", "api:export-markdown"]',
        "NOTIFICATION_TOPIC_ARN": topic_arn(synthesized),
    }
    assert (synthesized.stack_dir / report["filename"]).is_file()


# --------------------------------------------------------------------------- schedules


def test_nightly_schedule_has_one_target_per_command_with_its_input(synthesized):
    rule = synthesized.resource("aws_cloudwatch_event_rule", "schedules/nightly_rule")
    assert rule["schedule_expression"] == "cron(0 2 * * ? *)"
    assert rule["state"] == "ENABLED"
    targets = {
        t["target_id"]: t
        for t in synthesized.resources("aws_cloudwatch_event_target").values()
        if "nightly_rule" in t["rule"]
    }
    assert set(targets) == {"test", "scribe-generate", "api-export-markdown"}
    assert json.loads(targets["scribe-generate"]["input"]) == {
        "command": "scribe:generate",
        "args": [],
    }
    assert all(
        t["arn"].startswith("${aws_lambda_function.runner_function_") for t in targets.values()
    )
    assert has(
        synthesized,
        "aws_lambda_permission",
        {"principal": "events.amazonaws.com", "action": "lambda:InvokeFunction"},
    )


def test_weekly_fargate_schedule_runs_the_task_in_the_private_subnets(synthesized):
    target = next(
        t
        for t in synthesized.resources("aws_cloudwatch_event_target").values()
        if "weekly-full_rule" in t["rule"]
    )
    ecs = target["ecs_target"]
    assert ecs["launch_type"] == "FARGATE"
    assert ecs["network_configuration"]["subnets"] == list(
        synthesized.config.vpc.private_subnet_ids
    )
    assert ecs["network_configuration"]["assign_public_ip"] is False
    overrides = json.loads(target["input"])["containerOverrides"][0]
    assert overrides == {
        "name": "runner",
        "command": ["run", "test", "--testsuite", "Integration"],
    }
    assert target["role_arn"].startswith("${aws_iam_role.fargate_events_role_")


# --------------------------------------------------------------------------- fargate


def test_fargate_task_uses_the_runner_cli_and_a_read_only_root(synthesized):
    task = synthesized.resource("aws_ecs_task_definition", "fargate/task")
    assert task["requires_compatibilities"] == ["FARGATE"]
    assert task["network_mode"] == "awsvpc"
    assert (task["cpu"], task["memory"]) == ("1024", "4096")
    assert task["execution_role_arn"] != task["task_role_arn"]
    [container] = json.loads(task["container_definitions"])
    assert container["entryPoint"] + container["command"] == [
        "/var/lang/bin/python3.12",
        "-m",
        "runner",
        "run",
        "test",
    ]
    assert container["readonlyRootFilesystem"] is True
    # No init process: the runner is PID 1, so no other process can read PID 1's environment.
    assert "initProcessEnabled" not in json.dumps(container)
    assert container["mountPoints"][0]["containerPath"] == "/tmp"
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert set(env) == {
        "RESULTS_BUCKET",
        "DB_SECRET_ARN",
        "RUNNER_COMMANDS",
        "PROJECT",
        "ENVIRONMENT",
        "MAX_SHARDS",  # the plan's cap (runner.max_shards); a shard on Fargate plans nothing
    }
    cluster = synthesized.resource("aws_ecs_cluster", "fargate/cluster")
    assert cluster["setting"] == [{"name": "containerInsights", "value": "enabled"}]


def test_events_role_may_only_run_this_task_and_pass_its_roles(synthesized):
    statements = {
        s["sid"]: s for s in synthesized.policy_statements("fargate/events_role_policy_document")
    }
    assert statements["RunRunnerTask"]["actions"] == ["ecs:RunTask"]
    assert statements["RunRunnerTask"]["condition"][0]["variable"] == "ecs:cluster"
    assert statements["PassTaskRoles"]["condition"][0]["values"] == ["ecs-tasks.amazonaws.com"]


# --------------------------------------------------------------------------- monitoring


def alarm(synthesized, name: str) -> dict:
    alarms = {
        a["alarm_name"]: a for a in synthesized.resources("aws_cloudwatch_metric_alarm").values()
    }
    return alarms[name]


TEST_DIMENSIONS = {"Project": "ltr", "Environment": "example", "Command": "test"}


def test_pass_rate_alarm(synthesized):
    pass_rate = alarm(synthesized, "ltr-example-pass-rate-low")
    assert pass_rate["namespace"] == "LambdaTestRunner"
    assert pass_rate["metric_name"] == "PassRate"
    assert pass_rate["dimensions"] == TEST_DIMENSIONS
    assert pass_rate["comparison_operator"] == "LessThanThreshold"
    assert pass_rate["threshold"] == 95


def test_missing_nightly_result_alarm_uses_hourly_periods_over_the_window(synthesized):
    missing = alarm(synthesized, "ltr-example-nightly-result-missing")
    assert missing["metric_name"] == "TestsTotal"
    assert missing["statistic"] == "SampleCount"
    assert missing["period"] == 3600
    # Every hour of the configured window (28 h in the example) must be empty to alarm.
    assert missing["evaluation_periods"] == missing["datapoints_to_alarm"] == 28
    assert missing["treat_missing_data"] == "breaching"
    assert missing["dimensions"] == TEST_DIMENSIONS
    assert missing["period"] * missing["evaluation_periods"] <= 7 * 24 * 3600


def test_too_few_tests_alarm(synthesized):
    too_few = alarm(synthesized, "ltr-example-too-few-tests")
    assert (too_few["metric_name"], too_few["statistic"]) == ("TestsTotal", "Minimum")
    assert too_few["comparison_operator"] == "LessThanThreshold"
    assert too_few["threshold"] == synthesized.config.alarms.minimum_tests == 1
    assert too_few["treat_missing_data"] == "notBreaching"
    assert too_few["dimensions"] == TEST_DIMENSIONS


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_runner_error_and_throttle_alarms(synthesized, metric):
    name = {"Errors": "ltr-example-runner-errors", "Throttles": "ltr-example-runner-throttles"}
    watched = alarm(synthesized, name[metric])
    assert (watched["namespace"], watched["metric_name"]) == ("AWS/Lambda", metric)
    assert watched["dimensions"] == {"FunctionName": "ltr-example-runner"}
    assert watched["threshold"] == 1


def test_run_not_passed_alarm_fires_on_any_run_that_did_not_pass(synthesized):
    watched = alarm(synthesized, "ltr-example-run-not-passed")
    assert (watched["namespace"], watched["metric_name"]) == ("LambdaTestRunner", "RunsNotPassed")
    assert watched["dimensions"] == TEST_DIMENSIONS
    assert (watched["statistic"], watched["period"]) == ("Maximum", 3600)
    assert watched["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    assert watched["threshold"] == 1
    assert watched["treat_missing_data"] == "notBreaching"


def test_new_failures_alarm_when_switched_on(synthesized):
    watched = alarm(synthesized, "ltr-example-new-failures")
    assert (watched["metric_name"], watched["statistic"]) == ("NewFailures", "Maximum")
    assert watched["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    assert watched["threshold"] == 1
    assert watched["treat_missing_data"] == "notBreaching"


def test_switched_off_run_alarms_are_not_deployed(synthesized_variant):
    names = {
        a["alarm_name"]
        for a in synthesized_variant.resources("aws_cloudwatch_metric_alarm").values()
    }
    assert "ltr-example-new-failures" not in names  # off by default
    assert "ltr-example-run-not-passed" not in names  # switched off in the variant
    assert "ltr-example-pass-rate-low" in names


def test_notification_topic_subscribes_the_configured_addresses(synthesized, synthesized_variant):
    topic = synthesized.resource("aws_sns_topic", "notifications/topic")
    assert topic["name"] == "ltr-example-test-runs"
    subscriptions = [
        s
        for s in synthesized.resources("aws_sns_topic_subscription").values()
        if s["topic_arn"] == topic_arn(synthesized)
    ]
    assert [(s["protocol"], s["endpoint"]) for s in subscriptions] == [
        ("email", "test-runs@example.com")
    ]
    assert synthesized.data["output"]["notification_topic_arn"]["value"] == topic_arn(synthesized)
    # The variant subscribes nobody: the topic exists anyway (the processor always publishes).
    variant = synthesized_variant
    assert variant.resource("aws_sns_topic", "notifications/topic")
    assert [
        s
        for s in variant.resources("aws_sns_topic_subscription").values()
        if s["topic_arn"] == topic_arn(variant)
    ] == []


def test_alarms_notify_the_topic_and_email_is_subscribed(synthesized):
    for watched in synthesized.resources("aws_cloudwatch_metric_alarm").values():
        assert watched["alarm_actions"] == [watched["ok_actions"][0]]
        assert watched["alarm_actions"][0].startswith("${aws_sns_topic.monitoring_alerts_")
    assert has(
        synthesized,
        "aws_sns_topic_subscription",
        {"protocol": "email", "endpoint": "test-alerts@example.com"},
    )


def test_dashboard_shows_pass_rate_counts_durations_and_errors(synthesized):
    dashboard = synthesized.resource("aws_cloudwatch_dashboard", "monitoring/dashboard")
    assert dashboard["dashboard_name"] == "ltr-example-tests"
    body = json.loads(dashboard["dashboard_body"])
    metrics = {m[1] for w in body["widgets"] for m in w["properties"]["metrics"]}
    assert {"PassRate", "TestsPassed", "TestsFailed", "DurationSeconds"} <= metrics
    assert {"Duration", "Errors", "Throttles"} <= metrics
    history = {
        tuple(m[:8]): m[8]
        for w in body["widgets"]
        for m in w["properties"]["metrics"]
        if m[1] in ("RunsNotPassed", "NewFailures", "FixedTests", "FlakyTests", "QuarantinedTests")
    }
    dims = ("Project", "ltr", "Environment", "example", "Command", "test")
    assert set(history) == {
        ("LambdaTestRunner", metric, *dims)
        for metric in (
            "RunsNotPassed",
            "NewFailures",
            "FixedTests",
            "FlakyTests",
            "QuarantinedTests",
        )
    }
    # Same dimensions as the metrics the report processor publishes and the alarms watch.
    assert alarm(synthesized, "ltr-example-new-failures")["dimensions"] == dict(
        zip(dims[::2], dims[1::2], strict=True)
    )


def test_no_two_dashboard_widgets_take_the_same_place(synthesized):
    dashboard = synthesized.resource("aws_cloudwatch_dashboard", "monitoring/dashboard")
    cells: dict[tuple[int, int], str] = {}
    for widget in json.loads(dashboard["dashboard_body"])["widgets"]:
        title = widget["properties"]["title"]
        assert widget["x"] + widget["width"] <= 24, title  # CloudWatch's grid is 24 wide
        for x in range(widget["x"], widget["x"] + widget["width"]):
            for y in range(widget["y"], widget["y"] + widget["height"]):
                assert (x, y) not in cells, f"{title!r} lies over {cells[(x, y)]!r}"
                cells[(x, y)] = title


# --------------------------------------------------------------------------- encryption

ACCOUNT = "${data.aws_caller_identity.account."
LOG_GROUP_ARNS = [
    f"arn:aws:logs:us-east-1:{{account}}:log-group:{name}"
    for name in (
        "/aws/lambda/ltr-example-runner",
        "/aws/lambda/ltr-example-report-processor",
        "/aws/lambda/ltr-example-shard-merge",
        "/aws/vendedlogs/states/ltr-example-sharded-run",
        "/ecs/ltr-example-runner",
    )
]


def test_customer_managed_key_rotates_and_has_an_alias(synthesized):
    assert has(
        synthesized,
        "aws_kms_key",
        {"enable_key_rotation": True, "deletion_window_in_days": 30},
    )
    assert has(synthesized, "aws_kms_alias", {"name": "alias/ltr-example"})
    alias = synthesized.resource("aws_kms_alias", "encryption/alias")
    assert alias["target_key_id"] == key_arn(synthesized).replace(".arn}", ".key_id}")


def key_statements(synthesized) -> dict[str, dict]:
    return {s["Sid"]: s for s in key_policy(synthesized)["Statement"]}


def test_key_policy_lets_exactly_the_stacks_services_use_the_key(synthesized):
    statements = key_statements(synthesized)
    assert set(statements) == {
        "AccountAdministersTheKey",
        "CloudWatchLogsForThisStacksLogGroups",
        "CloudWatchAlarmsPublishToTheEncryptedTopic",
        "EventBridgeRulesQueueUndeliveredEvents",
        "AccountPrincipalsThroughLambdaS3SqsSns",
        "LambdaGrantsForFunctionEnvironment",
    }
    assert all(s["Effect"] == "Allow" and s["Resource"] == "*" for s in statements.values())
    principals = {sid: s["Principal"] for sid, s in statements.items()}
    root = principals["AccountAdministersTheKey"]["AWS"]
    assert root.startswith("arn:aws:iam::" + ACCOUNT) and root.endswith(".account_id}:root")
    assert principals["CloudWatchLogsForThisStacksLogGroups"] == {
        "Service": "logs.us-east-1.amazonaws.com"
    }
    assert principals["CloudWatchAlarmsPublishToTheEncryptedTopic"] == {
        "Service": "cloudwatch.amazonaws.com"
    }
    assert principals["EventBridgeRulesQueueUndeliveredEvents"] == {
        "Service": "events.amazonaws.com"
    }
    assert principals["AccountPrincipalsThroughLambdaS3SqsSns"] == {"AWS": root}
    assert principals["LambdaGrantsForFunctionEnvironment"] == {"AWS": root}
    # Nobody outside the account, and no wildcard principal.
    assert "*" not in json.dumps(list(principals.values()))


def test_account_root_administers_but_cannot_use_the_key_directly(synthesized):
    admin = key_statements(synthesized)["AccountAdministersTheKey"]["Action"]
    assert {"kms:PutKeyPolicy", "kms:EnableKeyRotation", "kms:ScheduleKeyDeletion"} <= set(admin)
    crypto = {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom"}
    assert not crypto & set(admin)


def test_logs_may_use_the_key_only_for_this_stacks_log_groups(synthesized):
    logs = key_statements(synthesized)["CloudWatchLogsForThisStacksLogGroups"]
    [(test, conditions)] = logs["Condition"].items()
    assert test == "ArnEquals"
    [arns] = conditions.values()
    assert list(conditions) == ["kms:EncryptionContext:aws:logs:arn"]
    account = arns[0].split(":")[4]
    assert account.startswith(ACCOUNT)
    assert arns == [arn.format(account=account) for arn in LOG_GROUP_ARNS]


def test_account_principals_use_the_key_only_through_lambda_s3_sqs_and_sns(synthesized):
    statements = key_statements(synthesized)
    via = statements["AccountPrincipalsThroughLambdaS3SqsSns"]
    assert via["Condition"]["StringEquals"]["kms:ViaService"] == [
        "lambda.us-east-1.amazonaws.com",
        "s3.us-east-1.amazonaws.com",
        "sqs.us-east-1.amazonaws.com",
        "sns.us-east-1.amazonaws.com",
    ]
    assert via["Condition"]["StringEquals"]["kms:CallerAccount"].startswith(ACCOUNT)
    grants = statements["LambdaGrantsForFunctionEnvironment"]
    assert grants["Action"] == ["kms:CreateGrant"]
    assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    assert grants["Condition"]["StringEquals"]["kms:ViaService"] == "lambda.us-east-1.amazonaws.com"
    alarms = statements["CloudWatchAlarmsPublishToTheEncryptedTopic"]
    assert alarms["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]


@pytest.mark.parametrize(
    ("sid", "source_arn"),
    [
        (
            "CloudWatchAlarmsPublishToTheEncryptedTopic",
            f"arn:aws:cloudwatch:us-east-1:{ACCOUNT_ID}:alarm:ltr-example-*",
        ),
        (
            "EventBridgeRulesQueueUndeliveredEvents",
            f"arn:aws:events:us-east-1:{ACCOUNT_ID}:rule/ltr-example-*",
        ),
    ],
)
def test_service_principals_act_for_this_account_and_stack_only(synthesized, sid, source_arn):
    statement = key_statements(synthesized)[sid]
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
        "ArnLike": {"aws:SourceArn": source_arn},
    }


def test_every_consumer_is_wired_to_the_key(synthesized):
    arn = key_arn(synthesized)
    groups = synthesized.resources("aws_cloudwatch_log_group").values()
    assert [g["kms_key_id"] for g in groups] == [arn] * 5
    for function in (RUNNER, REPORT, "sharding/merge"):
        assert synthesized.resource("aws_lambda_function", function)["kms_key_arn"] == arn
    assert synthesized.resource("aws_sns_topic", "monitoring/alerts")["kms_master_key_id"] == arn
    topic = synthesized.resource("aws_sns_topic", "notifications/topic")
    assert topic["kms_master_key_id"] == arn
    for queue in synthesized.resources("aws_sqs_queue").values():
        assert queue["kms_master_key_id"] == arn
        assert "sqs_managed_sse_enabled" not in queue
    encryption = synthesized.resource(
        "aws_s3_bucket_server_side_encryption_configuration", "results/encryption"
    )
    [rule] = encryption["rule"]
    assert rule["apply_server_side_encryption_by_default"] == {
        "sse_algorithm": "aws:kms",
        "kms_master_key_id": arn,
    }
    assert rule["bucket_key_enabled"] is True
    # ECR keeps the AWS-managed key: a repository's encryption cannot change after creation.
    repository = synthesized.resource("aws_ecr_repository", "registry/repository")
    assert repository["encryption_configuration"] == [{"encryption_type": "KMS"}]


@pytest.mark.parametrize(
    ("document", "sid", "services"),
    [
        ("runner/role_policy_document", "EncryptRunResults", ["s3"]),
        ("runner/role_policy_document", "DecryptEnvironmentAndQueueFailures", ["lambda", "sqs"]),
        ("reporting/role_policy_document", "EncryptResultsAndReports", ["s3"]),
        ("reporting/role_policy_document", "DecryptEnvironmentAndQueueFailures", ["lambda", "sqs"]),
        ("reporting/role_policy_document", "PublishEncryptedNotifications", ["sns"]),
        ("fargate/task_role_policy_document", "EncryptRunResults", ["s3"]),
        ("sharding/merge_role_policy_document", "EncryptResults", ["s3"]),
        ("sharding/merge_role_policy_document", "DecryptEnvironment", ["lambda"]),
    ],
)
def test_roles_may_use_the_key_only_through_their_services(synthesized, document, sid, services):
    statements = {s["sid"]: s for s in synthesized.policy_statements(document)}
    statement = statements[sid]
    assert statement["actions"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["resources"] == [key_arn(synthesized)]
    assert statement["condition"] == [
        {
            "test": "StringEquals",
            "variable": "kms:ViaService",
            "values": [f"{service}.us-east-1.amazonaws.com" for service in services],
        }
    ]


def test_only_the_roles_that_touch_encrypted_data_get_key_permissions(synthesized):
    with_kms = {
        body["//"]["metadata"]["path"].split("/")[-2]
        + "/"
        + body["//"]["metadata"]["path"].split("/")[-1]
        for body in synthesized.data["data"]["aws_iam_policy_document"].values()
        if any(a.startswith("kms:") for s in body["statement"] for a in s["actions"])
    }
    assert with_kms == {
        "runner/role_policy_document",
        "reporting/role_policy_document",
        "fargate/task_role_policy_document",
        "sharding/merge_role_policy_document",
    }


def test_without_the_flag_the_stack_keeps_aws_managed_keys(synthesized_variant):
    stack = synthesized_variant
    assert stack.resources("aws_kms_key") == {}
    assert stack.resources("aws_kms_alias") == {}
    assert "kms:" not in json.dumps(stack.data["data"]["aws_iam_policy_document"])
    for group in stack.resources("aws_cloudwatch_log_group").values():
        assert "kms_key_id" not in group
    for function in (RUNNER, REPORT):
        assert "kms_key_arn" not in stack.resource("aws_lambda_function", function)
    assert "kms_master_key_id" not in stack.resource("aws_sns_topic", "monitoring/alerts")
    # Only the report processor's role publishes run notifications, and SNS's AWS-managed key
    # serves the account's principals: encrypted without the stack key too (checkov CKV_AWS_26).
    notifications = stack.resource("aws_sns_topic", "notifications/topic")
    assert notifications["kms_master_key_id"] == "alias/aws/sns"
    for queue in stack.resources("aws_sqs_queue").values():
        assert queue["sqs_managed_sse_enabled"] is True
        assert "kms_master_key_id" not in queue
    encryption = stack.resource(
        "aws_s3_bucket_server_side_encryption_configuration", "results/encryption"
    )
    assert encryption["rule"][0]["apply_server_side_encryption_by_default"] == {
        "sse_algorithm": "aws:kms"
    }


# --------------------------------------------------------------------------- stack level


def test_outputs(synthesized):
    assert set(synthesized.data["output"]) == {
        "repository_url",
        "runner_function_name",
        "report_function_name",
        "results_bucket",
        "dashboard_name",
        "alerts_topic_arn",
        "notification_topic_arn",
        "cluster_name",
        "task_definition_arn",
        "state_machine_arn",
        "merge_function_name",
    }


def test_backend_is_local_with_a_relative_path_and_no_emulator_settings(synthesized):
    assert synthesized.data["terraform"]["backend"] == {
        "local": {"path": "../../../terraform.ltr-example.tfstate"}
    }
    provider = synthesized.data["provider"]["aws"][0]
    assert provider["region"] == "us-east-1"
    assert "endpoints" not in provider and "access_key" not in provider
    assert "/work/" not in synthesized.text and "/tmp/" not in synthesized.text
    assert Testing.to_have_provider_with_properties(
        synthesized.text, "aws", {"region": "us-east-1"}
    )


def test_the_testing_matcher_rejects_what_is_not_there(synthesized):
    # Guards every `has(...)` above against a matcher that always says yes.
    assert not has(synthesized, "aws_lambda_function", {"timeout": 901})
    assert not has(synthesized, "aws_ecr_repository", {"image_tag_mutability": "MUTABLE"})


# --------------------------------------------------------------------------- issue 10/11 items


def test_runner_and_task_roles_decrypt_the_db_secret_through_secrets_manager_only(synthesized):
    key = synthesized.config.database.secret_kms_key_arn
    for document in ("runner/role_policy_document", "fargate/task_role_policy_document"):
        statements = {s["sid"]: s for s in synthesized.policy_statements(document)}
        statement = statements["DecryptDatabaseSecretThroughSecretsManager"]
        assert statement["actions"] == ["kms:Decrypt"]
        assert statement["resources"] == [key]
        assert statement["condition"] == [
            {
                "test": "StringEquals",
                "variable": "kms:ViaService",
                "values": ["secretsmanager.us-east-1.amazonaws.com"],
            }
        ]


def test_without_a_secret_key_no_role_may_decrypt_it(synthesized_variant):
    text = json.dumps(synthesized_variant.data["data"]["aws_iam_policy_document"])
    assert "DecryptDatabaseSecretThroughSecretsManager" not in text


def test_reserved_concurrency_when_set_reaches_the_function(synthesized_variant):
    runner = synthesized_variant.resource("aws_lambda_function", RUNNER)
    assert runner["reserved_concurrent_executions"] == 3


def test_private_dns_attributes_are_checked_when_interface_endpoints_are_used(synthesized):
    [vpc] = synthesized.data["data"]["aws_vpc"].values()
    assert vpc["id"] == synthesized.config.vpc.vpc_id
    [check] = vpc["lifecycle"]["postcondition"]
    assert check["condition"] == "${self.enable_dns_support && self.enable_dns_hostnames}"
    assert "enableDnsSupport and enableDnsHostnames" in check["error_message"]


def test_existing_endpoints_are_read_not_created_and_none_goes_through_nat(synthesized_variant):
    stack = synthesized_variant
    assert stack.resources("aws_vpc_endpoint") == {}
    existing = {
        body["service_name"].split("us-east-1.")[1]: body
        for body in stack.data["data"]["aws_vpc_endpoint"].values()
    }
    # secretsmanager and logs "exists", s3 "exists" (gateway), ecr "none".
    assert set(existing) == {"s3", "secretsmanager", "logs"}
    assert existing["s3"]["filter"] == [{"name": "vpc-endpoint-type", "values": ["Gateway"]}]
    for service in ("secretsmanager", "logs"):
        [check] = existing[service]["lifecycle"]["postcondition"]
        assert check["condition"] == "${self.private_dns_enabled}"
    assert "lifecycle" not in existing["s3"]
    egress = {
        rule["description"]: rule
        for rule in stack.resources("aws_vpc_security_group_egress_rule").values()
    }
    assert egress["HTTPS to S3 through the gateway endpoint"]["prefix_list_id"].startswith(
        "${data.aws_vpc_endpoint.network_existing_s3_"
    )
    assert egress["HTTPS to the VPC's existing interface endpoints"]["cidr_ipv4"].startswith(
        "${data.aws_vpc.network_vpc_"
    )
    assert egress["HTTPS to AWS APIs through the NAT gateway"]["cidr_ipv4"] == "0.0.0.0/0"
    assert all(rule["from_port"] in (443, 5432) for rule in egress.values())


def test_example_creates_every_endpoint_and_needs_no_nat(synthesized):
    egress = synthesized.resources("aws_vpc_security_group_egress_rule").values()
    assert not any(rule.get("cidr_ipv4") for rule in egress)
    assert "aws_vpc_endpoint" not in synthesized.data["data"]


def test_destroy_removes_the_runner_group_before_the_role_policy(synthesized):
    group = synthesized.resource("aws_security_group", "network/runner")
    [policy_id] = [
        f"aws_iam_role_policy.{logical}"
        for logical, body in synthesized.resources("aws_iam_role_policy").items()
        if body["//"]["metadata"]["path"].endswith("runner/role_policy")
    ]
    assert group["depends_on"] == [policy_id]
    # ...which is possible only because the policy does not refer to the group.
    [document] = [
        body
        for body in synthesized.data["data"]["aws_iam_policy_document"].values()
        if body["//"]["metadata"]["path"].endswith("runner/role_policy_document")
    ]
    assert "aws_security_group." not in json.dumps(document)
    # The function, which Lambda detaches from the group's interfaces, goes first.
    runner = synthesized.resource("aws_lambda_function", RUNNER)
    assert policy_id in runner["depends_on"]
    assert "aws_security_group.network_runner" in json.dumps(runner["vpc_config"])


def test_every_schedule_target_retries_then_dead_letters(synthesized):
    targets = synthesized.resources("aws_cloudwatch_event_target").values()
    # Three nightly Lambda targets, the weekly ECS target, the sharded nightly's state machine.
    assert len(targets) == 5
    for target in targets:
        assert target["retry_policy"] == {
            "maximum_event_age_in_seconds": 3600,
            "maximum_retry_attempts": 8,
        }
        assert target["dead_letter_config"]["arn"].startswith("${aws_sqs_queue.schedules_failures_")
    assert any("ecs_target" in target for target in targets)
    queue = synthesized.resource("aws_sqs_queue", "schedules/failures")
    assert queue["name"] == "ltr-example-schedule-failures"
    policy = json.loads(
        synthesized.resource("aws_sqs_queue_policy", "schedules/failures_policy")["policy"]
    )
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    rules = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(rules) == sorted(
        f"${{aws_cloudwatch_event_rule.{logical}.arn}}"
        for logical in synthesized.resources("aws_cloudwatch_event_rule")
    )
    watched = alarm(synthesized, "ltr-example-schedule-failures-queued")
    assert watched["dimensions"]["QueueName"].startswith("${aws_sqs_queue.schedules_failures_")
    assert watched["comparison_operator"] == "GreaterThanThreshold" and watched["threshold"] == 0


def test_rule_names_fit_eventbridge(synthesized):
    for rule in synthesized.resources("aws_cloudwatch_event_rule").values():
        assert len(rule["name"]) <= 64
