"""S3 and SNS calls of the report processor shell. Everything that talks to AWS lives here
(and in history/s3.py, the history's store)."""

from __future__ import annotations

import json
from typing import IO, Any, BinaryIO

import boto3
from botocore.exceptions import ClientError

from report_processor.process import ObjectTooLarge

_MISSING = {"NoSuchKey", "404", "NotFound"}
# 412: the object changed (or exists); 409: another writer is writing it right now. Not ours.
_ALREADY_CLAIMED = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}

__all__ = ["ObjectTooLarge", "ResultsBucket", "SnsNotifier"]


class SnsNotifier:
    """Publishes a run's notification to the topic in NOTIFICATION_TOPIC_ARN (process.Notifier)."""

    def __init__(self, topic_arn: str, client: Any | None = None) -> None:
        self.topic_arn = topic_arn
        self._sns = client or boto3.client("sns")

    def publish(self, subject: str, body: str, attributes: dict[str, dict[str, str]]) -> None:
        self._sns.publish(
            TopicArn=self.topic_arn, Subject=subject, Message=body, MessageAttributes=attributes
        )


class ResultsBucket:
    """Reads run artifacts and writes reports in one bucket (implements process.Storage)."""

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self._s3 = client or boto3.client("s3")

    def open_object(self, key: str, version_id: str | None, max_bytes: int) -> BinaryIO | None:
        """A streaming body (never read whole here), or None when the object is gone."""
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            request["VersionId"] = version_id
        try:
            response = self._s3.get_object(**request)
        except ClientError as error:
            if _code(error) in _MISSING or _code(error) == "NoSuchVersion":
                return None
            raise
        size = response.get("ContentLength")
        if size is not None and size > max_bytes:
            response["Body"].close()
            raise ObjectTooLarge(
                f"s3://{self.bucket}/{key} is {size} bytes, over the {max_bytes} byte limit "
                "(REPORT_MAX_OBJECT_BYTES)"
            )
        body: BinaryIO = response["Body"]
        return body

    def read_json(self, key: str, max_bytes: int) -> Any | None:
        """A small JSON object, or None when it is missing, too large or not JSON."""
        return self.read_json_with_etag(key, max_bytes)[0]

    def read_json_with_etag(self, key: str, max_bytes: int) -> tuple[Any | None, str | None]:
        """(JSON or None when too large / not JSON, ETag or None when the object is missing)."""
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return None, None
            raise
        etag = str(response.get("ETag") or "") or None
        body = response["Body"]
        try:
            raw = body.read(max_bytes + 1)
        finally:
            body.close()
        if len(raw) > max_bytes:
            return None, etag
        try:
            return json.loads(raw), etag
        except (ValueError, UnicodeDecodeError):
            return None, etag

    def etag(self, key: str) -> str | None:
        try:
            response = self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise
        return str(response.get("ETag") or "") or None

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return False
            raise
        return True

    def put_text(self, key: str, text: str, content_type: str) -> None:
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=text.encode("utf-8"),
            ContentType=f"{content_type}; charset=utf-8",
        )

    def put_file(self, key: str, body: IO[bytes], content_type: str) -> None:
        """Stream a file to `key` (multipart when large): the merged junit.xml never sits in
        memory whole."""
        self._s3.upload_fileobj(body, self.bucket, key, ExtraArgs={"ContentType": content_type})

    def put_text_if(self, key: str, text: str, content_type: str, etag: str | None) -> bool:
        """Write only if `key` still has `etag` (If-Match), or is still absent when etag is None
        (If-None-Match: *); False when another writer got there first."""
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=text.encode("utf-8"),
                ContentType=f"{content_type}; charset=utf-8",
                **condition,
            )
        except ClientError as error:
            # If-Match on an object deleted meanwhile answers 404: it changed, too.
            if _code(error) in _ALREADY_CLAIMED or _code(error) in _MISSING:
                return False
            raise
        return True

    def claim(self, key: str, body: str) -> bool:
        """Create `key` only if absent (S3 conditional write); False when it already exists."""
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body.encode("utf-8"),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as error:
            if _code(error) in _ALREADY_CLAIMED:
                return False
            raise
        return True


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
