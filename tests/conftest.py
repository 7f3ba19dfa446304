"""Session-wide services shared by every part's tests: a moto server and a PostgreSQL cluster.

Started lazily, once per session, and only when a test asks for them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.services import MotoServer, PostgresServer

REPO_ROOT = Path(__file__).resolve().parent.parent
JUNIT_SAMPLES = REPO_ROOT.parent / "shared" / "junit-samples"


@pytest.fixture(scope="session")
def moto_server():
    with MotoServer.start() as server:
        yield server


@pytest.fixture(scope="session")
def postgres():
    with PostgresServer.start() as server:
        yield server
