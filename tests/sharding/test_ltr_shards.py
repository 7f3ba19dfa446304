"""ltr's sharded-run core: argv, the caps it states, what an execution history says."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from ltr.cli import ShardProgressLine
from ltr.core import LtrError, split_run_argv
from ltr.shards import (
    budget_warnings,
    config_cap,
    progress_text,
    shard_progress,
    sharded_timeout,
)

NOW = datetime(2026, 11, 29, 2, 10, tzinfo=UTC)
PLAN = {
    "status": "planned",
    "shard_count": 3,
    "shards": [
        {"index": 0, "estimated_seconds": 100},
        {"index": 1, "estimated_seconds": 300},
        {"index": 2, "estimated_seconds": 200},
    ],
    "cap": {"requested": 5, "applied": 3, "reason": "runner reserved concurrency 3"},
}


def history(done: dict[int, str], plan: dict = PLAN) -> list[dict]:
    events = [
        {"type": "ExecutionStarted"},
        {
            "type": "TaskSucceeded",
            "taskSucceededEventDetails": {"output": json.dumps({"Payload": plan})},
        },
    ]
    for index in range(3):
        events.append(
            {
                "type": "MapIterationStarted",
                "timestamp": NOW - timedelta(seconds=60 + index),
                "mapIterationStartedEventDetails": {"index": index},
            }
        )
    for index, state in done.items():
        events.append(
            {
                "type": "PassStateEntered",
                "stateEnteredEventDetails": {"name": state, "input": json.dumps({"index": index})},
            }
        )
    return events


def test_shards_option():
    assert split_run_argv(["test", "--shards", "4", "--wait"]).shards == 4
    assert split_run_argv(["test", "--shards=2"]).shards == 2
    assert split_run_argv(["test"]).shards is None
    for bad in ("1", "41", "x", "-3"):
        with pytest.raises(LtrError, match="--shards"):
            split_run_argv(["test", "--shards", bad])


def test_the_caps_said_before_and_after_planning():
    assert config_cap(4, 8, 8) is None
    assert config_cap(12, 8, 8) == "runner.max_shards caps 12 shards at 8"
    assert "at most 3 run at once" in (config_cap(6, 8, 3) or "")
    progress = shard_progress("RUNNING", history({}), NOW)
    assert progress.cap is not None
    assert progress.cap.text() == "3 of the 5 shards requested (runner reserved concurrency 3)"


def test_progress_says_shards_done_and_the_slowest_still_running():
    progress = shard_progress("RUNNING", history({1: "ShardFailed", 0: "ShardDone"}), NOW)
    assert (progress.planned, progress.done, progress.failed) == (3, 2, 1)
    text = progress_text(progress, "R1", 75)
    assert text.startswith("run R1: 2/3 shards done (1 failed); slowest still running: shard 2")
    progress = shard_progress("RUNNING", history({}), NOW)
    assert progress.slowest_running is not None and progress.slowest_running[0] == 1
    assert progress_text(shard_progress("RUNNING", history({})[:1], NOW), "R1", 1).endswith(
        "planning (1.0s)"
    )


def test_untrusted_history_fields_are_ignored():
    events = history({}) + [
        {
            "type": "PassStateEntered",
            "stateEnteredEventDetails": {"name": "ShardDone", "input": "[1]"},
        },
        {
            "type": "PassStateEntered",
            "stateEnteredEventDetails": {"name": "ShardDone", "input": "{"},
        },
        {"type": "MapIterationStarted", "mapIterationStartedEventDetails": {"index": "0"}},
    ]
    assert shard_progress("RUNNING", events, NOW).done == 0


def test_shards_estimated_over_their_budget_are_warned_of_once():
    over = shard_progress("RUNNING", history({}, PLAN | {"shard_budget_seconds": 250}), NOW)
    warnings = budget_warnings(over)
    assert len(warnings) == 1 and warnings[0].startswith("warning: shard 1 is estimated at 5m")
    assert "stopped there" in warnings[0]
    # No budget (Fargate, an older runner) or junk in its place: nothing to say.
    for budget in (None, "250", -1, True, 1e12, 10**400):
        plan = PLAN | {"shard_budget_seconds": budget}
        assert budget_warnings(shard_progress("RUNNING", history({}, plan), NOW)) == []

    stream = io.StringIO()
    line = ShardProgressLine(stream, "R1")
    line(shard_progress("RUNNING", history({})[:1], NOW), 1)  # planning: no plan yet
    line(over, 5)
    line(over, 40)
    assert stream.getvalue().count("warning: shard 1") == 1


def test_the_wait_covers_waves_of_shards():
    assert sharded_timeout(900, 8, 8, 300) == 900 * 2 + 300
    assert sharded_timeout(900, 9, 4, 300) == 900 * 4 + 300


def test_shards_apply_to_the_test_command_only():
    import io

    from ltr.cli import main

    err = io.StringIO()
    code = main(["run", "scribe:generate", "--shards", "3"], io.StringIO(), err)
    assert code == 2 and "--shards splits the test command only" in err.getvalue()
