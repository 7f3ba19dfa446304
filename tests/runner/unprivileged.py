"""Running the runner as Lambda runs it: an unprivileged user, real PHP, a fresh work root.

As root every /proc/<pid>/environ is readable whatever a process does, so the runner's security
tests only mean something when the runner and its children run as another user: `nobody`
(through setpriv) when the suite runs as root, the current user otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.runner.conftest import FIXTURE_APP, REPO_ROOT, RUNNER_IMAGE

# Recognisable stand-ins for what Lambda and Fargate put into the runner's environment.
CANARIES = {
    "AWS_ACCESS_KEY_ID": "AKIACANARY7Q2X4KEYID",
    "AWS_SECRET_ACCESS_KEY": "canarySecretAccessKey/9f3b+Zq0x1y2w3v4u5t6",
    "AWS_SESSION_TOKEN": "canarySessionToken-IQoJb3JpZ2luX2VjEKr-0a9b8c7d",
    "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9777",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/canary-relative-5e1f",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/canary-full-77aa",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN": "canaryContainerAuthToken-31c4",
    "ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/canary-metadata-v4",
    "ECS_CONTAINER_METADATA_URI": "http://169.254.170.2/v3/canary-metadata-v3",
}
LAMBDA_DRIVER = "tests.runner.lambda_driver"


def _as_nobody() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise RuntimeError("running as root without setpriv (util-linux): cannot drop to nobody")
    return [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def _python() -> tuple[list[str], list[str]]:
    """An interpreter `nobody` may execute, and the import path the venv gives this one.

    A venv interpreter under /root (pyenv) is not executable by nobody: then Debian's Python of
    the same version runs with the venv's site-packages, and without its own (-S), whose
    dist-packages carry versions that clash with the venv's."""
    site = sysconfig.get_paths()["purelib"]
    executable = os.path.realpath(sys.executable)
    if os.geteuid() == 0 and executable.startswith("/root/"):
        system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
        if not os.access(system, os.X_OK):
            raise RuntimeError(f"{system} is needed to run the runner as nobody")
        return [system, "-S"], [site]
    return [sys.executable], []


def _readable_by_others(path: Path) -> bool:
    """Whether a user other than the owner can reach `path` (o+x on every folder above it,
    o+r on it)."""
    path = path.resolve()
    for folder in path.parents:
        if not folder.stat().st_mode & 0o001:
            return False
    return bool(path.stat().st_mode & 0o004)


def unreadable_for_nobody() -> list[str]:
    """What `nobody` would need but cannot read (empty when not running as root)."""
    if os.geteuid() != 0:
        return []
    needed = [REPO_ROOT, RUNNER_IMAGE, FIXTURE_APP, Path(sysconfig.get_paths()["purelib"])]
    return [str(path) for path in needed if not _readable_by_others(path)]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    response: dict = field(default_factory=dict)

    @property
    def logs(self) -> str:
        return self.stdout + self.stderr


@dataclass
class UnprivilegedRunner:
    """Runs the runner (Lambda handler or `python -m runner run`) as an unprivileged user."""

    env: dict[str, str]
    work_root: Path

    @classmethod
    def create(cls, moto_server, bucket: str) -> UnprivilegedRunner:
        work_root = Path(tempfile.mkdtemp(prefix="ltr-sec-"))
        work_root.chmod(0o1777)  # nobody writes its run folders here
        python, site = _python()
        env = {
            "PATH": os.environ["PATH"],
            "LANG": "C.UTF-8",
            "HOME": str(work_root),
            "PYTHONPATH": os.pathsep.join([*site, str(REPO_ROOT), str(RUNNER_IMAGE)]),
            "PYTHONDONTWRITEBYTECODE": "1",
            **moto_server.env,
            **CANARIES,
            "RESULTS_BUCKET": bucket,
            "RUNNER_APP_DIR": str(FIXTURE_APP),
            "TMPDIR": str(work_root),
            "IMAGE_VERSION": "hostile",
        }
        runner = cls(env, work_root)
        runner._python = python
        return runner

    def close(self) -> None:
        shutil.rmtree(self.work_root, ignore_errors=True)

    def lambda_handler(self, event: dict, timeout: float = 120, **env: str) -> Result:
        argv = [*self._python, "-m", LAMBDA_DRIVER, json.dumps(event), str(timeout)]
        return self._run(argv, env, timeout + 60)

    def cli(self, *args: str, pid_namespace: bool = False, timeout: float = 180, **env) -> Result:
        argv = [*self._python, "-m", "runner", "run", "--json", *args]
        prefix = ["unshare", "--pid", "--fork", "--mount-proc"] if pid_namespace else []
        return self._run(argv, env, timeout, prefix)

    def start_cli(self, *args: str, pid_namespace: bool = False, **env: str) -> subprocess.Popen:
        """`python -m runner run` started, not waited for (text stdout, stderr merged)."""
        argv = [*self._python, "-m", "runner", "run", "--json", *args]
        prefix = ["unshare", "--pid", "--fork", "--mount-proc"] if pid_namespace else []
        return subprocess.Popen(
            [*prefix, *_as_nobody(), *argv],
            env={**self.env, **env},
            cwd=self.work_root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def _run(self, argv, env, timeout, prefix=()) -> Result:
        completed = subprocess.run(
            [*prefix, *_as_nobody(), *argv],
            env={**self.env, **env},
            cwd=self.work_root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        result = Result(completed.returncode, completed.stdout, completed.stderr)
        lines = completed.stdout.strip().splitlines()
        if lines:
            with contextlib.suppress(ValueError):
                result.response = json.loads(lines[-1])
        return result
