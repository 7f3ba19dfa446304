"""The command line as users run it: a real subprocess, real files, exit codes."""

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "report_processor", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=REPO_ROOT,
        timeout=120,
    )


def test_failing_tests_still_exit_zero_when_every_input_parsed():
    result = run_cli("summarize", str(FIXTURES / "phpunit9_nested.xml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# ❌ Test report: failed")
    assert result.stderr == ""


def test_json_format_merges_shards():
    result = run_cli(
        "summarize", "--format", "json", str(FIXTURES / "go.xml"), str(FIXTURES / "pytest.xml")
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["totals"]["tests"] == 9
    assert [item["ok"] for item in document["inputs"]] == [True, True]


def test_an_unusable_input_exits_two_and_is_still_listed():
    result = run_cli(
        "summarize",
        "--format",
        "json",
        str(FIXTURES / "billion_laughs.xml"),
        str(FIXTURES / "go.xml"),
        str(FIXTURES / "no-such-file.xml"),
    )
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert [item["ok"] for item in document["inputs"]] == [False, True, False]
    assert document["totals"]["tests"] == 4
    assert "billion_laughs.xml" in result.stderr and "DOCTYPE" in result.stderr
    assert "no-such-file.xml" in result.stderr


def test_max_bytes_caps_the_markdown():
    result = run_cli("summarize", "--max-bytes", "1500", str(FIXTURES / "phpunit9_nested.xml"))
    assert result.returncode == 0
    assert len(result.stdout.encode("utf-8")) <= 1500
    assert "Cut to fit 1,500 bytes" in result.stdout


def test_bad_command_lines_exit_two_with_a_reason():
    too_small = run_cli("summarize", "--max-bytes", "10", str(FIXTURES / "go.xml"))
    assert too_small.returncode == 2
    assert "must be at least 1024 bytes" in too_small.stderr
    assert run_cli("summarize").returncode == 2
    assert run_cli().returncode == 2
    not_a_number = run_cli("summarize", "--max-bytes", "lots", str(FIXTURES / "go.xml"))
    assert "expected a whole number" in not_a_number.stderr


def test_app_root_and_source_links_from_the_command_line():
    result = run_cli(
        "summarize",
        "--app-root",
        "/var/task",
        "--source-url-template",
        "https://github.com/acme/shop/blob/{app_version}/{path}#L{line}",
        "--app-version",
        "v2",
        str(FIXTURES / "phpunit10_side.xml"),
    )
    assert result.returncode == 0, result.stderr
    url = "https://github.com/acme/shop/blob/v2/app/tests/Unit/OrderTest.php#L24"
    assert f"at [app/tests/Unit/OrderTest.php:24]({url}) (test at :12)" in result.stdout
    refused = run_cli("summarize", "--source-url-template", "ftp://x/{path}", "f.xml")
    assert refused.returncode == 2 and "must start with https://" in refused.stderr
