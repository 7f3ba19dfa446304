"""The AWS side of the runner: Secrets Manager (cached across warm invocations) and S3.

Endpoints come from the standard AWS_ENDPOINT_URL, which boto3 honours, so the same code
runs against AWS and against an emulator.
"""

from __future__ import annotations

import threading
import time
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .database import DatabaseSecret, SecretUnavailable, parse_db_secret
from .execution import StoreError

_CLIENT_CONFIG = Config(
    connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 4}
)
_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client(service: str) -> Any:
    """One client per service for the life of the execution environment (warm reuse)."""
    with _lock:
        if service not in _clients:
            _clients[service] = boto3.client(service, config=_CLIENT_CONFIG)
        return _clients[service]


def reset_clients() -> None:
    """Forget cached clients and secrets (tests point the environment at a new endpoint)."""
    with _lock:
        _clients.clear()
    SecretsManagerSource.cache.clear()


class SecretsManagerSource:
    """Reads the RDS-shaped secret once per execution environment, then again only after
    `ttl_seconds`, so a rotated password is picked up without a cold start."""

    cache: dict[str, tuple[float, DatabaseSecret]] = {}

    def __init__(self, ttl_seconds: float = 900.0):
        self.ttl_seconds = ttl_seconds

    def database_secret(self, arn: str) -> DatabaseSecret:
        cached = self.cache.get(arn)
        if cached and time.monotonic() - cached[0] < self.ttl_seconds:
            return cached[1]
        try:
            response = client("secretsmanager").get_secret_value(SecretId=arn)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "ClientError")
            raise SecretUnavailable(
                f"could not read the database secret {arn} ({code}): check DB_SECRET_ARN and "
                "that the runner's role may call secretsmanager:GetSecretValue on it"
            ) from None
        except BotoCoreError as error:
            raise SecretUnavailable(
                f"could not reach Secrets Manager for {arn} ({error}); without a NAT the VPC "
                "needs a secretsmanager interface endpoint"
            ) from None
        secret = parse_db_secret(response.get("SecretString"), arn)
        self.cache[arn] = (time.monotonic(), secret)
        return secret


class S3ResultStore:
    def __init__(self, bucket: str):
        self.bucket = bucket

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def exists(self, key: str) -> bool:
        try:
            client("s3").head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._error("could not check", key, error) from None
        except BotoCoreError as error:
            raise self._error("could not check", key, error) from None
        return True

    def get(self, key: str, max_bytes: int) -> bytes | None:
        """At most `max_bytes` of the object (the caller refuses a longer one), or None."""
        try:
            response = client("s3").get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes=0-{max_bytes - 1}"
            )
            return bytes(response["Body"].read(max_bytes))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            if code == "InvalidRange":  # an empty object has no first byte
                return b""
            raise self._error("could not read", key, error) from None
        except BotoCoreError as error:
            raise self._error("could not read", key, error) from None

    def put(self, key: str, body: BinaryIO, content_type: str) -> None:
        try:
            client("s3").put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type
            )
        except (ClientError, BotoCoreError) as error:
            raise self._error("could not upload", key, error) from None

    def _error(self, action: str, key: str, error: Exception) -> StoreError:
        if isinstance(error, ClientError):
            detail = error.response.get("Error", {}).get("Code", "ClientError")
        else:
            detail = str(error)
        return StoreError(
            f"{action} {self.uri(key)} ({detail}): check RESULTS_BUCKET and the runner's "
            "s3:PutObject permission on it"
        )
