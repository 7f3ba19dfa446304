"""The pure parts of the runner's defences: masking in every form, XML-aware masking, the
child's environment, the run folder's descriptor-only access and the secret's checks."""

from __future__ import annotations

import io
import json
import os
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runner.config import ConfigError, RunnerConfig
from runner.database import SecretUnavailable, parse_db_secret
from runner.isolation import child_environment
from runner.redact import MASK, NotWellFormed, Redactor, redact_xml
from runner.rundir import RunDir, UnsafeFile, remove_stale

from tests.runner.secret_forms import SM_ALPHABET, secret_forms

PASSWORDS = st.text(alphabet=SM_ALPHABET, min_size=8, max_size=40)
NOISE = st.text(alphabet=SM_ALPHABET + "\n", max_size=30)


@settings(max_examples=300, deadline=None)
@given(password=PASSWORDS, before=NOISE, after=NOISE)
def test_every_form_of_a_password_is_masked(password, before, after):
    redactor = Redactor([password])
    for name, form in secret_forms(password).items():
        masked = redactor.bytes(f"{before}{form}{after}".encode())
        assert form.encode() not in masked, name


@settings(max_examples=150, deadline=None)
@given(
    password=PASSWORDS,
    cuts=st.lists(st.integers(min_value=1, max_value=23), min_size=1, max_size=60),
)
def test_every_form_is_masked_however_the_output_is_chunked(password, cuts):
    data = " | ".join(secret_forms(password).values()).encode() + b"\n"
    stream = Redactor([password]).stream()
    out, position = b"", 0
    for cut in cuts:
        out += stream.feed(data[position : position + cut])
        position += cut
    out += stream.feed(data[position:]) + stream.flush()
    for name, form in secret_forms(password).items():
        assert form.encode() not in out, name


def test_a_username_is_masked_only_as_a_whole_token():
    redactor = Redactor(["s3cr3t-pass"], ["test"])
    text = '<testsuites><testsuite name="test"> test_a_note user=test; tests latest'
    assert redactor.text(text) == (
        '<testsuites><testsuite name="********"> test_a_note user=********; tests latest'
    )
    # Too short to tell from an ordinary word: `app` is left alone.
    assert Redactor([], ["app"]).text("app: the app") == "app: the app"


JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="Tests\\Unit" tests="1">
    <testcase name="test_login" class="Tests\\Unit\\LoginTest" file="/app/tests/LoginTest.php">
      <failure type="x">could not log in as test with p&amp;ss&lt;w&#62;rd &#x70;&#x26;ss&lt;w&gt;rd
{"password":"p&amp;ss\\u003cw>rd"}</failure>
      <system-out attr="p&amp;ss&lt;w&gt;rd">test</system-out>
    </testcase>
  </testsuite>
</testsuites>
"""


def test_junit_masking_keeps_the_report_well_formed():
    out = io.BytesIO()
    redact_xml(io.BytesIO(JUNIT.encode()), out, Redactor(["p&ss<w>rd"], ["test"]))

    root = ET.fromstring(out.getvalue())  # noqa: S314 - produced by this test
    assert root.tag == "testsuites"
    case = root.find("testsuite/testcase")
    assert case.get("name") == "test_login" and case.get("file") == "/app/tests/LoginTest.php"
    failure = case.find("failure").text
    assert failure == 'could not log in as ******** with ******** ********\n{"password":"********"}'
    assert case.find("system-out").get("attr") == "********"
    assert case.find("system-out").text == "********"
    for form in secret_forms("p&ss<w>rd").values():
        assert form.encode() not in out.getvalue()


@pytest.mark.parametrize(
    "document",
    [
        b"<testsuites><testsuite>",
        b'<!DOCTYPE x [<!ENTITY p "secret">]><testsuites>&p;</testsuites>',
    ],
)
def test_junit_masking_refuses_what_it_cannot_rewrite_faithfully(document):
    with pytest.raises(NotWellFormed):
        redact_xml(io.BytesIO(document), io.BytesIO(), Redactor(["secret"]))


def test_the_child_gets_only_what_is_allowed():
    base = {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/x",
        "ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4",
        "_LAMBDA_SERVER_PORT": "1",
        "DB_SECRET_ARN": "arn",
        "RESULTS_BUCKET": "b",
        "APP_KEY": "base64:x",
    }
    assert child_environment(base) == {"PATH": "/usr/bin", "LANG": "C.UTF-8", "LC_ALL": "C"}
    assert child_environment(base, ["APP_KEY", "AWS_ACCESS_KEY_ID"])["APP_KEY"] == "base64:x"
    assert "AWS_ACCESS_KEY_ID" not in child_environment(base, ["AWS_ACCESS_KEY_ID"])


def test_extra_child_variables_are_checked(tmp_path):
    env = {"RUNNER_APP_DIR": str(tmp_path), "RUNNER_CHILD_ENV": "APP_KEY, MAIL_HOST"}
    assert RunnerConfig.from_env(env).child_env == ("APP_KEY", "MAIL_HOST")
    for bad, message in [("AWS_SESSION_TOKEN", "may not pass"), ("A-B", "not a variable name")]:
        with pytest.raises(ConfigError, match=message):
            RunnerConfig.from_env({**env, "RUNNER_CHILD_ENV": bad})


def test_run_files_are_read_only_as_regular_files_inside_the_folder(tmp_path):
    folder = RunDir.create(tmp_path, "r1-test")
    root = folder.path
    (root / "junit.xml").write_text("<testsuites/>")
    (root / "real").mkdir()
    (root / "real" / "doc.html").write_text("doc")
    os.symlink("/etc/hostname", root / "link.xml")
    os.symlink(root / "real", root / "linked")
    os.mkfifo(root / "fifo.xml")
    try:
        with folder.open_regular("junit.xml") as handle:
            assert handle.read() == b"<testsuites/>"
        with folder.open_regular("real/doc.html") as handle:
            assert handle.read() == b"doc"
        for relative, reason in [
            ("link.xml", "without following links"),
            ("linked/doc.html", "'linked' is not a folder"),
            ("fifo.xml", "not a regular file (a FIFO)"),
            ("real", "not a regular file (a folder)"),
            ("../x", "not a plain path"),
        ]:
            with pytest.raises(UnsafeFile, match=re.escape(reason)):
                folder.open_regular(relative)
        with pytest.raises(FileNotFoundError):
            folder.open_regular("missing.xml")
    finally:
        folder.close()


def test_files_the_runner_writes_replace_what_the_run_put_there(tmp_path):
    folder = RunDir.create(tmp_path, "r2-test")
    (folder.path / "manifest.json").mkdir()
    (folder.path / "manifest.json" / "x").write_text("x")
    os.symlink("/etc/hostname", folder.path / "output.log")
    try:
        for name in ("manifest.json", "output.log"):
            with folder.create_file(name) as handle:
                handle.write(b"runner")
            assert not (folder.path / name).is_symlink()
            assert (folder.path / name).read_bytes() == b"runner"
    finally:
        folder.close()


def test_only_unlocked_run_folders_of_earlier_invocations_are_removed(tmp_path):
    live = RunDir.create(tmp_path, "live")
    stale = tmp_path / "ltr-run-stale-test-x1"
    (stale / "app").mkdir(parents=True)
    kept = tmp_path / "ltr-kept-old-test-x2"
    kept.mkdir()
    elsewhere = tmp_path / "outside"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    os.symlink(elsewhere, tmp_path / "ltr-run-link")
    try:
        removed = remove_stale(tmp_path)
        assert sorted(removed) == ["ltr-run-link", "ltr-run-stale-test-x1"]
        assert live.path.is_dir() and kept.is_dir() and (elsewhere / "keep.txt").is_file()
        assert not stale.exists() and not (tmp_path / "ltr-run-link").exists()
    finally:
        live.close()


def _secret(**fields):
    base = {"username": "app", "password": "pw", "host": "db.example.com", "port": 5432}
    return json.dumps({**base, **fields})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password": "a\0b"}, "password contains a NUL character"),
        ({"username": "a\0"}, "username contains a NUL character"),
        ({"host": "db\0.example.com"}, "host contains a NUL character"),
        ({"dbname": "x\0"}, "dbname contains a NUL character"),
        ({"host": "a" * 64 + ".example.com"}, "host is not a DNS name or IP address"),
        ({"host": "db..example.com"}, "host is not a DNS name or IP address"),
        ({"port": "fivefourthreetwo"}, "port must be a number from 1 to 65535"),
        ({"port": 70000}, "port must be a number from 1 to 65535"),
        ({"port": True}, "port must be a number from 1 to 65535"),
    ],
)
def test_malformed_secret_values_are_named_not_echoed(fields, message):
    with pytest.raises(SecretUnavailable, match=message) as raised:
        parse_db_secret(_secret(**fields), "arn:secret")
    assert "\0" not in str(raised.value)


def test_well_formed_secrets_pass():
    assert parse_db_secret(_secret(port="6432"), "s").port == 6432
    assert parse_db_secret(_secret(host="10.0.0.5"), "s").host == "10.0.0.5"
    assert parse_db_secret(_secret(host="::1"), "s").host == "::1"
    assert MASK == b"********"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


@settings(max_examples=150, deadline=None)
@given(
    password=PASSWORDS,
    username=st.sampled_from(["test", "testsuite", "testcase", "name", "failure", "time"]),
    texts=st.lists(st.text(alphabet=SM_ALPHABET, max_size=20), min_size=3, max_size=3),
)
def test_masked_junit_always_parses_with_its_structure_intact(password, username, texts):
    message = f"{texts[0]} {username} {password} {texts[1]}"
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite name="'
        + _escape(username)
        + '" time="1"><testcase name="test_x" class="'
        + _escape(texts[2])
        + f'"><failure type="{_escape(password)}">{_escape(message)}</failure>'
        + "</testcase></testsuite></testsuites>"
    )
    out = io.BytesIO()
    redact_xml(io.BytesIO(document.encode()), out, Redactor([password], [username]))

    root = ET.fromstring(out.getvalue())  # noqa: S314 - produced by this test
    assert [element.tag for element in root.iter()] == [
        "testsuites",
        "testsuite",
        "testcase",
        "failure",
    ]
    assert [sorted(element.attrib) for element in root.iter()] == [
        [],
        ["name", "time"],
        ["class", "name"],
        ["type"],
    ]
    for name, form in secret_forms(password).items():
        assert form.encode() not in out.getvalue(), name
