"""Small file systems for tests of failing writes: a full disk, a read-only disk.

A chmod-ed folder does not stop root, so a read-only disk is a tmpfs remounted read-only. Where
mounting is impossible (not root, no mount command, a container that forbids it) a test fails
in CI, where a skip would prove nothing, and elsewhere skips saying why.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "64k", *, read_only: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``path`` (made if missing) for the block; unmounted after.

    ``read_only``: remounted read-only once mounted, so nothing can be written in it.
    """
    path.mkdir(parents=True, exist_ok=True)
    try:
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        reason = f"cannot mount a tmpfs here, which this test needs: {detail.strip()}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        if read_only:
            _mount("-o", "remount,ro", str(path))
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False, capture_output=True)
