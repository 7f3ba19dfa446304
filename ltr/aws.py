"""The thin AWS shell of `ltr`: every boto3 call lives here, and every AWS failure leaves as an
LtrError carrying one line that names the resource and the fix."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from runner.layout import MANIFEST, RunLocation, day_prefix, parse_result_key

from ltr.core import (
    DocsObject,
    LtrError,
    Observation,
    RunRecord,
    RunRequest,
    endpoint_problem,
    run_record,
    unreadable_record,
)

if TYPE_CHECKING:
    from report_processor.history.storage import HistoryStore

MAX_JSON_BYTES = 1 << 20  # manifests and summaries are small; never read a huge object whole
MAX_MARKDOWN_BYTES = 1 << 20

_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}
_CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
}
# A 403 without a body (every HEAD, and S3 refusing a signature it cannot check) arrives as the
# bare status: botocore names the code "403" and the message "Forbidden".
_BARE_FORBIDDEN_CODES = {"403", "Forbidden"}
CHECK_CREDENTIALS = (
    "check the credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and an "
    "unexpired AWS_SESSION_TOKEN) and that they belong to the account the stack is deployed in"
)


class UnreadableObject(LtrError):
    """An object exists but its content is not what ltr expects (not JSON, too large, a web
    page instead of the object)."""


def endpoint_description() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or "AWS"


def check_endpoints(service: str, environ: Mapping[str, str] | None = None) -> None:
    """The endpoint overrides botocore would use for `service`, checked before it sees them."""
    environ = os.environ if environ is None else environ
    specific = f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"
    for name in ("AWS_ENDPOINT_URL", specific):
        value = environ.get(name)
        if value:
            problem = endpoint_problem(name, value)
            if problem:
                raise LtrError(problem)


@contextlib.contextmanager
def aws_errors(action: str, resource: str, missing_hint: str = "") -> Iterator[None]:
    """Turn whatever boto3 raises into one line: what we tried, on what, and what to do."""
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise LtrError(
            f"cannot {action}: no AWS credentials found; set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (for the emulator any non-empty values do)"
        ) from None
    except NoRegionError:
        raise LtrError(f"cannot {action}: no AWS region; set AWS_REGION") from None
    except (EndpointConnectionError, ConnectTimeoutError) as error:
        raise LtrError(
            f"cannot {action}: endpoint unreachable ({error}); check AWS_ENDPOINT_URL "
            "or your network"
        ) from None
    except ReadTimeoutError as error:
        raise LtrError(f"cannot {action}: {endpoint_description()} timed out ({error})") from None
    except ClientError as error:
        raise _client_error(error, action, resource, missing_hint) from None
    except BotoCoreError as error:
        raise LtrError(f"cannot {action}: {error}") from None


def _client_error(error: ClientError, action: str, resource: str, missing_hint: str) -> LtrError:
    details = error.response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    message = str(details.get("Message", "")).splitlines()[0:1]
    said = f"{code}: {message[0]}" if message and message[0] else code
    if _is_web_page(error.response):
        # botocore turns a 200 whose body does not parse into a retried 500: the endpoint is a
        # web server (a proxy, a wrong port), not the AWS service.
        return LtrError(
            f"cannot {action}: {endpoint_description()} answered with a web page (text/html), "
            f"not like the AWS service ({said}); check AWS_ENDPOINT_URL"
        )
    if code in ("ResourceNotFoundException", "NoSuchBucket") or code in _NOT_FOUND_CODES:
        return LtrError(f"cannot {action}: {resource} not found ({said}){missing_hint}")
    if code in _CREDENTIAL_CODES:
        return LtrError(f"cannot {action}: AWS rejected the credentials ({said}); refresh them")
    if code in _BARE_FORBIDDEN_CODES:
        return LtrError(
            f"cannot {action} on {resource}: {endpoint_description()} answered 403 Forbidden "
            f"without saying why; {CHECK_CREDENTIALS}"
        )
    if "AccessDenied" in code:
        return LtrError(f"cannot {action} on {resource}: access denied ({said})")
    return LtrError(f"cannot {action} on {resource}: {said}")


@contextlib.contextmanager
def history_errors(action: str, resource: str) -> Iterator[None]:
    """aws_errors plus what the history library raises: one line each, never a traceback."""
    from report_processor.history.keys import HistoryKeyError
    from report_processor.history.quarantine import QuarantineError
    from report_processor.history.queries import HistoryQueryError
    from report_processor.history.storage import ConflictError, ObjectTooLarge

    with aws_errors(action, resource):
        try:
            yield
        except ObjectTooLarge as error:
            raise UnreadableObject(f"cannot {action}: {error}; not reading it") from None
        except ConflictError:
            raise LtrError(
                f"cannot {action}: {resource} changed under us 10 times in a row (someone else "
                "is writing it); try again"
            ) from None
        except (QuarantineError, HistoryQueryError, HistoryKeyError) as error:
            raise LtrError(str(error)) from None


def _client(service: str, region: str, **config: Any) -> Any:
    check_endpoints(service)
    settings = Config(connect_timeout=5, read_timeout=30, **config)
    with aws_errors(f"create a {service} client", region):
        try:
            # A session of our own: the default one caches credentials for the whole process.
            return boto3.session.Session().client(service, region_name=region, config=settings)
        except ValueError as error:  # an endpoint botocore refuses in a way we did not foresee
            raise LtrError(f"cannot create a {service} client: {error}") from None


@dataclass
class Runner:
    """The deployed runner function."""

    function_name: str
    region: str

    _hint = ": deploy the stack (`cdktf deploy`) or pick the right --env"

    @property
    def _what(self) -> str:
        return f"Lambda function {self.function_name!r} in {self.region}"

    def timeout_seconds(self) -> int:
        """The deployed timeout; asking first also turns a missing function into a clear error
        before anything starts."""
        client = _client("lambda", self.region)
        with aws_errors("find the runner", self._what, self._hint):
            config = client.get_function_configuration(FunctionName=self.function_name)
        state = config.get("State", "Active")
        if state not in ("Active", "Pending"):
            reason = config.get("StateReason") or "no reason given"
            raise LtrError(f"{self._what} is {state} ({reason}); fix the deployment first")
        return int(config.get("Timeout", 900))

    def invoke_async(self, request: RunRequest) -> int:
        # No retries for an asynchronous invoke: a retried request whose first attempt did reach
        # Lambda would start the run twice.
        client = _client(
            "lambda", self.region, retries={"total_max_attempts": 1, "mode": "standard"}
        )
        with aws_errors("start the run", self._what, self._hint):
            response = client.invoke(
                FunctionName=self.function_name,
                InvocationType="Event",
                Payload=json.dumps(request.event()).encode(),
            )
        status = response.get("StatusCode")
        if status != 202:
            raise LtrError(
                f"Lambda did not accept the run for {self.function_name!r}: HTTP {status} "
                f"(expected 202 for an asynchronous invocation)"
            )
        return 202


@dataclass
class ShardedRuns:
    """The deployed sharded-run state machine (issue 13). ltr needs states:StartExecution on
    it, and states:DescribeExecution + states:GetExecutionHistory on its executions for --wait."""

    state_machine: str  # its name; the ARN is built from the caller's account
    region: str
    partition: str = "aws"

    _hint = ": deploy the stack (`cdktf deploy`) or pick the right --env"

    def arn(self) -> str:
        sts = _client("sts", self.region)
        with aws_errors("find the account", f"STS in {self.region}"):
            account = sts.get_caller_identity()["Account"]
        return (
            f"arn:{self.partition}:states:{self.region}:{account}:stateMachine:{self.state_machine}"
        )

    def start(self, machine_arn: str, run_id: str, execution_input: dict[str, Any]) -> str:
        # Not retried: the execution name (the run id) makes a second start fail, not run twice.
        client = _client("stepfunctions", self.region, retries={"total_max_attempts": 1})
        with aws_errors(
            "start the sharded run", f"state machine {self.state_machine!r}", self._hint
        ):
            response = client.start_execution(
                stateMachineArn=machine_arn, name=run_id, input=json.dumps(execution_input)
            )
        return str(response["executionArn"])

    def observe(self, execution_arn: str) -> tuple[str, list[dict[str, Any]]]:
        """(the execution's status, its history oldest first)."""
        client = _client("stepfunctions", self.region, retries={"max_attempts": 3})
        with aws_errors("follow the sharded run", execution_arn):
            status = str(client.describe_execution(executionArn=execution_arn)["status"])
            events: list[dict[str, Any]] = []
            params: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
            while True:
                page = client.get_execution_history(**params)
                events.extend(page.get("events", []))
                if not page.get("nextToken") or len(events) >= 20_000:
                    break
                params["nextToken"] = page["nextToken"]
        return status, events


@dataclass
class ResultsReader:
    """The results bucket, read-only from ltr's side."""

    name: str
    region: str

    def __post_init__(self) -> None:
        # SigV4 presigned links: SigV2 links are refused by buckets created since mid-2020.
        self._s3 = _client(
            "s3",
            self.region,
            retries={"max_attempts": 3, "mode": "standard"},
            signature_version="s3v4",
        )

    @property
    def _what(self) -> str:
        return f"bucket {self.name!r} in {self.region}"

    _hint = ": deploy the stack (`cdktf deploy`) or pick the right --env"

    def uri(self, key: str = "") -> str:
        return f"s3://{self.name}/{key}"

    def history_store(self) -> HistoryStore:
        """The run history in this bucket (report_processor/history/), through ltr's client:
        the same endpoint checks, retries and timeouts. Wrap its use in history_errors."""
        from report_processor.history.s3 import S3HistoryStore

        return S3HistoryStore(self.name, self._s3)

    def check_exists(self) -> None:
        with aws_errors("read the results", self._what, self._hint):
            self._s3.head_bucket(Bucket=self.name)

    def _pages(self, **params: str) -> Iterator[dict[str, Any]]:
        """ListObjectsV2 pages, each checked to be S3's answer: an endpoint that serves a web page
        (a proxy, a wrong port) parses as an empty listing, which would read as "no runs yet"."""
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.name, **params):
            if page.get("Name") != self.name:
                content_type = _content_type(page) or "no content type"
                raise LtrError(
                    f"cannot list results: {endpoint_description()} did not answer like S3 "
                    f"for {self._what} (a {content_type} response without a bucket listing); "
                    "check AWS_ENDPOINT_URL"
                )
            yield page

    def common_prefixes(self, prefix: str) -> list[str]:
        found: list[str] = []
        with aws_errors("list results", self._what, self._hint):
            for page in self._pages(Prefix=prefix, Delimiter="/"):
                found.extend(item["Prefix"] for item in page.get("CommonPrefixes", []))
        return found

    def list_objects(self, prefix: str, limit: int | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        with aws_errors("list results", self._what, self._hint):
            for page in self._pages(Prefix=prefix):
                found.extend(page.get("Contents", []))
                if limit is not None and len(found) >= limit:
                    return found[:limit]
        return found

    def read_bytes(self, key: str, max_bytes: int) -> bytes | None:
        """The object's bytes, or None when it does not exist; refuses oversized objects and
        web pages served in its place."""
        with aws_errors("read results", f"{self.uri(key)}", self._hint):
            try:
                response = self._s3.get_object(Bucket=self.name, Key=key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in _NOT_FOUND_CODES:
                    return None
                raise
            body = response["Body"]
            if response.get("ContentLength", 0) > max_bytes:
                body.close()
                raise UnreadableObject(
                    f"{self.uri(key)} is larger than {max_bytes} bytes; not reading it"
                )
            if str(response.get("ContentType", "")).startswith("text/html"):
                body.close()
                raise UnreadableObject(
                    f"{endpoint_description()} answered {self.uri(key)} with a web page "
                    "(text/html), not the object; check AWS_ENDPOINT_URL"
                )
            data: bytes = body.read(max_bytes + 1)[:max_bytes]
            return data

    def read_json(self, key: str) -> dict[str, Any] | None:
        raw = self.read_bytes(key, MAX_JSON_BYTES)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UnreadableObject(f"{self.uri(key)} is not valid JSON ({error})") from None
        if not isinstance(value, dict):
            raise UnreadableObject(f"{self.uri(key)} is not a JSON object")
        return value

    def read_text(self, key: str) -> str | None:
        raw = self.read_bytes(key, MAX_MARKDOWN_BYTES)
        return None if raw is None else raw.decode("utf-8", errors="replace")

    def presign(self, key: str, expires_seconds: int) -> str:
        with aws_errors("presign a link", self.uri(key)):
            url: str = self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.name, "Key": key}, ExpiresIn=expires_seconds
            )
            return url

    # ------------------------------------------------------------------ run-shaped reads

    def record(self, location: RunLocation) -> RunRecord | None:
        """The run's record, None before its manifest exists; a manifest or summary that cannot
        be read makes the record say so instead of failing the whole listing."""
        try:
            manifest = self.read_json(location.manifest_key)
        except UnreadableObject as error:
            return unreadable_record(location, str(error))
        if manifest is None:
            return None
        try:
            summary = self.read_json(location.summary_json_key)
        except UnreadableObject as error:
            record = run_record(manifest, location)
            return replace(record, message=f"{error}; {record.message or 'no runner message'}")
        return run_record(manifest, location, summary)

    def observe(self, days: list[str], run_id: str, slug: str) -> Observation:
        """One poll of a run's results: the manifest (any candidate day) and its summary."""
        for day in days:
            location = RunLocation(day, run_id, slug)
            record = self.record(location)
            if record is None:
                continue
            markdown = None
            if record.counts is not None:
                markdown = self.read_text(location.summary_markdown_key)
            return Observation(record, markdown)
        return Observation(None)

    def docs_objects(self, prefix: str) -> list[DocsObject]:
        return [
            DocsObject(item["Key"], int(item.get("Size", 0)), item["LastModified"])
            for item in self.list_objects(prefix, limit=10_000)
        ]

    def manifest_keys(self, day: str) -> list[tuple[RunLocation, datetime]]:
        """(run location, LastModified) of every manifest filed under one day."""
        found = []
        for item in self.list_objects(day_prefix(day)):
            key = parse_result_key(item["Key"])
            if key is not None and key.name == MANIFEST:
                found.append((key.location, item["LastModified"]))
        return found


def _is_web_page(response: Mapping[str, Any]) -> bool:
    """An HTML body (a bodiless answer may carry an HTML content type: moto's does)."""
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    html = (_content_type(response) or "").startswith("text/html")
    return html and headers.get("content-length") != "0"


def _content_type(page: Mapping[str, Any]) -> str | None:
    headers = page.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    value = headers.get("content-type")
    return str(value) if value else None
