"""S3 shell of the history: `HistoryStore` on one bucket with boto3 (the only AWS code here).

Conditional writes use S3's `If-Match` (ETag) and `If-None-Match: *` on PutObject, which S3 has
supported since 2024 (botocore >= 1.35.x); a lost race comes back as 412 PreconditionFailed or,
while another conditional write to the same key is in flight, 409 ConditionalRequestConflict:
both become `PreconditionFailed`, and `storage.update_json` reads again and retries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from report_processor.history.storage import Blob, ObjectTooLarge, PreconditionFailed

_MISSING = {"NoSuchKey", "404", "NotFound"}
# One part in memory at a time (threads would buffer up to 10 parts of 8 MiB each).
_TRANSFER = TransferConfig(use_threads=False, multipart_chunksize=8 << 20)
_LOST_RACE = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


class S3HistoryStore:
    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self._s3 = client or boto3.client("s3")

    def get(self, key: str, max_bytes: int) -> Blob | None:
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise
        body = response["Body"]
        try:
            size = response.get("ContentLength")
            if size is not None and size > max_bytes:
                raise ObjectTooLarge(f"s3://{self.bucket}/{key} is {size} bytes, over {max_bytes}")
            data = body.read(max_bytes + 1)
        finally:
            body.close()
        if len(data) > max_bytes:
            raise ObjectTooLarge(f"s3://{self.bucket}/{key} is over {max_bytes} bytes")
        return Blob(data, str(response.get("ETag", "")))

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        content_type: str = "application/octet-stream",
    ) -> str:
        request: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": data,
            "ContentType": content_type,
        }
        if if_match is not None:
            request["IfMatch"] = if_match
        if if_none_match:
            request["IfNoneMatch"] = "*"
        try:
            response = self._s3.put_object(**request)
        except ClientError as error:
            # If-Match on a key deleted meanwhile answers 404: the race was lost all the same.
            if _code(error) in _LOST_RACE or (if_match is not None and _code(error) in _MISSING):
                raise PreconditionFailed(f"s3://{self.bucket}/{key}: {_code(error)}") from None
            raise
        return str(response.get("ETag", ""))

    def open(self, key: str) -> IO[bytes] | None:
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise
        body: IO[bytes] = response["Body"]
        return body

    def put_stream(self, key: str, stream: IO[bytes], content_type: str) -> None:
        # Multipart above 8 MiB, in 8 MiB parts: memory stays bounded whatever the rows' size.
        # s3transfer closes the file object it is given; the caller still needs it (names).
        self._s3.upload_fileobj(
            _KeepOpen(stream),
            self.bucket,
            key,
            ExtraArgs={"ContentType": content_type},
            Config=_TRANSFER,
        )

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=key)


class _KeepOpen:
    """A file object whose close() is left to its owner."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def close(self) -> None:
        pass


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
