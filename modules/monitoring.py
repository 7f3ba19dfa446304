"""Alarms, their SNS topic and the dashboard.

The report processor publishes PassRate/Tests*/DurationSeconds under the configured namespace
with dimensions Project, Environment, Command; the alarms watch the `test`
command's series, which is the one a nightly run must produce.
"""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from modules.config import StackConfig
from modules.encryption import StackKey

TEST_COMMAND = "test"
HOUR = 3600
FIVE_MINUTES = 300


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        config: StackConfig,
        *,
        runner_dlq_name: str,
        report_dlq_name: str,
        key: StackKey | None = None,
    ) -> None:
        super().__init__(scope, id_)
        names = config.names
        alarms = config.alarms
        namespace = config.metrics_namespace
        test_dimensions = {
            "Project": config.project,
            "Environment": config.environment,
            "Command": TEST_COMMAND,
        }

        # With the stack's key, whose policy lets CloudWatch alarms publish (the AWS-managed SNS
        # key would not); otherwise SNS's default (no server-side encryption).
        self.topic = SnsTopic(
            self, "alerts", name=names.alerts_topic, kms_master_key_id=key.arn if key else None
        )
        if alarms.email:
            SnsTopicSubscription(
                self,
                "email",
                topic_arn=self.topic.arn,
                protocol="email",
                endpoint=alarms.email,
            )
        actions = {"alarm_actions": [self.topic.arn], "ok_actions": [self.topic.arn]}

        self.pass_rate = CloudwatchMetricAlarm(
            self,
            "pass_rate",
            alarm_name=names.pass_rate_alarm,
            alarm_description=f"Test pass rate below {alarms.pass_rate_threshold:g}%",
            namespace=namespace,
            metric_name="PassRate",
            dimensions=test_dimensions,
            statistic="Minimum",
            period=HOUR,
            evaluation_periods=1,
            comparison_operator="LessThanThreshold",
            threshold=alarms.pass_rate_threshold,
            # A night without results is the next alarm's job.
            treat_missing_data="notBreaching",
            **actions,
        )
        self.missing_result = CloudwatchMetricAlarm(
            self,
            "missing_result",
            alarm_name=names.missing_result_alarm,
            alarm_description=(
                f"No test results reported in the last {alarms.missing_result_hours} hours"
            ),
            namespace=namespace,
            metric_name="TestsTotal",
            dimensions=test_dimensions,
            statistic="SampleCount",
            period=alarms.missing_result_hours * HOUR,
            evaluation_periods=1,
            comparison_operator="LessThanThreshold",
            threshold=1,
            treat_missing_data="breaching",
            **actions,
        )
        self.runner_errors = CloudwatchMetricAlarm(
            self,
            "runner_errors",
            alarm_name=names.runner_errors_alarm,
            alarm_description="The runner Lambda failed (crash, timeout or out of memory)",
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions={"FunctionName": names.runner_function},
            statistic="Sum",
            period=FIVE_MINUTES,
            evaluation_periods=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=alarms.runner_errors_threshold,
            treat_missing_data="notBreaching",
            **actions,
        )
        self.runner_throttles = CloudwatchMetricAlarm(
            self,
            "runner_throttles",
            alarm_name=names.runner_throttles_alarm,
            alarm_description="Runner invocations were throttled (reserved concurrency reached)",
            namespace="AWS/Lambda",
            metric_name="Throttles",
            dimensions={"FunctionName": names.runner_function},
            statistic="Sum",
            period=FIVE_MINUTES,
            evaluation_periods=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=alarms.runner_throttles_threshold,
            treat_missing_data="notBreaching",
            **actions,
        )
        self.failure_queues = [
            CloudwatchMetricAlarm(
                self,
                f"{id_suffix}_failures_queued",
                alarm_name=alarm_name,
                alarm_description=f"Failed asynchronous invocations are waiting in {queue}",
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": queue},
                statistic="Maximum",
                period=FIVE_MINUTES,
                evaluation_periods=1,
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                treat_missing_data="notBreaching",
                **actions,
            )
            for id_suffix, alarm_name, queue in (
                ("runner", names.runner_failures_alarm, runner_dlq_name),
                ("report", names.report_failures_alarm, report_dlq_name),
            )
        ]

        self.dashboard = CloudwatchDashboard(
            self,
            "dashboard",
            dashboard_name=names.dashboard,
            dashboard_body=json.dumps(dashboard_body(config)),
        )


def dashboard_body(config: StackConfig) -> dict:
    names = config.names
    region = config.region
    namespace = config.metrics_namespace
    dims = ["Project", config.project, "Environment", config.environment, "Command", TEST_COMMAND]

    def widget(x: int, y: int, title: str, metrics: list, **properties: object) -> dict:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "view": "timeSeries",
                "metrics": metrics,
                "period": 86400,
                **properties,
            },
        }

    runner = ["FunctionName", names.runner_function]
    report = ["FunctionName", names.report_function]
    return {
        "widgets": [
            widget(
                0,
                0,
                "Pass rate (%)",
                [[namespace, "PassRate", *dims, {"stat": "Minimum"}]],
                yAxis={"left": {"min": 0, "max": 100}},
                annotations={
                    "horizontal": [
                        {"label": "alarm threshold", "value": config.alarms.pass_rate_threshold}
                    ]
                },
            ),
            widget(
                12,
                0,
                "Tests per nightly run",
                [
                    [namespace, metric, *dims, {"stat": "Sum"}]
                    for metric in ("TestsPassed", "TestsFailed", "TestsErrored", "TestsSkipped")
                ],
                stacked=True,
            ),
            widget(
                0,
                6,
                "Test suite duration (s)",
                [[namespace, "DurationSeconds", *dims, {"stat": "Maximum"}]],
            ),
            widget(
                12,
                6,
                "Runner duration (ms)",
                [
                    ["AWS/Lambda", "Duration", *runner, {"stat": "Maximum"}],
                    ["AWS/Lambda", "Duration", *runner, {"stat": "Average"}],
                ],
                period=3600,
            ),
            widget(
                0,
                12,
                "Errors",
                [
                    ["AWS/Lambda", "Errors", *runner, {"stat": "Sum", "label": "runner errors"}],
                    ["AWS/Lambda", "Throttles", *runner, {"stat": "Sum", "label": "throttles"}],
                    ["AWS/Lambda", "Errors", *report, {"stat": "Sum", "label": "report errors"}],
                    [namespace, "ReportParseErrors", *dims, {"stat": "Sum"}],
                ],
                period=3600,
            ),
        ]
    }
