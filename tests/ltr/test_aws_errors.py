"""How the shell words AWS failures: one line naming the action, the resource and the fix."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from ltr.aws import aws_errors
from ltr.core import LtrError


def client_error(code: str, message: str = "it went wrong") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Operation")


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (client_error("ResourceNotFoundException"), "cannot act: thing not found"),
        (client_error("NoSuchBucket"), "cannot act: thing not found (NoSuchBucket: it went"),
        (client_error("404", ""), "cannot act: thing not found (404): deploy it"),
        (client_error("AccessDeniedException"), "cannot act on thing: access denied"),
        (client_error("ExpiredToken"), "AWS rejected the credentials (ExpiredToken"),
        (client_error("ThrottlingException", "slow down\nsecond line"), "ThrottlingException"),
        (NoCredentialsError(), "no AWS credentials found"),
        (NoRegionError(), "no AWS region; set AWS_REGION"),
        (EndpointConnectionError(endpoint_url="http://x"), "endpoint unreachable"),
    ],
)
def test_aws_failures_become_one_line(raised, expected):
    with pytest.raises(LtrError) as caught, aws_errors("act", "thing", ": deploy it"):
        raise raised
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert caught.value.__suppress_context__


def test_other_errors_pass_through():
    with pytest.raises(KeyError), aws_errors("act", "thing"):
        raise KeyError("not an AWS problem")
