"""EventBridge schedules: one rule per schedule, one target per command with its JSON input.

Every target retries a failed delivery (a throttled Invoke, a RunTask without capacity) for up to
an hour, then sends the event to the schedule-failures queue, which has an alarm: a scheduled run
that never started is never silent.
"""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import (
    CloudwatchEventTarget,
    CloudwatchEventTargetDeadLetterConfig,
    CloudwatchEventTargetRetryPolicy,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy
from constructs import Construct

from modules.config import Schedule, ScheduledRun, StackConfig
from modules.encryption import StackKey
from modules.fargate import FargateRunner
from modules.iam import Statement, service_role
from modules.operations import failure_queue
from modules.shard_flow import execution_input

# A scheduled run that could not start within an hour is reported (queued) rather than started
# late into the working day; EventBridge backs off between attempts.
MAX_EVENT_AGE_SECONDS = 3600
MAX_RETRY_ATTEMPTS = 8


def target_ids(runs: tuple[ScheduledRun, ...]) -> list[str]:
    """Readable, unique target ids: the command slug, numbered only when a command repeats."""
    slugs = [run.slug for run in runs]
    return [
        slug if slugs.count(slug) == 1 else f"{slug}-{slugs[:index].count(slug) + 1}"
        for index, slug in enumerate(slugs)
    ]


class Schedules(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        config: StackConfig,
        *,
        runner_function_name: str,
        runner_function_arn: str,
        security_group_id: str,
        fargate: FargateRunner | None,
        state_machine_arn: str | None = None,
        key: StackKey | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self.rules: dict[str, CloudwatchEventRule] = {}
        self.state_machine_arn = state_machine_arn
        self.sharded_role = self._sharded_role(config, state_machine_arn)
        self.dead_letter_queue = failure_queue(self, config.names.schedule_dlq, key)
        self.retry_policy = CloudwatchEventTargetRetryPolicy(
            maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS,
            maximum_retry_attempts=MAX_RETRY_ATTEMPTS,
        )
        self.dead_letter_config = CloudwatchEventTargetDeadLetterConfig(
            arn=self.dead_letter_queue.arn
        )
        for schedule in config.schedules:
            rule = self._rule(config, schedule)
            if schedule.target == "fargate":
                assert fargate is not None  # config validation guarantees it
                self._fargate_targets(config, schedule, rule, fargate, security_group_id)
            else:
                self._lambda_targets(schedule, rule, runner_function_name, runner_function_arn)
        if self.rules:
            self._let_rules_queue_failures()

    def _sharded_role(self, config: StackConfig, state_machine_arn: str | None) -> IamRole | None:
        if not (state_machine_arn and any(s.shards for s in config.schedules)):
            return None
        # EventBridge may start executions of the sharded-run state machine and nothing else.
        role, _ = service_role(
            self,
            "sharded_role",
            name=config.names.sharded_schedule_role,
            service="events.amazonaws.com",
            description="Lambda Test Runner: scheduled sharded runs",
            statements=[
                Statement(
                    sid="StartShardedRunsOnly",
                    actions=["states:StartExecution"],
                    resources=[state_machine_arn],
                )
            ],
        )
        return role

    def _rule(self, config: StackConfig, schedule: Schedule) -> CloudwatchEventRule:
        rule = CloudwatchEventRule(
            self,
            f"{schedule.name}_rule",
            name=config.names.schedule_rule(schedule.name),
            description=_describe(schedule),
            schedule_expression=schedule.expression,
            state="ENABLED" if schedule.enabled else "DISABLED",
        )
        self.rules[schedule.name] = rule
        return rule

    def _let_rules_queue_failures(self) -> None:
        SqsQueuePolicy(
            self,
            "failures_policy",
            queue_url=self.dead_letter_queue.url,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "ThisStacksRulesQueueUndeliveredEvents",
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": self.dead_letter_queue.arn,
                            "Condition": {
                                "ArnEquals": {
                                    "aws:SourceArn": [rule.arn for rule in self.rules.values()]
                                }
                            },
                        }
                    ],
                }
            ),
        )

    def _lambda_targets(
        self,
        schedule: Schedule,
        rule: CloudwatchEventRule,
        function_name: str,
        function_arn: str,
    ) -> None:
        LambdaPermission(
            self,
            f"{schedule.name}_permission",
            statement_id=f"AllowSchedule-{schedule.name}",
            action="lambda:InvokeFunction",
            function_name=function_name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
        )
        for target_id, run in zip(target_ids(schedule.runs), schedule.runs, strict=True):
            if schedule.shards is not None and schedule.is_sharded(run):
                assert self.state_machine_arn and self.sharded_role  # the stack passes both
                # The execution's name (the run id) is EventBridge's: one per delivery.
                CloudwatchEventTarget(
                    self,
                    f"{schedule.name}_{target_id}",
                    rule=rule.name,
                    target_id=target_id,
                    arn=self.state_machine_arn,
                    role_arn=self.sharded_role.arn,
                    input=json.dumps(execution_input(run.command, run.args, schedule.shards)),
                    retry_policy=self.retry_policy,
                    dead_letter_config=self.dead_letter_config,
                )
                continue
            CloudwatchEventTarget(
                self,
                f"{schedule.name}_{target_id}",
                rule=rule.name,
                target_id=target_id,
                arn=function_arn,
                input=json.dumps(run.lambda_event()),
                retry_policy=self.retry_policy,
                dead_letter_config=self.dead_letter_config,
            )

    def _fargate_targets(
        self,
        config: StackConfig,
        schedule: Schedule,
        rule: CloudwatchEventRule,
        fargate: FargateRunner,
        security_group_id: str,
    ) -> None:
        for target_id, run in zip(target_ids(schedule.runs), schedule.runs, strict=True):
            overrides = {
                "containerOverrides": [
                    {"name": config.names.container, "command": run.fargate_command()}
                ]
            }
            CloudwatchEventTarget(
                self,
                f"{schedule.name}_{target_id}",
                rule=rule.name,
                target_id=target_id,
                arn=fargate.cluster.arn,
                role_arn=fargate.events_role.arn,
                input=json.dumps(overrides),
                ecs_target={
                    "task_definition_arn": fargate.task_definition.arn_without_revision,
                    "launch_type": "FARGATE",
                    "platform_version": "LATEST",
                    "task_count": 1,
                    "network_configuration": {
                        "subnets": list(config.vpc.private_subnet_ids),
                        "security_groups": [security_group_id],
                        "assign_public_ip": False,
                    },
                },
                retry_policy=self.retry_policy,
                dead_letter_config=self.dead_letter_config,
            )


def _describe(schedule: Schedule) -> str:
    commands = ", ".join(
        f"{run.command} ({schedule.shards} shards)" if schedule.is_sharded(run) else run.command
        for run in schedule.runs
    )
    return f"Lambda Test Runner {schedule.name} ({schedule.target}): {commands}"
