"""The pure core: argument and event checks, redaction, key layout, globs, config."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runner import execution
from runner.artifacts import collect, glob_regex, static_root
from runner.commands import DEFAULT_COMMANDS, KNOWN_COMMANDS, ArgumentError, validate_args
from runner.config import ConfigError, RunnerConfig
from runner.events import RejectedInput, new_run_id, parse_event
from runner.execution import RESPONSE_MAX_BYTES, RunOutcome
from runner.layout import RUN_ID, command_slug, run_prefix
from runner.redact import MASK, Redactor

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
TEST = KNOWN_COMMANDS["test"]


def test_accepted_arguments_are_normalised():
    assert validate_args(TEST, ["--filter=Note.*store", "--group", "database,api"]) == (
        "--filter",
        "Note.*store",
        "--group",
        "database,api",
    )
    assert validate_args(TEST, ["--stop-on-failure", "--testsuite", "Feature Tests"]) == (
        "--stop-on-failure",
        "--testsuite",
        "Feature Tests",
    )
    assert validate_args(TEST, ["--filter", "^Tests\\\\Unit\\\\(Slug|Outcomes)Test$"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--filter"], "--filter needs a value"),
        (["--filter", "--log-junit=/etc/x"], "may not start with '-'"),
        (["--log-junit=/tmp/x"], "set by the runner"),
        (["--stop-on-failure=1"], "takes no value"),
        (["--coverage-html", "/var/www"], "not accepted for test; accepted: --exclude-group"),
        (["tests/Unit"], "only options are accepted"),
        (["--group", "a;b"], "shell syntax"),
        (["--group", "a\x00b"], "control character"),
    ],
)
def test_refused_arguments_say_why(args, message):
    with pytest.raises(ArgumentError, match=re.escape(message)):
        validate_args(TEST, args)


def test_a_configured_command_without_a_table_takes_no_arguments():
    event = {"command": "inspire", "args": ["--x"]}
    with pytest.raises(RejectedInput, match="not accepted for inspire; accepted: no arguments"):
        parse_event(event, ["inspire"], NOW)
    assert parse_event({"command": "inspire"}, ["inspire"], NOW).args == ()


SHELL_BITS = st.sampled_from([";", "|", "&", "`", "$(", "${", ">", "<", "'", '"', "\n", "\0"])


@settings(max_examples=300, deadline=None)
@given(
    before=st.text(max_size=20),
    bit=SHELL_BITS,
    after=st.text(max_size=20),
    command=st.sampled_from(DEFAULT_COMMANDS),
    option=st.sampled_from(["--filter", "--group", "--title", "--force", ""]),
)
def test_shell_syntax_anywhere_is_rejected(before, bit, after, command, option):
    hostile = before + bit + after
    for args in ([hostile], [option, hostile], [f"{option}={hostile}"]):
        if bit == "|" and option == "--filter" and args != [hostile]:
            continue  # alternation in a PHPUnit filter: harmless without a shell, and needed
        with pytest.raises(RejectedInput):
            parse_event({"command": command, "args": args}, DEFAULT_COMMANDS, NOW)
    with pytest.raises(RejectedInput, match="not allowed"):
        parse_event({"command": command + hostile}, DEFAULT_COMMANDS, NOW)


@settings(max_examples=300, deadline=None)
@given(args=st.lists(st.text(max_size=30), max_size=6))
def test_whatever_passes_validation_is_only_listed_options_and_safe_values(args):
    try:
        normal = validate_args(TEST, args)
    except ArgumentError:
        return
    for index in range(0, len(normal)):
        item = normal[index]
        assert not re.search(r"[\x00-\x1f;&`<>'\"]|\$\(", item)
        if item.startswith("-"):
            assert item in TEST.value_options or item in TEST.flag_options
            assert "--log-junit" not in item


@settings(max_examples=300, deadline=None)
@given(run_id=st.text(max_size=80))
def test_an_accepted_run_id_cannot_leave_its_folder(run_id):
    try:
        request = parse_event({"command": "test", "run_id": run_id}, DEFAULT_COMMANDS, NOW)
    except RejectedInput:
        return
    prefix = run_prefix(NOW, request.run_id, "test")
    assert prefix == f"runs/2026-11-28/{run_id}/test/"
    assert "/" not in run_id and ".." not in run_id and not run_id.startswith(".")


def test_generated_run_ids_are_valid_and_unique():
    ids = {new_run_id(NOW) for _ in range(200)}
    assert len(ids) == 200
    assert all(RUN_ID.fullmatch(i) and i.startswith("20261128T020000Z-") for i in ids)


def test_huge_events_are_refused_by_size():
    with pytest.raises(RejectedInput, match="bytes; at most 16384"):
        parse_event({"command": "test", "args": ["--group", "x" * 20000]}, DEFAULT_COMMANDS, NOW)


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(
        st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]),
        min_size=3,
        max_size=30,
    ),
    noise=st.lists(st.text(max_size=40), max_size=6),
    cuts=st.lists(st.integers(min_value=1, max_value=17), max_size=40),
)
def test_stream_redaction_masks_secrets_across_any_chunking(secret, noise, cuts):
    data = secret.join(noise + [""]).encode() + secret.encode()
    stream = Redactor([secret]).stream()
    out, position = b"", 0
    for cut in cuts:
        out += stream.feed(data[position : position + cut])
        position += cut
    out += stream.feed(data[position:]) + stream.flush()
    assert secret.encode() not in out
    assert out == Redactor([secret]).bytes(data)


def test_redaction_covers_encoded_forms_and_skips_tiny_values():
    redactor = Redactor(["p@ss word", "ab"])
    assert redactor.text("x p@ss word y p%40ss%20word ab") == "x ******** y ******** ab"
    assert MASK == b"********"


def test_key_layout_and_slugs():
    assert command_slug("scribe:generate") == "scribe-generate"
    assert command_slug("api:export-markdown") == "api-export-markdown"
    assert run_prefix(NOW, "r1", "test") == "runs/2026-11-28/r1/test/"


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("public/docs/**", "public/docs/index.html", True),
        ("public/docs/**", "public/docs/a/b/c.css", True),
        ("public/docs/**", "public/index.php", False),
        (".scribe/**", ".scribe/endpoints.json", True),
        ("docs/*.md", "docs/api.md", True),
        ("docs/*.md", "docs/sub/api.md", False),
        ("docs/**/*.md", "docs/api.md", True),
        ("docs/api.[mj]d", "docs/api.md", True),
    ],
)
def test_globs(pattern, path, matches):
    assert bool(glob_regex(pattern).fullmatch(path)) is matches


def test_static_roots():
    assert static_root("public/docs/**") == "public/docs"
    assert static_root("docs/api.md") == "docs"
    assert static_root("*.md") == ""


def test_collect_skips_links_into_the_read_only_app(tmp_path):
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "a.md").write_text("a")
    (tmp_path / "docs" / "sub" / "b.md").write_text("b")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "c.md").write_text("c")
    (tmp_path / "docs" / "linked").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "docs" / "c.md").symlink_to(tmp_path / "elsewhere" / "c.md")
    assert collect(tmp_path, ["docs/**"]) == ["docs/a.md", "docs/sub/b.md"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RUNNER_COMMANDS": "test"}, "RUNNER_COMMANDS is not JSON"),
        ({"RUNNER_COMMANDS": "[]"}, "non-empty JSON list"),
        ({"RUNNER_ARTIFACTS": '{"test": ["../etc/**"]}'}, "without '..'"),
        ({"RUNNER_ARTIFACTS": '{"test": ["/etc/**"]}'}, "must be relative"),
        ({"RUNNER_DEADLINE_MARGIN_SECONDS": "soon"}, "RUNNER_DEADLINE_MARGIN_SECONDS='soon'"),
        (
            {"RUNNER_DEADLINE_MARGIN_SECONDS": "5", "RUNNER_KILL_GRACE_SECONDS": "10"},
            "must be below",
        ),
    ],
)
def test_config_errors_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        RunnerConfig.from_env(env)


def test_config_defaults():
    config = RunnerConfig.from_env({})
    assert str(config.app_dir) == "/var/task/app"
    assert config.php == "php"
    assert config.commands == ("test", "scribe:generate", "api:export-markdown")
    assert config.globs_for("scribe:generate") == ("public/docs/**", ".scribe/**")
    assert config.globs_for("api:export-markdown") == ("docs/**",)
    assert config.results_bucket is None and config.timeout_seconds is None


def test_response_stays_under_256_kib_with_only_the_tail():
    outcome = RunOutcome("r", "test", (), "failed", NOW, NOW, 1, output_tail="é\x01" * 400_000)
    body = json.dumps(outcome.response())
    assert len(body.encode()) <= RESPONSE_MAX_BYTES
    assert outcome.response()["output_tail"].endswith("é\x01")


def test_rejected_input_starts_no_process(monkeypatch, tmp_path):
    """Narrow check of the claim the handler tests make from the outside."""
    from runner import handler

    from tests.runner.conftest import LambdaContext

    started = []
    monkeypatch.setattr(execution, "run_child", lambda *a, **k: started.append(a))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    for event in ({"command": "test; id"}, {"command": "test", "args": ["`id`"]}):
        assert handler.handler(event, LambdaContext())["status"] == "rejected"
    assert started == []
