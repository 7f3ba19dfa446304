"""`make demo`'s memory across runs (issue 12): what the report says about *the second night*.

The story, on the fixture app (tests/laravel_app), with the real runner and report processor:

1. an on-demand run (`ltr run test`) of app 1.4.0 in which one test fails that passes at night:
   a flake (`OutcomesTest::test_a_pass_among_them`);
2. the first night (the deployed schedules, 1.4.0, nothing switched);
3. a release: the image now carries app 1.5.0, which breaks `SlugTest::test_collection_sums`
   and fixes `OutcomesTest::test_a_failing_assertion`;
4. the second night (the deployed schedules again): one new failure, one fixed test, and the
   flake of step 1 flagged flaky (passed and failed on the same app version, 1.4.0).

Why three runs for two nights: a test that changes outcome on the same app version is flaky by
the history's rule, so the new failure and the fix come with a new version (as they would), and
the flake needs two runs of one version: the on-demand run and the first night.

What varies the outcomes: `LTR_DEMO_SWITCHES`, which the fixture's tests read, handed to PHPUnit
through the runner's own RUNNER_CHILD_ENV; the app version through APP_VERSION (which a real
image sets at build time). Nothing else of the deployed functions changes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from demo.lambda_runtime import LocalRunnerSettings, describe_function
from demo.pipeline import NightlyResult, PipelineRun, run_nightly_jobs
from modules.contract import NOTIFICATION_TOPIC_ARN

SWITCHES = "LTR_DEMO_SWITCHES"
FIRST_VERSION = "1.4.0"  # tests/laravel_app/composer.json
RELEASE = "1.5.0"


def switched(switches: str, app_version: str) -> LocalRunnerSettings:
    return LocalRunnerSettings(
        env={"RUNNER_CHILD_ENV": SWITCHES, SWITCHES: switches, "APP_VERSION": app_version}
    )


ON_DEMAND = switched("flake", FIRST_VERSION)
SECOND_NIGHT = switched("regression,fix", RELEASE)


@dataclass
class SecondNight:
    nightly: NightlyResult
    topic: str | None  # the deployed notification topic, when the stack has one
    messages: list[dict[str, Any]]  # what an SQS subscriber of that topic received


def deployed_topic(run: PipelineRun) -> str | None:
    function = describe_function(run.emulator.client("lambda"), run.config.names.report_function)
    return function.environment.get(NOTIFICATION_TOPIC_ARN) or None


def run_second_night(
    run: PipelineRun, progress: Callable[[str], None], log: TextIO | None = None
) -> SecondNight:
    """The nightly jobs again, on the release; the topic's messages read back from SQS."""
    topic = deployed_topic(run)
    queue = _subscribe(run, topic) if topic else None
    names = run.config.names
    nightly = run_nightly_jobs(
        run.emulator, names.runner_function, names.results_bucket, SECOND_NIGHT, progress, log
    )
    messages = _receive(run, queue) if queue else []
    return SecondNight(nightly, topic, messages)


def _subscribe(run: PipelineRun, topic: str) -> str:
    """An SQS queue subscribed to the topic: what an e-mail subscriber would get, readable."""
    sqs = run.emulator.client("sqs")
    queue = sqs.create_queue(QueueName=f"ltr-demo-notifications-{uuid.uuid4().hex[:8]}")
    arn = sqs.get_queue_attributes(QueueUrl=queue["QueueUrl"], AttributeNames=["QueueArn"])
    run.emulator.client("sns").subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"]
    )
    return str(queue["QueueUrl"])


def _receive(run: PipelineRun, queue: str) -> list[dict[str, Any]]:
    sqs = run.emulator.client("sqs")
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [json.loads(message["Body"]) for message in received.get("Messages", [])]


def history_part(markdown: str) -> str:
    """The title, the history headline and the "Since the previous run" section of a summary."""
    lines = markdown.splitlines()
    head = lines[:3]
    try:
        start = lines.index("## Since the previous run")
    except ValueError:
        return "\n".join(head)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join([*head, "", *lines[start:end]]).rstrip()


def notification_lines(second: SecondNight, summary: dict[str, Any]) -> list[str]:
    """The message as delivered (SQS subscriber of the deployed topic), else as it would be."""
    if second.messages:
        lines = [f"Delivered by SNS ({second.topic}) to an SQS subscriber:"]
        for envelope in second.messages:
            attributes = {k: v.get("Value") for k, v in envelope["MessageAttributes"].items()}
            lines += [
                f"Subject: {envelope['Subject']}",
                f"Attributes: {json.dumps(attributes)}",
                "",
                envelope["Message"].rstrip(),
            ]
        return lines
    note = (summary.get("history") or {}).get("notification")
    if note is None:
        return ["No notification: the status did not change and nothing new failed."]
    where = (
        f"published to {second.topic} but not received"
        if second.topic
        else f"the stack sets no {NOTIFICATION_TOPIC_ARN}: not sent"
    )
    attributes = {name: value["StringValue"] for name, value in note["attributes"].items()}
    return [
        f"The notification the report processor decided ({where}):",
        f"Subject: {note['subject']}",
        f"Attributes: {json.dumps(attributes)}",
        "",
        note["body"].rstrip(),
    ]
