"""The run's folder, reached only through a descriptor the runner holds.

The code a run executes can write anywhere in this folder (it knows where: its TMPDIR and
APP_BASE_PATH are inside), so a path in it is a claim, not a fact. Everything the runner
reads back is opened relative to the folder's descriptor, one component at a time, never
following a link, and must be a regular file; what the runner writes it creates exclusively.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import tempfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

RUN_PREFIX = "ltr-run-"
KEPT_PREFIX = "ltr-kept-"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted under a report's name must not hang the runner on open.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeFile(OSError):
    """A file of the run is not a regular file inside the run's folder."""


class RunDir:
    """A fresh folder under the work root, locked for as long as the run holds it (so that
    the clean-up of another invocation leaves it alone)."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, _DIR_FLAGS)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    @classmethod
    def create(cls, work_root: Path, name: str) -> RunDir:
        work_root.mkdir(parents=True, exist_ok=True)
        return cls(Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{name}-", dir=work_root)))

    def open_regular(self, relative: str) -> BinaryIO:
        """Open `relative` for reading. FileNotFoundError when it is not there; UnsafeFile
        unless every folder on the way is a real folder and the file a regular one."""
        parts = PurePosixPath(relative).parts
        if not parts or any(part in ("..", "/", ".") for part in parts):
            raise UnsafeFile(f"{relative!r} is not a plain path inside the run's folder")
        folder = self.fd
        opened: list[int] = []
        try:
            for part in parts[:-1]:
                try:
                    folder = os.open(part, _DIR_FLAGS, dir_fd=folder)
                except OSError as error:
                    raise UnsafeFile(
                        f"{relative}: {part!r} is not a folder ({error.strerror})"
                    ) from None
                opened.append(folder)
            try:
                fd = os.open(parts[-1], _READ_FLAGS, dir_fd=folder)
            except FileNotFoundError:
                raise
            except OSError as error:
                raise UnsafeFile(
                    f"{relative} cannot be opened without following links ({error.strerror})"
                ) from None
        finally:
            for descriptor in opened:
                os.close(descriptor)
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise UnsafeFile(f"{relative} is not a regular file ({_kind(mode)})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def create_file(self, name: str) -> BinaryIO:
        """A new file directly in the folder; whatever stood under that name goes first (the
        run's code may have put a link or a folder there)."""
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            shutil.rmtree(name, dir_fd=self.fd)
        return os.fdopen(os.open(name, _CREATE_FLAGS, 0o600, dir_fd=self.fd), "w+b")

    def scratch(self) -> BinaryIO:
        """An unnamed file: nothing can reach it by path."""
        return tempfile.TemporaryFile(dir=self.path)

    def keep(self) -> Path:
        """Rename to the kept prefix, which the clean-up of later invocations leaves alone."""
        kept = self.path.with_name(KEPT_PREFIX + self.path.name.removeprefix(RUN_PREFIX))
        os.rename(self.path, kept)
        self.path = kept
        return kept

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def close(self) -> None:
        os.close(self.fd)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    return "a special file"


def remove_stale(work_root: Path) -> list[str]:
    """Remove the run folders earlier invocations left behind (a run stopped by the platform
    never cleaned up; what it left could be rewritten by a process of that run). A folder some
    other runner still holds (locked) stays. Returns the names removed."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(work_root))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not entry.name.startswith(RUN_PREFIX):
            continue
        if entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
            removed.append(entry.name)
            continue
        try:
            fd = os.open(entry.path, _DIR_FLAGS)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a live run of another runner process
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
        finally:
            os.close(fd)
    return removed
