"""`ltr` facing a hostile or broken bucket or endpoint (issue 10): a clear line instead of a
traceback, one bad object never hides the others, and nothing from S3 reaches the terminal raw.

Against the moto server where it can play the part; an endpoint that answers 200 with a web page
is a small local HTTP server, since no AWS emulator does that."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ltr.helpers import assert_one_line_error, other_env_config, run_ltr

DAY = "2026-01-02"


def own_bucket(ltr_stack, tmp_path: Path, environment: str) -> tuple[Path, str, object]:
    """A config of its own (so its bucket is too), and that bucket created in the emulator."""
    path = other_env_config(tmp_path, environment)
    bucket = f"ltr-{environment}-test-results"
    s3 = ltr_stack.emulator.client("s3")
    s3.create_bucket(Bucket=bucket)
    return path, bucket, s3


def manifest(run_id: str, command: str = "test", **fields: object) -> bytes:
    value = {
        "run_id": run_id,
        "command": command,
        "status": "passed",
        "exit_code": 0,
        "started_at": f"{DAY}T02:00:00.000Z",
        "duration_seconds": 1.5,
        "artifacts": [],
        **fields,
    }
    return json.dumps(value).encode()


# --------------------------------------------------------------------------- endpoint


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AWS_ENDPOINT_URL", "localhost:4566"),
        ("AWS_ENDPOINT_URL", "http://exa mple"),
        ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:notaport"),
        ("AWS_ENDPOINT_URL_LAMBDA", "127.0.0.1"),
    ],
)
def test_an_endpoint_that_is_not_a_url_is_one_clear_line(aws_env, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    argv = ("run", "test") if name.endswith("LAMBDA") else ("runs",)
    code, out, err = run_ltr(*argv)
    assert_one_line_error(code, err, f"{name}=", "use http(s)://host[:port]", f"unset {name}")
    assert out == ""


# --------------------------------------------------------------------------- bad objects


@pytest.fixture
def hostile_bucket(aws_env, ltr_stack, tmp_path) -> Iterator[tuple[Path, str]]:
    config, bucket, s3 = own_bucket(ltr_stack, tmp_path, "hostile")
    objects = {
        f"runs/{DAY}/r-good/test/manifest.json": manifest("r-good"),
        f"runs/{DAY}/r-corrupt/test/manifest.json": b'{"run_id": "r-corrupt", "status": "pas',
        f"runs/{DAY}/r-list/test/manifest.json": b"[1, 2, 3]",
        f"runs/{DAY}/r-binary/test/manifest.json": b"\xff\xfe\x00garbage",
        f"runs/{DAY}/r-hostile/test/manifest.json": manifest(
            "r-hostile",
            command="test\n\x1b[2J\x1b[Hfake  passed",
            status="failed\r\x1b[32mpassed",
            message="\x1b]0;pwned\x07boom",
            artifacts=[f"runs/{DAY}/r-hostile/test/junit.xml"],
        ),
        f"reports/{DAY}/r-hostile/test/summary.md": (
            "# Test report\n\n\x1b[2J\x1b]52;c;cm0gLXJmIC8=\x07 \x9b31m red \u202etxt.exe\n"
        ).encode(),
        f"reports/{DAY}/r-hostile/test/summary.json": json.dumps(
            {
                "status": "failed",
                "totals": {"tests": 1, "passed": 0, "failed": 1, "errors": 0, "skipped": 0},
                "pass_rate": 0.0,
                "failures": [{"name": "t\x1b[8m", "message": "\x9b2J\u202e"}],
            },
            ensure_ascii=False,
        ).encode(),
    }
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    yield config, bucket


def test_corrupt_manifests_are_listed_as_unreadable_and_the_others_still_show(hostile_bucket):
    config, _ = hostile_bucket
    code, out, err = run_ltr("runs", "--config", str(config))
    assert code == 0, err
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert set(rows) == {"r-good", "r-corrupt", "r-list", "r-binary", "r-hostile"}
    for run_id in ("r-corrupt", "r-list", "r-binary"):
        assert rows[run_id][1:3] == ["test", "unreadable"], rows[run_id]
    assert rows["r-good"][1:3] == ["test", "passed"]


def test_nothing_from_s3_reaches_the_terminal_raw(hostile_bucket):
    config, _ = hostile_bucket
    code, out, err = run_ltr("runs", "--config", str(config))
    assert code == 0, err
    assert len(out.splitlines()) == 2 + 5  # header, separator, one line per run
    for text in (out, err):
        assert not any(ord(c) < 0x20 and c != "\n" or 0x7F <= ord(c) <= 0x9F for c in text)
    assert "\\u001b[2J" in out  # shown, not obeyed
    code, out, err = run_ltr("report", "r-hostile", "--config", str(config))
    assert code == 0, err
    assert "\x1b" not in out and "\x9b" not in out and "\u202e" not in out
    assert "\\u001b]52;c;cm0gLXJmIC8=\\u0007" in out and out.startswith("# Test report\n\n")
    code, out, err = run_ltr("report", "r-hostile", "--format", "json", "--config", str(config))
    assert code == 0, err
    assert "\x9b" not in out and "\u202e" not in out
    assert json.loads(out)["failures"][0] == {"name": "t\x1b[8m", "message": "\x9b2J\u202e"}


# --------------------------------------------------------------------------- forbidden, web pages


def test_a_bodiless_403_says_to_check_the_credentials(aws_env, ltr_stack, tmp_path):
    """moto enforces a bucket policy on GetObject, and answers the refusal without a body,
    as S3 does for a HEAD request or a signature it cannot check."""
    config, bucket, s3 = own_bucket(ltr_stack, tmp_path, "forbidden")
    s3.put_object(Bucket=bucket, Key=f"runs/{DAY}/r1/test/manifest.json", Body=manifest("r1"))
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny))
    code, _, err = run_ltr("runs", "--config", str(config))
    assert_one_line_error(
        code, err, "403 Forbidden without saying why", "check the credentials", "AWS_PROFILE"
    )


PAGES = {
    # botocore reads this one as an empty listing...
    "bare": b"<html><body><h1>Welcome to nginx!</h1></body></html>",
    # ...and turns this one (unparseable as XML) into a retried 500.
    "doctype": b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>",
}


class _WebPage(http.server.BaseHTTPRequestHandler):
    """A proxy's or a wrong port's welcome page, whatever is asked."""

    body = PAGES["bare"]

    def _page(self) -> None:
        body = self.body
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = _page

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=sorted(PAGES))
def web_page_endpoint(request, aws_env, monkeypatch) -> Iterator[str]:
    handler = type("Page", (_WebPage,), {"body": PAGES[request.param]})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()


def test_an_endpoint_answering_with_a_web_page_is_an_error_not_no_runs(web_page_endpoint):
    code, out, err = run_ltr("runs")
    assert_one_line_error(code, err, "text/html", "check AWS_ENDPOINT_URL")
    assert "no runs yet" not in out + err
    code, _, err = run_ltr("report", "latest")
    assert_one_line_error(code, err, "web page (text/html)", "check AWS_ENDPOINT_URL")
