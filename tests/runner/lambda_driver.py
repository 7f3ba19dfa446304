"""Calls the Lambda handler in this process as the Python runtime would, and prints the
response as JSON on the last line: `python -m tests.runner.lambda_driver EVENT TIMEOUT`.

It runs as a separate process so that it can run as another user (tests/runner/unprivileged.py).
"""

from __future__ import annotations

import json
import sys
import time


class Context:
    def __init__(self, timeout_seconds: float):
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def main() -> None:
    from runner.handler import handler

    event, timeout = json.loads(sys.argv[1]), float(sys.argv[2])
    response = handler(event, Context(timeout))
    sys.stdout.write("\n" + json.dumps(response) + "\n")


if __name__ == "__main__":
    main()
