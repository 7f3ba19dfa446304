"""`runner.max_shards` and `shards` on a schedule: validated with every problem at once."""

from __future__ import annotations

import copy
import json

import pytest

from modules.config import DEFAULT_CONFIG_PATH, DEFAULT_MAX_SHARDS, ConfigError, parse_config
from modules.shard_flow import LAMBDA_SERVICE_ERRORS, state_machine_definition

EXAMPLE = json.loads(DEFAULT_CONFIG_PATH.read_text())


def problems(change) -> list[str]:
    raw = copy.deepcopy(EXAMPLE)
    change(raw)
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "test.json")
    return caught.value.problems


def sharded(raw: dict) -> dict:
    return raw["schedules"][2]


def test_the_example_has_a_sharded_nightly_test_run():
    config = parse_config(copy.deepcopy(EXAMPLE))
    schedule = config.schedules[2]
    assert schedule.shards == 4 and schedule.is_sharded(schedule.runs[0])
    assert config.runner.max_shards == 8 and config.runner.shard_concurrency == 8
    raw = copy.deepcopy(EXAMPLE)
    del raw["runner"]["max_shards"]
    assert parse_config(raw).runner.max_shards == DEFAULT_MAX_SHARDS


def test_every_sharding_problem_is_reported_at_once():
    found = problems(
        lambda raw: (
            raw["runner"].update(max_shards=41),
            sharded(raw).update(shards=1),
            raw["schedules"][1].update(shards=3),  # the weekly Fargate schedule
            raw["schedules"][0].update(shards="4"),
        )
    )
    assert "runner.max_shards: 41 is out of range; use 1 to 40" in found[0]
    assert any(p.startswith("schedules[2].shards: 1 is out of range; use 2 to 40") for p in found)
    assert any(p.startswith('schedules[1].shards: needs "target": "lambda"') for p in found)
    assert any(p.startswith("schedules[0].shards: must be a whole number") for p in found)


def test_shards_above_max_shards_and_schedules_without_a_test_run_are_refused():
    found = problems(lambda raw: raw["runner"].update(max_shards=2))
    assert found == [
        "schedules[2].shards: 4 is more than runner.max_shards (2), so only 2 would ever start; "
        "lower shards or raise runner.max_shards (up to 40)"
    ]
    found = problems(lambda raw: sharded(raw).update(runs=[{"command": "scribe:generate"}]))
    assert found[0].startswith('schedules[2].shards: shards only the "test" command')


def test_reserved_concurrency_counts_the_shards_running_at_once():
    found = problems(
        lambda raw: (
            raw["runner"].update(reserved_concurrency=4),
            sharded(raw).update(cron="cron(0 2 * * ? *)"),
        )
    )
    # The nightly's 3 runs plus the sharded run's 4 shards at 02:00.
    assert "fewer than the 7 runner invocations" in found[0]
    raw = copy.deepcopy(EXAMPLE)
    raw["runner"].update(reserved_concurrency=3)
    # At 02:30 alone, the shards are bounded by the state machine's MaxConcurrency (3).
    config = parse_config(raw)
    assert config.runner.shard_concurrency == 3


def test_the_definition_retries_only_lambda_service_errors_and_catches_every_shard():
    definition = state_machine_definition(
        runner_function_arn="arn:runner",
        merge_function_arn="arn:merge",
        bucket="b",
        max_concurrency=3,
    )
    shards = definition["States"]["Shards"]
    assert shards["MaxConcurrency"] == 3
    task = shards["ItemProcessor"]["States"]["RunShard"]
    assert [retry["ErrorEquals"] for retry in task["Retry"]] == [list(LAMBDA_SERVICE_ERRORS)]
    assert not any(e.startswith("States.") for e in LAMBDA_SERVICE_ERRORS)
    assert task["Catch"][0]["ErrorEquals"] == ["States.ALL"]
    tasks = [definition["States"][n] for n in ("Plan", "Merge")] + [task]
    assert {t["Parameters"]["FunctionName"] for t in tasks} == {"arn:runner", "arn:merge"}
    with pytest.raises(ValueError):
        state_machine_definition(
            runner_function_arn="a", merge_function_arn="b", bucket="c", max_concurrency=0
        )
