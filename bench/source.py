"""Which code the adapters run: the working tree as it is, or one commit exported on its own.

Several developers edit the repository at once; ``--ref HEAD`` measures what is committed, unaffected
by work in progress, and ``--ref <commit>`` measures an older state for comparison.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.servers import REPO

__all__ = ["describe", "exported"]

#: What the adapter deployments import (changes elsewhere do not affect the figures).
CODE_PATHS = ("acp_adapters", "example_agents", "example_starlette", "example_flask", "example_django")


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def describe(ref: str | None) -> str:
    """A line for the report: the commit measured, and the uncommitted files when it is the working tree."""
    try:
        if ref is not None:
            return f"commit {_git('rev-parse', '--short', ref)} ({ref})"
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--", *CODE_PATHS).splitlines()
    except (OSError, subprocess.SubprocessError):
        return "working tree (not a git checkout)"
    if not dirty:
        return f"working tree at commit {head}, no uncommitted changes to the code"
    files = ", ".join(line[3:] for line in dirty[:8]) + (", ..." if len(dirty) > 8 else "")
    return f"working tree at commit {head} with uncommitted changes ({files})"


@contextmanager
def exported(ref: str) -> Iterator[Path]:
    """The tree of ``ref`` in a temporary directory (removed afterwards)."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=REPO, capture_output=True, timeout=120
    )
    if archive.returncode != 0:
        raise SystemExit(f"git archive {ref} failed: {archive.stderr.decode(errors='replace').strip()}")
    target = Path(tempfile.mkdtemp(prefix="acp-bench-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(target, filter="data")
        yield target
    finally:
        shutil.rmtree(target, ignore_errors=True)
