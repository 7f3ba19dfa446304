"""Config loading and validation: every error names the field and the fix (no cdktf needed)."""

from __future__ import annotations

import copy
import json
import time

import pytest

from modules.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    EndpointsConfig,
    load_config,
    parse_config,
)

EXAMPLE = json.loads(DEFAULT_CONFIG_PATH.read_text())


def mutated(change) -> dict:
    raw = copy.deepcopy(EXAMPLE)
    change(raw)
    return raw


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "test.json")
    return caught.value.problems


def test_example_config_loads_with_every_optional_feature_on(example_config):
    config = example_config
    assert config.vpc.endpoints.with_mode("create") == ("s3", "secretsmanager", "logs", "ecr")
    assert config.fargate.enabled
    assert config.alarms.email
    assert config.database.secret_kms_key_arn
    assert config.retention.ci_tag_prefixes == ("ci-",)
    # Reserved concurrency breaks `apply` in new or low-quota accounts: unset in the example.
    assert config.runner.reserved_concurrency is None
    assert config.report_processor.reserved_concurrency is None
    assert config.encryption.customer_managed_key
    assert config.retention.log_days == 365
    assert {schedule.target for schedule in config.schedules} == {"lambda", "fargate"}
    assert config.schedules[0].expression == "cron(0 2 * * ? *)"
    assert [run.command for run in config.schedules[0].runs] == [
        "test",
        "scribe:generate",
        "api:export-markdown",
    ]


def test_names_are_derived_in_one_place(example_config):
    names = example_config.names
    assert names.stack == "lambda-test-runner"
    assert names.repository == "ltr-example-runner"
    assert names.runner_function == "ltr-example-runner"
    assert names.report_function == "ltr-example-report-processor"
    assert names.results_bucket == "ltr-example-test-results"
    assert names.cluster == "ltr-example-runner"
    assert names.task_family == "ltr-example-runner"
    assert names.dashboard == "ltr-example-tests"
    assert names.runner_log_group == "/aws/lambda/ltr-example-runner"
    assert names.schedule_rule("nightly") == "ltr-example-nightly"
    assert names.kms_alias == "alias/ltr-example"


def test_loading_the_config_is_cheap_and_imports_no_cdktf():
    import subprocess
    import sys

    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from modules.config import load_config; load_config('example')\n"
        "assert not any(m.startswith(('cdktf', 'jsii', 'constructs')) for m in sys.modules), "
        "sorted(m for m in sys.modules if m.startswith(('cdktf', 'jsii')))\n"
        "print(time.perf_counter() - t)"
    )
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert time.perf_counter() - started < 10


def test_minimal_config_gets_sensible_defaults():
    raw = {
        "project": "acme",
        "environment": "dev",
        "region": "eu-west-1",
        "vpc": {
            "vpc_id": "vpc-0123456789abcdef0",
            "private_subnet_ids": ["subnet-01234567", "subnet-89abcdef"],
            "endpoints": {"s3": "none", "secretsmanager": "none"},
        },
        "database": {
            "security_group_id": "sg-0123456789abcdef0",
            "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
        },
        "image": {"digest": "sha256:" + "a" * 64},
    }
    config = parse_config(raw)
    assert config.database.port == 5432
    assert config.runner.timeout_seconds == 900
    assert config.runner.commands == ("test", "scribe:generate", "api:export-markdown")
    assert config.schedules[0].name == "nightly"
    assert config.schedules[0].expression == "cron(0 2 * * ? *)"
    assert not config.fargate.enabled
    assert config.alarms.email is None
    assert config.image.reference == "@sha256:" + "a" * 64
    assert config.retention.log_days == 30
    assert config.encryption.customer_managed_key is False
    assert config.state_backend is None
    # Without Fargate nothing in the VPC needs the Logs or ECR endpoints.
    assert config.vpc.endpoints == EndpointsConfig("none", "none", "none", "none")
    assert config.alarms.missing_result_hours == 28
    assert config.alarms.minimum_tests == 1
    assert config.retention.untagged_image_days == 7
    assert config.retention.ci_tag_prefixes == ()
    # Issue 9: a run that did not pass alarms by default; issue 12: the new-failures alarm and
    # notification e-mails are opt-in.
    assert config.alarms.run_not_passed is True
    assert config.alarms.new_failures is False
    assert config.notifications.emails == ()


def test_example_turns_on_the_run_alarms_and_subscribes_an_address(example_config):
    assert example_config.alarms.run_not_passed and example_config.alarms.new_failures
    assert example_config.notifications.emails == ("test-runs@example.com",)
    names = example_config.names
    assert names.notification_topic == "ltr-example-test-runs"
    assert names.run_not_passed_alarm == "ltr-example-run-not-passed"
    assert names.new_failures_alarm == "ltr-example-new-failures"


def test_notification_problems_are_reported_with_the_others():
    def break_many(raw):
        raw["notifications"]["emails"] = ["a@example.com", "nope"]
        raw["alarms"]["new_failures"] = 1
        raw["runner"]["timeout_seconds"] = 901

    problems = problems_of(mutated(break_many))
    assert [problem.split(":")[0] for problem in problems] == [
        "runner.timeout_seconds",
        "alarms.new_failures",
        "notifications.emails[1]",
    ]


CASES = {
    "one_subnet": (
        lambda raw: raw["vpc"].update(private_subnet_ids=["subnet-0a1b2c3d4e5f60718"]),
        'vpc.private_subnet_ids: need at least 2 subnet ids like "subnet-',
    ),
    "bad_subnet_id": (
        lambda raw: raw["vpc"]["private_subnet_ids"].append("subnet-XYZ"),
        'vpc.private_subnet_ids[2]: "subnet-XYZ" is not valid; use "subnet-',
    ),
    "duplicate_subnet": (
        lambda raw: raw["vpc"]["private_subnet_ids"].append(raw["vpc"]["private_subnet_ids"][0]),
        "vpc.private_subnet_ids: lists subnet-0a1b2c3d4e5f60718 more than once",
    ),
    "bad_vpc_id": (
        lambda raw: raw["vpc"].update(vpc_id="my-vpc"),
        'vpc.vpc_id: "my-vpc" is not valid; use a value like "vpc-',
    ),
    "endpoints_without_route_tables": (
        lambda raw: raw["vpc"].pop("private_route_table_ids"),
        "vpc.private_route_table_ids: need the private subnets' route table ids",
    ),
    "missing_vpc": (lambda raw: raw.pop("vpc"), "vpc: is required"),
    "bad_security_group": (
        lambda raw: raw["database"].update(security_group_id="default"),
        'database.security_group_id: "default" is not valid; use a value like "sg-',
    ),
    "bad_port": (
        lambda raw: raw["database"].update(port=70000),
        "database.port: 70000 is out of range; use 1 to 65535",
    ),
    "bad_secret_arn": (
        lambda raw: raw["database"].update(secret_arn="my-db-secret"),
        'database.secret_arn: "my-db-secret" is not valid; use a value like "arn:aws:',
    ),
    "secret_in_other_region": (
        lambda raw: raw["database"].update(
            secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"
        ),
        "database.secret_arn: is in eu-west-1 but the stack is in us-east-1",
    ),
    "tag_and_digest": (
        lambda raw: raw["image"].update(digest="sha256:" + "0" * 64),
        'image: set either "tag" or "digest", not both',
    ),
    "no_image": (lambda raw: raw.update(image={}), 'image: is required: {"tag": "v1.4.2"}'),
    "latest_tag": (
        lambda raw: raw["image"].update(tag="latest"),
        'image.tag: "latest" cannot be pushed twice to an immutable repository',
    ),
    "bad_digest": (
        lambda raw: raw.update(image={"digest": "sha256:abc"}),
        'image.digest: "sha256:abc" is not valid',
    ),
    "timeout_over_900": (
        lambda raw: raw["runner"].update(timeout_seconds=1800),
        "runner.timeout_seconds: 1800 is out of range; use 1 to 900 (Lambda stops at 15 minutes; "
        "use the Fargate path",
    ),
    "memory_not_a_number": (
        lambda raw: raw["runner"].update(memory_mb="2GB"),
        'runner.memory_mb: must be a whole number from 128 to 10240, got "2GB"',
    ),
    "ephemeral_storage_too_small": (
        lambda raw: raw["runner"].update(ephemeral_storage_mb=100),
        "runner.ephemeral_storage_mb: 100 is out of range; use 512 to 10240",
    ),
    "zero_reserved_concurrency": (
        lambda raw: raw["runner"].update(reserved_concurrency=0),
        "runner.reserved_concurrency: 0 is out of range; use 1 to 1000",
    ),
    "bad_command_name": (
        lambda raw: raw["runner"]["commands"].append("rm -rf"),
        'runner.commands[3]: "rm -rf" is not valid',
    ),
    "scheduled_command_not_allowed": (
        lambda raw: raw["schedules"][0]["runs"].append({"command": "migrate:fresh"}),
        'schedules[0].runs[3].command: "migrate:fresh" is not in runner.commands',
    ),
    "bad_cron": (
        lambda raw: raw["schedules"][0].update(cron="0 2 * * *"),
        'schedules[0].cron: "0 2 * * *" is not an EventBridge schedule; use "cron(0 2 * * ? *)"',
    ),
    "fargate_schedule_without_fargate": (
        lambda raw: raw["fargate"].update(enabled=False),
        'schedules[1].target: "fargate" needs the Fargate path',
    ),
    "too_many_runs": (
        lambda raw: raw["schedules"][0]["runs"].extend([{"command": "test"}] * 3),
        "schedules[0].runs: has 6 runs; EventBridge allows 5 targets per rule",
    ),
    "arg_with_newline": (
        lambda raw: raw["schedules"][0]["runs"][0].update(args=["--filter", "a\nb"]),
        "schedules[0].runs[0].args[1]: must be at most 512 characters without NUL or line breaks",
    ),
    "duplicate_schedule_name": (
        lambda raw: raw["schedules"][1].update(name="nightly"),
        'schedules[1].name: "nightly" is used twice',
    ),
    "pass_rate_over_100": (
        lambda raw: raw["alarms"].update(pass_rate_threshold=120),
        "alarms.pass_rate_threshold: 120 is out of range; use 0 to 100",
    ),
    "bad_email": (
        lambda raw: raw["alarms"].update(email="team"),
        'alarms.email: "team" is not valid; use a value like "team@example.com"',
    ),
    "fargate_memory_does_not_fit_cpu": (
        lambda raw: raw["fargate"].update(cpu=256, memory_mb=4096),
        "fargate.memory_mb: 4096 does not fit cpu 256; use 512 to 2048 MiB",
    ),
    "fargate_cpu_not_a_size": (
        lambda raw: raw["fargate"].update(cpu=1000),
        "fargate.cpu: 1000 is not a Fargate CPU size; use one of 256, 512, 1024",
    ),
    "log_retention_not_allowed": (
        lambda raw: raw["retention"].update(log_days=45),
        "retention.log_days: 45 is not allowed by CloudWatch Logs; use one of 1, 3, 5",
    ),
    "unknown_field_with_suggestion": (
        lambda raw: raw["vpc"].update(privte_subnet_ids=[]),
        'vpc.privte_subnet_ids: unknown field; did you mean "private_subnet_ids"?',
    ),
    "bad_project": (
        lambda raw: raw.update(project="My_Project"),
        'project: "My_Project" is not valid; use a value like "ltr" (2-20 characters',
    ),
    "bad_region": (
        lambda raw: raw.update(region="Europe"),
        'region: "Europe" is not valid; use a value like "eu-west-1"',
    ),
    "bad_bucket_name": (
        lambda raw: raw.update(results_bucket_name="Results_Bucket"),
        'results_bucket_name: "Results_Bucket" is not valid',
    ),
    "customer_managed_key_not_a_boolean": (
        lambda raw: raw["encryption"].update(customer_managed_key="yes"),
        "encryption.customer_managed_key: must be true (create a customer-managed KMS key for "
        'this stack) or false (AWS-managed keys), got "yes"',
    ),
    "encryption_not_an_object": (
        lambda raw: raw.update(encryption=True),
        "encryption: must be an object like {...}, got",
    ),
    "encryption_unknown_field_with_suggestion": (
        lambda raw: raw["encryption"].update(customer_managed_keys=True),
        'encryption.customer_managed_keys: unknown field; did you mean "customer_managed_key"?',
    ),
    "old_endpoint_switch": (
        lambda raw: raw["vpc"].update(create_vpc_endpoints=True),
        'vpc.create_vpc_endpoints: is replaced by one setting per endpoint: "endpoints": {"s3": '
        '"create"',
    ),
    "bad_endpoint_mode": (
        lambda raw: raw["vpc"]["endpoints"].update(s3="yes"),
        'vpc.endpoints.s3: "yes" is not valid; use "create" (this stack creates it), "exists"',
    ),
    "unknown_endpoint_with_suggestion": (
        lambda raw: raw["vpc"]["endpoints"].update(secretmanager="create"),
        'vpc.endpoints.secretmanager: unknown field; did you mean "secretsmanager"?',
    ),
    "logs_endpoint_without_fargate": (
        lambda raw: (
            raw["fargate"].update(enabled=False),
            raw["schedules"].pop(1),
        ),
        'vpc.endpoints.logs: "create" without the Fargate path: only a Fargate task sends logs',
    ),
    "s3_endpoint_without_route_tables": (
        lambda raw: raw["vpc"].pop("private_route_table_ids"),
        'set "endpoints": {"s3": "exists"} when the VPC already has one',
    ),
    "secret_key_alias": (
        lambda raw: raw["database"].update(
            secret_kms_key_arn="arn:aws:kms:us-east-1:123456789012:alias/db"
        ),
        'database.secret_kms_key_arn: "arn:aws:kms:us-east-1:123456789012:alias/db" is an alias; '
        "IAM grants kms:Decrypt on the key ARN only",
    ),
    "secret_key_not_an_arn": (
        lambda raw: raw["database"].update(secret_kms_key_arn="my-key"),
        'database.secret_kms_key_arn: "my-key" is not valid; use a value like "arn:aws:kms:',
    ),
    "secret_key_in_other_region": (
        lambda raw: raw["database"].update(
            secret_kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/mrk-" + "0" * 32
        ),
        "database.secret_kms_key_arn: is in eu-west-1 but the secret is in us-east-1",
    ),
    "rule_name_too_long": (
        lambda raw: (
            raw.update(project="a-rather-long-projct", environment="production-1"),
            raw["schedules"][0].update(name="nightly-integration-and-docs-run"),
        ),
        'schedules[0].name: makes the EventBridge rule name "a-rather-long-projct-production-1-'
        'nightly-integration-and-docs-run" 66 characters long; EventBridge allows 64: shorten '
        "this name to at most 30 characters",
    ),
    "cron_with_two_question_marks": (
        lambda raw: raw["schedules"][0].update(cron="cron(0 2 ? * ? *)"),
        'schedules[0].cron: "cron(0 2 ? * ? *)": EventBridge needs "?" in exactly one of '
        "day-of-month",
    ),
    "cron_without_question_mark": (
        lambda raw: raw["schedules"][0].update(cron="cron(0 2 * * * *)"),
        'needs "?" in exactly one of day-of-month (3rd field) and day-of-week (5th field)',
    ),
    "cron_question_mark_elsewhere": (
        lambda raw: raw["schedules"][0].update(cron="cron(? 2 * * ? *)"),
        '"?" is allowed only in day-of-month and day-of-week',
    ),
    "cron_hour_out_of_range": (
        lambda raw: raw["schedules"][0].update(cron="cron(0 25 * * ? *)"),
        "minutes (0-59) and hours (0-23) take numbers",
    ),
    "rate_one_days": (
        lambda raw: raw["schedules"][0].update(cron="rate(1 days)"),
        'schedules[0].cron: "rate(1 days)": EventBridge wants the singular unit for 1 and the '
        'plural otherwise; use "rate(1 day)"',
    ),
    "rate_five_day": (
        lambda raw: raw["schedules"][0].update(cron="rate(5 day)"),
        'use "rate(5 days)"',
    ),
    "rate_zero": (
        lambda raw: raw["schedules"][0].update(cron="rate(0 days)"),
        'schedules[0].cron: "rate(0 days)" is not a rate; use "rate(1 day)" or "rate(2 days)"',
    ),
    "reserved_concurrency_below_simultaneous_targets": (
        lambda raw: raw["runner"].update(reserved_concurrency=2),
        "runner.reserved_concurrency: 2 is fewer than the 3 runner invocations the schedules "
        'start at the same time ("nightly" (3 runs) at 02:00 UTC), so 1 would be throttled',
    ),
    "two_rules_at_the_same_time_add_up": (
        lambda raw: (
            raw["runner"].update(reserved_concurrency=3),
            raw["schedules"][1].update(target="lambda", cron="cron(0/30 2 ? * SUN *)"),
        ),
        'fewer than the 4 runner invocations the schedules start at the same time ("nightly" '
        '(3 runs), "weekly-full" (1 run) at 02:00 UTC)',
    ),
    "missing_result_window_too_long_for_cloudwatch": (
        lambda raw: raw["alarms"].update(missing_result_hours=169),
        "alarms.missing_result_hours: 169 is out of range; use 1 to 168 (CloudWatch evaluates at "
        "most 7 days of hourly periods)",
    ),
    "missing_result_window_shorter_than_the_schedule": (
        lambda raw: raw["alarms"].update(missing_result_hours=24),
        'alarms.missing_result_hours: 24 is shorter than the gap between scheduled "test" runs '
        '(up to 24 hours for schedule "nightly") plus 2 hours for a late result',
    ),
    "missing_result_window_for_a_weekly_test": (
        lambda raw: (raw["schedules"][0]["runs"].pop(0), raw["schedules"].pop(2)),
        '(up to 168 hours for schedule "weekly-full") plus 2 hours for a late result, so the '
        "alarm would fire when nothing is wrong; use at least 168",
    ),
    "minimum_tests_zero": (
        lambda raw: raw["alarms"].update(minimum_tests=0),
        "alarms.minimum_tests: 0 is out of range; use 1 to 1000000",
    ),
    "keep_images_without_ci_prefixes": (
        lambda raw: raw["retention"].pop("ci_tag_prefixes"),
        "retention.keep_images: counts only images whose tag starts with one of "
        "retention.ci_tag_prefixes (release tags are never expired)",
    ),
    "deployed_tag_would_expire": (
        lambda raw: raw["image"].update(tag="ci-1234"),
        'image.tag: "ci-1234" starts with one of retention.ci_tag_prefixes',
    ),
    "old_keep_images_name_typo": (
        lambda raw: raw["retention"].update(untagged_images_days=3),
        'retention.untagged_images_days: unknown field; did you mean "untagged_image_days"?',
    ),
    "notification_email_not_an_address": (
        lambda raw: raw["notifications"]["emails"].append("qa-team"),
        'notifications.emails[1]: "qa-team" is not valid; use "team@example.com"',
    ),
    "notification_emails_not_a_list": (
        lambda raw: raw["notifications"].update(emails="qa@example.com"),
        'notifications.emails: must be a list, e.g. ["team@example.com"]',
    ),
    "notification_email_twice": (
        lambda raw: raw["notifications"]["emails"].append("test-runs@example.com"),
        "notifications.emails: lists test-runs@example.com more than once; list each once",
    ),
    "too_many_notification_emails": (
        lambda raw: raw["notifications"].update(emails=[f"dev{i}@example.com" for i in range(21)]),
        "notifications.emails: lists 21 addresses; at most 20",
    ),
    "notifications_unknown_field_with_suggestion": (
        lambda raw: raw["notifications"].update(email=["qa@example.com"]),
        'notifications.email: unknown field; did you mean "emails"?',
    ),
    "notifications_misspelt_with_suggestion": (
        lambda raw: raw.update(notification={"emails": []}),
        'notification: unknown field; did you mean "notifications"?',
    ),
    "new_failures_alarm_not_a_boolean": (
        lambda raw: raw["alarms"].update(new_failures="on"),
        'alarms.new_failures: must be true or false, got "on"',
    ),
    "run_not_passed_alarm_misspelt": (
        lambda raw: raw["alarms"].update(runs_not_passed=False),
        'alarms.runs_not_passed: unknown field; did you mean "run_not_passed"?',
    ),
    "source_url_template_not_https": (
        lambda raw: raw["report_processor"].update(source_url_template="http://git/{path}"),
        "report_processor.source_url_template: must start with https://",
    ),
    "source_url_template_without_path": (
        lambda raw: raw["report_processor"].update(source_url_template="https://git/blob/x"),
        "report_processor.source_url_template: must contain {path}",
    ),
    "shard_databases_misspelt": (
        lambda raw: raw["database"].update(shard_database={"mode": "shared"}),
        'database.shard_database: unknown field; did you mean "shard_databases"?',
    ),
    "shard_databases_field_misspelt": (
        lambda raw: raw["database"].update(shard_databases={"templat": "app_template"}),
        'database.shard_databases.templat: unknown field; did you mean "template"?',
    ),
    "shard_databases_unknown_mode": (
        lambda raw: raw["database"].update(shard_databases={"mode": "clone"}),
        'database.shard_databases.mode: "clone" is not valid; use one of template, shared',
    ),
    "shard_databases_template_mode_without_template": (
        lambda raw: raw["database"].update(shard_databases={"mode": "template"}),
        'database.shard_databases.template: is required with mode "template"',
    ),
    "shard_databases_template_in_shared_mode": (
        lambda raw: raw["database"].update(
            shard_databases={"mode": "shared", "template": "app_template"}
        ),
        'database.shard_databases.template: is used only with mode "template"',
    ),
    "shard_databases_template_name_too_long": (
        lambda raw: raw["database"].update(shard_databases={"template": "t" * 64}),
        "database.shard_databases.template: ",
    ),
    "shard_databases_admin_is_the_template": (
        lambda raw: raw["database"].update(
            shard_databases={"template": "app_template", "admin_database": "app_template"}
        ),
        "database.shard_databases.admin_database: is the template (app_template)",
    ),
    "shard_databases_budget_below_one_shard": (
        lambda raw: raw["database"].update(
            shard_databases={"connection_budget": 2, "connections_per_shard": 3}
        ),
        "database.shard_databases.connection_budget: 2 leaves no room for one shard of 3",
    ),
    "shard_databases_budget_not_a_number": (
        lambda raw: raw["database"].update(shard_databases={"connection_budget": "20"}),
        "database.shard_databases.connection_budget: must be a whole number from 1 to 100000",
    ),
    "incomplete_state_backend": (
        lambda raw: raw.update(state_backend={"s3": {"bucket": "acme-tf-state"}}),
        'state_backend.s3.key: is required, e.g. "ltr/dev.tfstate"',
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_validation_error_names_the_field_and_the_fix(case):
    change, expected = CASES[case]
    problems = problems_of(mutated(change))
    assert any(expected in problem for problem in problems), problems


def test_all_problems_are_reported_at_once():
    def break_many(raw):
        raw["vpc"]["private_subnet_ids"] = ["subnet-0a1b2c3d4e5f60718"]
        raw["runner"]["timeout_seconds"] = 901
        raw["alarms"]["email"] = "nobody"
        raw["image"] = {"tag": "latest"}

    problems = problems_of(mutated(break_many))
    assert len(problems) == 4, problems
    message = str(ConfigError("dev.json", problems))
    assert message.startswith("dev.json: 4 problem(s) in the configuration:")


def test_shard_database_problems_are_reported_together():
    problems = problems_of(
        mutated(
            lambda raw: raw["database"].update(
                shard_databases={"mode": "clone", "admin_database": "a b", "connection_budget": 0}
            )
        )
    )
    fields = sorted(problem.split(":")[0] for problem in problems)
    assert fields == [
        "database.shard_databases.admin_database",
        "database.shard_databases.connection_budget",
        "database.shard_databases.mode",
    ], problems


def test_shard_databases_default_to_the_runners_defaults():
    assert parse_config(copy.deepcopy(EXAMPLE), "x.json").database.shard_databases is None
    template = mutated(lambda raw: raw["database"].update(shard_databases={"template": "app_t"}))
    shards = parse_config(template, "x.json").database.shard_databases
    assert shards is not None
    assert (shards.mode, shards.template, shards.admin_database) == ("template", "app_t", None)
    assert (shards.connection_budget, shards.connections_per_shard) == (None, None)


def test_non_object_file_is_rejected():
    assert problems_of([]) == ["the file must hold a JSON object, got a list"]  # type: ignore[arg-type]


def test_invalid_json_names_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "project": "ltr",\n}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "not valid JSON at line 3 column 1" in str(caught.value)


def test_missing_environment_file_lists_known_environments():
    with pytest.raises(ConfigError) as caught:
        load_config("nosuchenv")
    assert caught.value.source.endswith("config/nosuchenv.json")
    assert "file not found" in str(caught.value) and "example" in str(caught.value)


def test_environment_name_maps_to_config_file():
    assert load_config("example").environment == "example"


def test_scheduled_run_shapes():
    config = parse_config(EXAMPLE)
    weekly = config.schedules[1]
    assert weekly.runs[0].lambda_event() == {
        "command": "test",
        "args": ["--testsuite", "Integration"],
    }
    assert weekly.runs[0].fargate_command() == ["run", "test", "--testsuite", "Integration"]


# --------------------------------------------------------------------------- issue 10/11 rules


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1234abcd-12ab-34cd-56ef-"
        "1234567890ab-AbCdEf",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-1234abcd-AbCdEf",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:ltr/example/db-AbCdEf",
    ],
)
def test_rds_managed_and_named_secret_arns_are_accepted(arn):
    config = parse_config(mutated(lambda raw: raw["database"].update(secret_arn=arn)))
    assert config.database.secret_arn == arn


@pytest.mark.parametrize(
    ("expression", "accepted"),
    [
        ("rate(1 day)", True),
        ("rate(2 days)", True),
        ("rate(1 minute)", True),
        ("rate(15 minutes)", True),
        ("rate(1 hours)", False),
        ("rate(1 days)", False),
        ("rate(5 day)", False),
        ("rate(1 week)", False),
        ("cron(0 2 * * ? *)", True),
        ("cron(0 3 ? * SUN *)", True),
        ("cron(0/15 8-18 ? * MON-FRI *)", True),
        ("cron(0 2 1 * ? *)", True),
        ("cron(0 2 ? * ? *)", False),
        ("cron(0 2 * * * *)", False),
        ("cron(0 2 1 * MON *)", False),
        ("cron(60 2 * * ? *)", False),
    ],
)
def test_schedule_expressions_follow_eventbridge(expression, accepted):
    raw = mutated(lambda raw: raw["schedules"][1].update(cron=expression))
    if accepted:
        assert parse_config(raw).schedules[1].expression == expression
    else:
        assert any(p.startswith("schedules[1].cron:") for p in problems_of(raw))


def test_reserved_concurrency_that_covers_the_simultaneous_targets_is_accepted():
    raw = mutated(lambda raw: raw["runner"].update(reserved_concurrency=3))
    assert parse_config(raw).runner.reserved_concurrency == 3
    # The Fargate schedule starts tasks, not runner invocations, and does not count.
    raw["schedules"][1]["cron"] = "cron(0 2 ? * SUN *)"
    assert parse_config(raw).runner.reserved_concurrency == 3
    # Disabled schedules start nothing.
    raw["schedules"].append(
        {"name": "extra", "cron": "cron(0 2 * * ? *)", "runs": [{"command": "test"}]}
    )
    assert problems_of(raw)
    raw["schedules"][-1]["enabled"] = False
    assert parse_config(raw).runner.reserved_concurrency == 3


def test_a_rate_schedule_may_meet_any_other():
    def change(raw):
        raw["runner"]["reserved_concurrency"] = 3
        raw["schedules"].append(
            {"name": "hourly", "cron": "rate(1 hour)", "runs": [{"command": "test"}]}
        )

    [problem] = problems_of(mutated(change))
    assert "fewer than the 4 runner invocations" in problem


def test_weekly_test_schedule_gets_a_week_long_window():
    def change(raw):
        raw["schedules"][0]["runs"].pop(0)
        raw["alarms"]["missing_result_hours"] = 168

    assert parse_config(mutated(change)).alarms.missing_result_hours == 168


def test_runs_every_few_hours_allow_a_short_window():
    def change(raw):
        raw["schedules"][0]["cron"] = "cron(0 0/6 * * ? *)"
        raw["alarms"]["missing_result_hours"] = 8

    assert parse_config(mutated(change)).alarms.missing_result_hours == 8
    raw = mutated(change)
    raw["alarms"]["missing_result_hours"] = 7
    [problem] = problems_of(raw)
    assert '(up to 6 hours for schedule "nightly")' in problem and "at least 8" in problem


def test_existing_and_absent_endpoints():
    def change(raw):
        raw["vpc"]["endpoints"] = {"s3": "exists", "secretsmanager": "none", "ecr": "exists"}
        raw["vpc"].pop("private_route_table_ids")

    endpoints = parse_config(mutated(change)).vpc.endpoints
    assert endpoints == EndpointsConfig("exists", "none", "create", "exists")
    assert endpoints.with_mode("none") == ("secretsmanager",)
