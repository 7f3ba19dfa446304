"""Golden files of the history in the summary: a prepared history of three nights through the
real core (`process_object`), and the third night's summary.md / summary.json as users read them.

fixtures/history/night{1,2,3}.xml, PHPUnit 9-shaped (Tests\\Feature\\CheckoutTest, a data
provider in Tests\\Unit\\PriceTest). App versions: 1.0 (nights 1-2), 1.1 (night 3). Night 3 has
one new failure (test_pays), one fixed (test_refunds), one still failing since night 1
(test_ships), one flaky (test_coupon: failed and passed on 1.0), a rename (test_old_name ->
test_new_name), a removed test (the count drops 10 -> 9), a failing test under an active
quarantine (left out of the status and the pass rate) and an expired quarantine entry.
`make golden` rewrites the golden files; review the diff.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from report_processor.config import ProcessorConfig
from report_processor.history.queries import add_to_quarantine
from report_processor.history.storage import MemoryStore
from report_processor.process import S3Record, process_object
from tests.golden import assert_matches_golden

FIXTURES = Path(__file__).parent / "fixtures" / "history"
BUCKET = "ltr-shop-prod-results"
START = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
VERSIONS = {1: "1.0.0", 2: "1.0.0", 3: "1.1.0"}
CHECKOUT = "tests/Feature/CheckoutTest.php::Tests.Feature.CheckoutTest::"


class MemoryResults:
    """process.Storage over a dict, with S3's conditional-write rules (enough for one thread)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.etags: dict[str, str] = {}

    def _put(self, key: str, data: bytes) -> None:
        self.objects[key] = data
        self.etags[key] = f'"{len(self.etags)}"'

    def exists(self, key: str) -> bool:
        return key in self.objects

    def read_json(self, key: str, max_bytes: int) -> Any:
        return self.read_json_with_etag(key, max_bytes)[0]

    def read_json_with_etag(self, key: str, max_bytes: int) -> tuple[Any, str | None]:
        if key not in self.objects:
            return None, None
        return json.loads(self.objects[key]), self.etags[key]

    def open_object(self, key: str, version_id: str | None, max_bytes: int) -> BinaryIO | None:
        return io.BytesIO(self.objects[key]) if key in self.objects else None

    def put_text(self, key: str, text: str, content_type: str) -> None:
        self._put(key, text.encode())

    def put_text_if(self, key: str, text: str, content_type: str, etag: str | None) -> bool:
        if self.etags.get(key) != etag:
            return False
        self._put(key, text.encode())
        return True

    def etag(self, key: str) -> str | None:
        return self.etags.get(key)

    def claim(self, key: str, body: str) -> bool:
        if key in self.objects:
            return False
        self._put(key, body.encode())
        return True


@pytest.fixture(scope="module")
def nights() -> dict[int, tuple[str, str]]:
    results, history = MemoryResults(), MemoryStore()
    add_to_quarantine(
        history,
        "shop",
        "prod",
        CHECKOUT + "test_quarantined",
        "stock fixture races the importer (SHOP-231)",
        "bo",
        START + timedelta(hours=8),
        days=14,
    )
    add_to_quarantine(history, "shop", "prod", CHECKOUT + "test_expired", "slow CI runner",
                      "ana", START - timedelta(days=12), days=10)  # fmt: skip
    config = ProcessorConfig("shop", "prod", region="eu-west-1")
    written = {}
    for number in (1, 2, 3):
        started = START + timedelta(days=number - 1)
        run_id = f"{started:%Y%m%dT%H%M%SZ}-n{number}"
        prefix = f"runs/{started:%Y-%m-%d}/{run_id}/test/"
        manifest = {
            "run_id": run_id,
            "command": "test",
            "status": "failed",
            "exit_code": 1,
            "started_at": started.isoformat().replace("+00:00", ".000Z"),
            "duration_seconds": 12.5,
            "app_version": VERSIONS[number],
            "image_version": "v0.9.0",
        }
        results.put_text(prefix + "manifest.json", json.dumps(manifest), "application/json")
        results._put(prefix + "junit.xml", (FIXTURES / f"night{number}.xml").read_bytes())
        record = S3Record(BUCKET, prefix + "junit.xml", None, f"seq-{number}")
        outcome = process_object(
            record, results, config, now=lambda s=started: s + timedelta(minutes=20),
            history=history,
        )  # fmt: skip
        assert outcome.history == "recorded"
        report = f"reports/{started:%Y-%m-%d}/{run_id}/test/"
        written[number] = (
            results.objects[report + "summary.md"].decode(),
            results.objects[report + "summary.json"].decode(),
        )
    return written


def test_history_summary_matches_golden(nights):
    markdown, document = nights[3]
    assert_matches_golden(FIXTURES / "night3.summary.md", markdown)
    assert_matches_golden(FIXTURES / "night3.summary.json", document)


def test_first_night_summary_matches_golden(nights):
    markdown, _ = nights[1]
    assert_matches_golden(FIXTURES / "night1.summary.md", markdown)


def test_the_golden_night_is_the_story_the_fixtures_tell(nights):
    """The golden files are reviewed by eye; this pins the story they must tell."""
    markdown, document = nights[3]
    history = json.loads(document)["history"]
    assert history["headline"] == (
        "1 new failure · 1 fixed · 1 still failing · 1 flaky · ⚠ tests dropped 10 → 9 · "
        "1 quarantined · 1 quarantine expired"
    )
    assert [t["test_id"] for t in history["new_failures"]] == [CHECKOUT + "test_pays"]
    assert history["fixed"] == [CHECKOUT + "test_refunds"]
    assert history["flaky"][0]["app_version"] == "1.0.0"
    assert (
        history["notification"]["body"]
        .rstrip()
        .endswith("prefix=reports%2F2026-11-03%2F20261103T020000Z-n3%2Ftest%2Fsummary.md")
    )
    assert json.loads(document)["status"] == "failed"  # test_ships fails unprotected


def test_a_long_history_section_is_shortened_to_fit_the_byte_cap():
    from dataclasses import replace

    from report_processor.history.section import Counts, FailingTest, HistorySection, RunRef
    from report_processor.model import Report, RunMetadata, Totals
    from report_processor.render import to_markdown

    run = RunRef("r2", "20261102T020000000Z-r2", "2026-11-02T02:00:00.000Z", "1.1.0")
    failing = tuple(
        FailingTest(f"tests/Feature/T.php::Tests.Feature.T::test_{i}_" + "x" * 150, "failed",
                    "boom", 1, 2, run, run, False)
        for i in range(50)
    )  # fmt: skip
    section = HistorySection(
        run=run, status="failed", previous=run, previous_status="passed", baseline=run,
        superseded=False, wholesale_reason=None, tests=100, tests_before=100,
        tests_dropped=False, pass_rate=0.5, counts=Counts(failing=50, new_failures=50),
        new_failures=failing, headline="50 new failures · 0 fixed · 0 still failing · 0 flaky",
    )  # fmt: skip
    report = replace(
        Report(Totals(tests=100, passed=50, failed=50), (), (), (), (), RunMetadata()),
        history=section,
    )
    full = to_markdown(report, 1 << 20)
    assert full.count("test_49_") == 1
    cut = to_markdown(report, 8192)
    assert len(cut.encode()) <= 8192
    assert "**50 new failures · 0 fixed · 0 still failing · 0 flaky**" in cut
    assert "## Since the previous run" in cut and "history entries per list:" in cut
    assert "new failures: " in cut and " of 50 shown" in cut
