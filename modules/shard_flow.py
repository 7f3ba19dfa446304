"""The sharded run's state machine (Amazon States Language), built by one pure function.

The construct (modules/sharding.py) deploys exactly this definition, and the tests and the demo
create it in the emulator from the same function, so what is executed locally is what is
deployed. Import-light on purpose, like modules/contract.py: no cdktf, no provider bindings.

    Plan     invoke the runner with {"action": "plan", ...}; the run id is the execution's name
    Planned? the runner answered "planned", else the execution fails with PlanRefused
    Shards   Map over the plan's shards (MaxConcurrency bounded): invoke the runner with each
             shard; Lambda service errors are retried, anything else (a crash, a timeout, a
             throttle that outlived its retries) is caught and recorded as {"index", "error"}
    Merge    invoke the merge function with the plan key and every shard's outcome

Only the shard's `status` is kept of each runner answer: a Map's whole output must stay under
Step Functions' 256 KB payload limit, and the runner's answer carries up to 256 KB of output.
The merge reads everything else from the shard's manifest.json.
"""

from __future__ import annotations

from typing import Any

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
# Errors of the Lambda service itself (the invocation never reached, or never left, the
# function): retrying runs the shard again, which is what a throttled or dropped shard needs.
# A function error (a crash, Sandbox.Timedout, a runner that answered with a failed run) is
# never in this list: a shard whose tests fail must not be run twice.
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
RETRY_INTERVAL_SECONDS = 2
RETRY_MAX_ATTEMPTS = 6
RETRY_BACKOFF_RATE = 2.0
PLAN_REFUSED = "PlanRefused"


def _service_retry() -> list[dict[str, Any]]:
    return [
        {
            "ErrorEquals": list(LAMBDA_SERVICE_ERRORS),
            "IntervalSeconds": RETRY_INTERVAL_SECONDS,
            "MaxAttempts": RETRY_MAX_ATTEMPTS,
            "BackoffRate": RETRY_BACKOFF_RATE,
        }
    ]


def state_machine_definition(
    *, runner_function_arn: str, merge_function_arn: str, bucket: str, max_concurrency: int
) -> dict[str, Any]:
    """The ASL document. `max_concurrency` bounds the shards running at once (the runner's
    reserved concurrency, when set, must leave room for it: config validation checks that)."""
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
    return {
        "Comment": "Lambda Test Runner: one test run over many runner invocations (issue 13)",
        "StartAt": "Plan",
        "States": {
            "Plan": _plan_state(runner_function_arn),
            "Planned": _planned_choice(),
            PLAN_REFUSED: {
                "Type": "Fail",
                "Error": PLAN_REFUSED,
                "Cause": "the runner did not plan the run; its answer is in the Plan step's output",
            },
            "Shards": _shards_map(runner_function_arn, max_concurrency),
            "Merge": _merge_state(merge_function_arn, bucket),
        },
    }


def _plan_state(runner_function_arn: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {
            "FunctionName": runner_function_arn,
            "Payload": {
                "action": "plan",
                "command.$": "$.command",
                "args.$": "$.args",
                "shards.$": "$.shards",
                # One name per execution: the run id, so `ltr` finds the execution of
                # a run and a run can never be started twice under one id.
                "run_id.$": "$$.Execution.Name",
            },
        },
        "ResultSelector": {"result.$": "$.Payload"},
        "ResultPath": "$.plan",
        "Retry": _service_retry(),
        "Next": "Planned",
    }


def _planned_choice() -> dict[str, Any]:
    return {
        "Type": "Choice",
        "Choices": [
            {
                "And": [
                    {"Variable": "$.plan.result.status", "IsPresent": True},
                    {"Variable": "$.plan.result.status", "StringEquals": "planned"},
                ],
                "Next": "Shards",
            }
        ],
        "Default": PLAN_REFUSED,
    }


def _shards_map(runner_function_arn: str, max_concurrency: int) -> dict[str, Any]:
    return {
        "Type": "Map",
        "ItemsPath": "$.plan.result.shards",
        "MaxConcurrency": max_concurrency,
        "ItemSelector": {
            "index.$": "$$.Map.Item.Value.index",
            "count.$": "$.plan.result.shard_count",
            "plan_key.$": "$.plan.result.plan_key",
            "run_id.$": "$.plan.result.run_id",
            "command.$": "$.command",
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "RunShard",
            "States": _shard_states(runner_function_arn),
        },
        "ResultPath": "$.shards",
        "Next": "Merge",
    }


def _shard_states(runner_function_arn: str) -> dict[str, Any]:
    """One shard: run it, keep its status, or record the error that ended it."""
    return {
        "RunShard": {
            "Type": "Task",
            "Resource": LAMBDA_INVOKE,
            "Parameters": {
                "FunctionName": runner_function_arn,
                "Payload": {
                    "command.$": "$.command",
                    "run_id.$": "$.run_id",
                    "shard": {
                        "index.$": "$.index",
                        "count.$": "$.count",
                        "plan_key.$": "$.plan_key",
                    },
                },
            },
            "ResultSelector": {"status.$": "$.Payload.status"},
            "ResultPath": "$.result",
            "Retry": _service_retry(),
            "Catch": [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ShardFailed"}
            ],
            "Next": "ShardDone",
        },
        "ShardDone": {
            "Type": "Pass",
            "Parameters": {"index.$": "$.index", "status.$": "$.result.status"},
            "End": True,
        },
        "ShardFailed": {
            "Type": "Pass",
            "Parameters": {"index.$": "$.index", "error.$": "$.error"},
            "End": True,
        },
    }


def _merge_state(merge_function_arn: str, bucket: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {
            "FunctionName": merge_function_arn,
            "Payload": {
                "action": "merge",
                "bucket": bucket,
                "plan_key.$": "$.plan.result.plan_key",
                "shards.$": "$.shards",
            },
        },
        "ResultSelector": {"result.$": "$.Payload"},
        "ResultPath": "$.merge",
        "OutputPath": "$.merge.result",
        "Retry": _service_retry(),
        "End": True,
    }


def execution_input(command: str, args: list[str] | tuple[str, ...], shards: int) -> dict:
    """What a schedule or `ltr run --shards` starts an execution with."""
    return {"command": command, "args": list(args), "shards": shards}
