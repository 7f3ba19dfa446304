"""Properties of whole histories (hypothesis drives sequences of nights through a session)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from report_processor.history.records import HistoryConfig
from report_processor.history.storage import MemoryStore
from tests.history.helpers import Night, names, run_night

TESTS = [f"t{n}" for n in range(6)]
CONFIG = HistoryConfig(wholesale_min_tests=3, flip_min_runs=3, flip_min_flips=2)

night_outcomes = st.fixed_dictionaries(
    {name: st.sampled_from(["pass", "fail", "skip", "flaky"]) for name in TESTS}
)
histories = st.lists(
    st.tuples(night_outcomes, st.sampled_from(["v1", "v2"])), min_size=2, max_size=6
)


def flaky_at_the_end(history, outage_before_last: bool):
    store = MemoryStore()
    nights = [Night(i + 1, version, outcomes) for i, (outcomes, version) in enumerate(history)]
    if outage_before_last:
        last = nights[-1]
        outage = Night(len(nights), last.version, dict.fromkeys(TESTS, "error"))
        nights = [*nights[:-1], outage, Night(last.number + 1, last.version, last.outcomes)]
    section = None
    for night in nights:
        section = run_night(store, night, CONFIG)
    assert section is not None
    return section


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories)
def test_an_outage_night_never_changes_which_tests_are_flaky(history):
    plain = flaky_at_the_end(history, outage_before_last=False)
    with_outage = flaky_at_the_end(history, outage_before_last=True)
    assert names(t.test_id for t in with_outage.flaky) == names(t.test_id for t in plain.flaky)
    # ... nor what is new, fixed or still failing: the outage is never the baseline.
    assert names(t.test_id for t in with_outage.new_failures) == names(
        t.test_id for t in plain.new_failures
    )
    assert set(with_outage.fixed) == set(plain.fixed)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories)
def test_every_test_of_tonight_is_in_exactly_one_diff_class_or_unchanged(history):
    section = flaky_at_the_end(history, outage_before_last=False)
    new = names(t.test_id for t in section.new_failures)
    still = names(t.test_id for t in section.still_failing)
    fixed = names(section.fixed)
    assert not (new & still) and not (new & fixed) and not (still & fixed)
    tonight = history[-1][0]
    if section.baseline is None:  # every earlier night failed wholesale: nothing to compare
        assert not (new or still or fixed)
        return
    before = history[int(section.baseline.run_id[1:]) - 1][0]  # baseline skips outages
    failing = {name for name, outcome in tonight.items() if outcome == "fail"}
    assert new | still == failing
    assert fixed == {
        name
        for name, outcome in tonight.items()
        if outcome in ("pass", "flaky") and before[name] == "fail"
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.permutations(range(1, 6)))
def test_previous_is_by_start_time_whatever_the_arrival_order(order):
    store = MemoryStore()
    arrived: list[int] = []
    for number in order:
        outcomes = {name: "pass" if (number + i) % 3 else "fail" for i, name in enumerate(TESTS)}
        section = run_night(store, Night(number, "v1", outcomes), CONFIG)
        earlier = [n for n in arrived if n < number]
        expected = f"n{max(earlier)}" if earlier else None
        assert (section.previous.run_id if section.previous else None) == expected
        assert section.superseded == any(n > number for n in arrived)
        assert section.notification is None or not section.superseded
        arrived.append(number)
    last = run_night(store, Night(6, "v1", dict.fromkeys(TESTS, "pass")), CONFIG)
    assert last.previous is not None and last.previous.run_id == "n5"
