"""demo/history_story.py's parts that do not need the deployed stack: reading the notification
back through an SQS subscription of a topic, and cutting the history part out of a summary."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from demo.history_story import (
    ON_DEMAND,
    SECOND_NIGHT,
    SWITCHES,
    SecondNight,
    _receive,
    _subscribe,
    history_part,
    notification_lines,
)
from report_processor.aws import SnsNotifier


def test_the_notification_is_read_back_as_sns_delivered_it(moto_server):
    run = SimpleNamespace(emulator=moto_server)
    sns = moto_server.client("sns")
    topic = sns.create_topic(Name=f"ltr-story-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue = _subscribe(run, topic)
    attributes = {"status": {"DataType": "String", "StringValue": "failed"}}
    SnsNotifier(topic, sns).publish("[ltr] test on example: 1 new failure", "body\n", attributes)
    second = SecondNight(nightly=None, topic=topic, messages=_receive(run, queue))  # type: ignore[arg-type]
    lines = notification_lines(second, {})
    assert lines[0] == f"Delivered by SNS ({topic}) to an SQS subscriber:"
    assert lines[1] == "Subject: [ltr] test on example: 1 new failure"
    assert lines[2] == 'Attributes: {"status": "failed"}'
    assert lines[-1] == "body"


def test_without_a_topic_the_decided_notification_is_shown_as_not_sent():
    second = SecondNight(nightly=None, topic=None, messages=[])  # type: ignore[arg-type]
    note = {"subject": "s", "body": "b\n", "attributes": {"status": {"StringValue": "failed"}}}
    lines = notification_lines(second, {"history": {"notification": note}})
    assert "NOTIFICATION_TOPIC_ARN: not sent" in lines[0]
    assert lines[1:] == ["Subject: s", 'Attributes: {"status": "failed"}', "", "b"]
    assert notification_lines(second, {"history": {"notification": None}})[0].startswith("No ")


def test_history_part_is_the_headline_and_the_section():
    markdown = (
        "# T\n\n**1 new failure**\n\nfacts\n\n## Since the previous run\n\nx\n\n## Failures\n\ny\n"
    )
    assert history_part(markdown) == "# T\n\n**1 new failure**\n\n## Since the previous run\n\nx"


def test_the_switches_reach_phpunit_through_the_runners_child_env():
    for settings in (ON_DEMAND, SECOND_NIGHT):
        overrides = settings.overrides()
        assert overrides["RUNNER_CHILD_ENV"] == SWITCHES and SWITCHES in overrides
    assert SECOND_NIGHT.overrides()["APP_VERSION"] != ON_DEMAND.overrides()["APP_VERSION"]
