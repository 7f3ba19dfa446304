"""Golden files: every fixture's summary.md and summary.json, reviewed as a diff of what users read.

Each fixture XML in fixtures/ has `<name>.summary.md` and `<name>.summary.json` beside it. The run
metadata is fixed and the input is named by its file name only, so nothing depends on the machine
or the clock. `make golden` rewrites them; review the diff before committing.
"""

from pathlib import Path

import pytest

from report_processor import RunMetadata, summarize
from tests.golden import assert_matches_golden

FIXTURES = Path(__file__).parent / "fixtures"
METADATA = RunMetadata(
    run_id="20251127T020000Z-ab12",
    command="test",
    environment="dev",
    project="shop",
    started_at="2025-11-27T02:00:00.000Z",
)
XML_FIXTURES = sorted(path.name for path in FIXTURES.glob("*.xml"))


def test_every_fixture_has_its_golden_pair():
    pairs = {path.name.split(".summary.")[0] for path in FIXTURES.glob("*.summary.*")}
    assert pairs <= set(XML_FIXTURES), (
        f"golden files without a fixture: {pairs - set(XML_FIXTURES)}"
    )


@pytest.mark.parametrize("name", XML_FIXTURES)
def test_summary_matches_golden(name):
    with (FIXTURES / name).open("rb") as stream:
        summary = summarize([(name, stream)], METADATA)
    assert_matches_golden(FIXTURES / f"{name}.summary.md", summary.markdown)
    assert_matches_golden(FIXTURES / f"{name}.summary.json", summary.json)
