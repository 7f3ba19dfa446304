"""Alarms, their SNS topic and the dashboard.

The report processor publishes PassRate/Tests*/DurationSeconds/RunsNotPassed and the history
metrics (NewFailures, FixedTests, FlakyTests, QuarantinedTests) under the configured namespace
with dimensions Project, Environment, Command; the alarms watch the `test` command's series,
which is the one a nightly run must produce.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

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
        schedule_dlq_name: str | None = None,
        state_machine_arn: str | None = None,
        key: StackKey | None = None,
    ) -> None:
        super().__init__(scope, id_)
        names = config.names
        self._namespace = config.metrics_namespace
        self._test_dimensions = {
            "Project": config.project,
            "Environment": config.environment,
            "Command": TEST_COMMAND,
        }
        self.topic = self._alerts_topic(config, key)
        self.pass_rate = self._pass_rate_alarm(config)
        self.missing_result = self._missing_result_alarm(config)
        self.too_few_tests = self._too_few_tests_alarm(config)
        self.run_not_passed, self.new_failures = self._run_alarms(config)
        self.runner_errors, self.runner_throttles = self._runner_alarms(config)
        if state_machine_arn is not None:
            self.sharded_run_failed = self._sharded_run_failed_alarm(config, state_machine_arn)
        queues = _failure_queues(config, runner_dlq_name, report_dlq_name, schedule_dlq_name)
        self.failure_queues = [self._failure_queue_alarm(*queue) for queue in queues]

        self.dashboard = CloudwatchDashboard(
            self,
            "dashboard",
            dashboard_name=names.dashboard,
            dashboard_body=json.dumps(dashboard_body(config)),
        )

    def _alerts_topic(self, config: StackConfig, key: StackKey | None) -> SnsTopic:
        # With the stack's key, whose policy lets CloudWatch alarms publish (the AWS-managed SNS
        # key would not); otherwise SNS's default (no server-side encryption).
        topic = SnsTopic(
            self,
            "alerts",
            name=config.names.alerts_topic,
            kms_master_key_id=key.arn if key else None,
        )
        if config.alarms.email:
            SnsTopicSubscription(
                self,
                "email",
                topic_arn=topic.arn,
                protocol="email",
                endpoint=config.alarms.email,
            )
        return topic

    def _pass_rate_alarm(self, config: StackConfig) -> CloudwatchMetricAlarm:
        alarms = config.alarms
        return self._alarm(
            "pass_rate",
            name=config.names.pass_rate_alarm,
            description=f"Test pass rate below {alarms.pass_rate_threshold:g}%",
            namespace=self._namespace,
            metric="PassRate",
            dimensions=self._test_dimensions,
            statistic="Minimum",
            period=HOUR,
            comparison="LessThanThreshold",
            threshold=alarms.pass_rate_threshold,
            # A night without results is the missing-result alarm's job.
            missing="notBreaching",
        )

    def _missing_result_alarm(self, config: StackConfig) -> CloudwatchMetricAlarm:
        # Hourly periods over the whole window, all of them empty to alarm: a result landing an
        # hour later than the night before does not flap it, as a single daily period would.
        hours = config.alarms.missing_result_hours
        return self._alarm(
            "missing_result",
            name=config.names.missing_result_alarm,
            description=f"No test results reported in the last {hours} hours",
            namespace=self._namespace,
            metric="TestsTotal",
            dimensions=self._test_dimensions,
            statistic="SampleCount",
            period=HOUR,
            evaluation_periods=hours,
            datapoints=hours,
            comparison="LessThanThreshold",
            threshold=1,
            missing="breaching",
        )

    def _too_few_tests_alarm(self, config: StackConfig) -> CloudwatchMetricAlarm:
        # The report processor publishes TestsTotal=0 when nothing ran (a filter matching nothing,
        # a suite that failed to load): that night is loud, not green.
        minimum = config.alarms.minimum_tests
        return self._alarm(
            "too_few_tests",
            name=config.names.too_few_tests_alarm,
            description=f"A test run counted fewer than {_tests(minimum)}",
            namespace=self._namespace,
            metric="TestsTotal",
            dimensions=self._test_dimensions,
            statistic="Minimum",
            period=HOUR,
            comparison="LessThanThreshold",
            threshold=minimum,
            missing="notBreaching",
        )

    def _run_alarms(
        self, config: StackConfig
    ) -> tuple[CloudwatchMetricAlarm | None, CloudwatchMetricAlarm | None]:
        """The run-not-passed and new-failures alarms, each only when switched on."""
        names, alarms = config.names, config.alarms
        # 1 for a run whose verdict is not "passed": a command that failed over a clean report,
        # a timeout, a runner error, an unusable report, no tests (issue 9). The other alarms
        # each see only part of that.
        run_not_passed = (
            self._any_run_alarm(
                "run_not_passed",
                names.run_not_passed_alarm,
                "A test run did not pass (see its summary: ltr report latest)",
                "RunsNotPassed",
            )
            if alarms.run_not_passed
            else None
        )
        # From the run history: tests failing now that passed (or did not exist) in the
        # previous comparable run. Off by default; the run notification topic says it too.
        new_failures = (
            self._any_run_alarm(
                "new_failures",
                names.new_failures_alarm,
                "A test run has new failures since the previous run",
                "NewFailures",
            )
            if alarms.new_failures
            else None
        )
        return run_not_passed, new_failures

    def _runner_alarms(
        self, config: StackConfig
    ) -> tuple[CloudwatchMetricAlarm, CloudwatchMetricAlarm]:
        """The runner Lambda's errors and throttles."""
        names, alarms = config.names, config.alarms
        runner = {"FunctionName": names.runner_function}
        errors = self._alarm(
            "runner_errors",
            name=names.runner_errors_alarm,
            description="The runner Lambda failed (crash, timeout or out of memory)",
            namespace="AWS/Lambda",
            metric="Errors",
            dimensions=runner,
            statistic="Sum",
            period=FIVE_MINUTES,
            comparison="GreaterThanOrEqualToThreshold",
            threshold=alarms.runner_errors_threshold,
            missing="notBreaching",
        )
        throttles = self._alarm(
            "runner_throttles",
            name=names.runner_throttles_alarm,
            description="Runner invocations were throttled (reserved concurrency reached)",
            namespace="AWS/Lambda",
            metric="Throttles",
            dimensions=runner,
            statistic="Sum",
            period=FIVE_MINUTES,
            comparison="GreaterThanOrEqualToThreshold",
            threshold=alarms.runner_throttles_threshold,
            missing="notBreaching",
        )
        return errors, throttles

    def _sharded_run_failed_alarm(
        self, config: StackConfig, state_machine_arn: str
    ) -> CloudwatchMetricAlarm:
        # A sharded run whose execution failed (the runner refused to plan, the merge
        # crashed) leaves no report; with an unsharded test run the same night, the
        # missing-result alarm would stay quiet. (A shard's crash is caught: the run reports
        # `error` and TestsTotal=0 instead.)
        return self._alarm(
            "sharded_run_failed",
            name=config.names.sharded_run_failed_alarm,
            description="A sharded test run's execution failed: no merged report",
            namespace="AWS/States",
            metric="ExecutionsFailed",
            dimensions={"StateMachineArn": state_machine_arn},
            statistic="Sum",
            period=FIVE_MINUTES,
            comparison="GreaterThanOrEqualToThreshold",
            threshold=1,
            missing="notBreaching",
        )

    def _failure_queue_alarm(
        self, id_suffix: str, alarm_name: str, queue: str, what: str
    ) -> CloudwatchMetricAlarm:
        """Fires as soon as one message waits in a failure queue."""
        return self._alarm(
            f"{id_suffix}_failures_queued",
            name=alarm_name,
            description=f"{what} are waiting in {queue}",
            namespace="AWS/SQS",
            metric="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": queue},
            statistic="Maximum",
            period=FIVE_MINUTES,
            comparison="GreaterThanThreshold",
            threshold=0,
            missing="notBreaching",
        )

    def _any_run_alarm(
        self, id_: str, name: str, description: str, metric: str
    ) -> CloudwatchMetricAlarm:
        """Fires when any test run in the hour published `metric` >= 1 (a per-run 0/1 or count)."""
        return self._alarm(
            id_,
            name=name,
            description=description,
            namespace=self._namespace,
            metric=metric,
            dimensions=self._test_dimensions,
            statistic="Maximum",
            period=HOUR,
            comparison="GreaterThanOrEqualToThreshold",
            threshold=1,
            missing="notBreaching",
        )

    def _alarm(
        self,
        id_: str,
        *,
        name: str,
        description: str,
        namespace: str,
        metric: str,
        dimensions: dict[str, str],
        statistic: str,
        period: int,
        comparison: str,
        threshold: float,
        missing: str,
        evaluation_periods: int = 1,
        datapoints: int = 1,
    ) -> CloudwatchMetricAlarm:
        """One metric alarm that notifies the alerts topic when it fires and when it clears."""
        return CloudwatchMetricAlarm(
            self,
            id_,
            alarm_name=name,
            alarm_description=description,
            namespace=namespace,
            metric_name=metric,
            dimensions=dimensions,
            statistic=statistic,
            period=period,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints,
            comparison_operator=comparison,
            threshold=threshold,
            treat_missing_data=missing,
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
        )


def _failure_queues(
    config: StackConfig,
    runner_dlq_name: str,
    report_dlq_name: str,
    schedule_dlq_name: str | None,
) -> list[tuple[str, str, str, str]]:
    """(id suffix, alarm name, queue name, what waits there) for each failure queue."""
    names = config.names
    queues = [
        (
            "runner",
            names.runner_failures_alarm,
            runner_dlq_name,
            "Failed asynchronous invocations",
        ),
        (
            "report",
            names.report_failures_alarm,
            report_dlq_name,
            "Failed asynchronous invocations",
        ),
    ]
    if schedule_dlq_name is not None:
        queues.append(
            (
                "schedule",
                names.schedule_failures_alarm,
                schedule_dlq_name,
                "Scheduled runs that never started",
            )
        )
    return queues


def _tests(count: int) -> str:
    return "1 test" if count == 1 else f"{count} tests"


def dashboard_body(config: StackConfig) -> dict:
    dashboard = _Dashboard.of(config)
    return {
        "widgets": [
            dashboard.pass_rate(config.alarms.pass_rate_threshold),
            dashboard.test_counts(),
            dashboard.suite_duration(),
            dashboard.runner_duration(),
            dashboard.shard_makespan(),
            dashboard.errors(),
            dashboard.run_changes(),
        ]
    }


@dataclass(frozen=True)
class _Dashboard:
    """The dashboard's widgets: the test command's series and the two functions' metrics."""

    region: str
    namespace: str
    dims: list[str]
    runner: list[str]
    report: list[str]

    @classmethod
    def of(cls, config: StackConfig) -> _Dashboard:
        names = config.names
        return cls(
            region=config.region,
            namespace=config.metrics_namespace,
            dims=[
                *("Project", config.project, "Environment", config.environment),
                *("Command", TEST_COMMAND),
            ],
            runner=["FunctionName", names.runner_function],
            report=["FunctionName", names.report_function],
        )

    def widget(self, x: int, y: int, title: str, metrics: list, **properties: object) -> dict:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": self.region,
                "view": "timeSeries",
                "metrics": metrics,
                "period": 86400,
                **properties,
            },
        }

    def test_metric(self, metric: str, **options: object) -> list:
        return [self.namespace, metric, *self.dims, options]

    def pass_rate(self, threshold: float) -> dict:
        return self.widget(
            0,
            0,
            "Pass rate (%)",
            [self.test_metric("PassRate", stat="Minimum")],
            yAxis={"left": {"min": 0, "max": 100}},
            annotations={"horizontal": [{"label": "alarm threshold", "value": threshold}]},
        )

    def test_counts(self) -> dict:
        return self.widget(
            12,
            0,
            "Tests per nightly run",
            [
                self.test_metric(metric, stat="Sum")
                for metric in ("TestsPassed", "TestsFailed", "TestsErrored", "TestsSkipped")
            ],
            stacked=True,
        )

    def suite_duration(self) -> dict:
        return self.widget(
            0,
            6,
            "Test suite duration (s)",
            [self.test_metric("DurationSeconds", stat="Maximum")],
        )

    def runner_duration(self) -> dict:
        return self.widget(
            12,
            6,
            "Runner duration (ms)",
            [
                ["AWS/Lambda", "Duration", *self.runner, {"stat": "Maximum"}],
                ["AWS/Lambda", "Duration", *self.runner, {"stat": "Average"}],
            ],
            period=3600,
        )

    def shard_makespan(self) -> dict:
        return self.widget(
            12,
            12,
            "Sharded runs: slowest shard (s)",
            [
                self.test_metric("ShardMakespanSeconds", stat="Maximum"),
                self.test_metric("DurationSeconds", stat="Maximum", label="run"),
            ],
        )

    def errors(self) -> dict:
        runner, report = self.runner, self.report
        return self.widget(
            0,
            12,
            "Errors",
            [
                ["AWS/Lambda", "Errors", *runner, {"stat": "Sum", "label": "runner errors"}],
                ["AWS/Lambda", "Throttles", *runner, {"stat": "Sum", "label": "throttles"}],
                ["AWS/Lambda", "Errors", *report, {"stat": "Sum", "label": "report errors"}],
                self.test_metric("ReportParseErrors", stat="Sum"),
            ],
            period=3600,
        )

    def run_changes(self) -> dict:
        return self.widget(
            0,
            18,
            "Runs not passed; tests changed since the previous run",
            [
                self.test_metric("RunsNotPassed", stat="Sum", label="runs not passed"),
                *(
                    self.test_metric(metric, stat="Maximum", label=label)
                    for metric, label in (
                        ("NewFailures", "new failures"),
                        ("FixedTests", "fixed"),
                        ("FlakyTests", "flaky"),
                        ("QuarantinedTests", "quarantined"),
                    )
                ),
            ],
        )
