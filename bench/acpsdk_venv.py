"""The virtualenv that hosts the official acp-sdk server, made on first use.

acp-sdk 1.0.3's server module fails to import with uvicorn >= 0.36, so it cannot share the project's
environment: it gets its own, with the versions pinned below (plus uvloop and httptools, so that it
runs on the same uvicorn stack as the other deployments). A marker file records a finished install,
so that an interrupted one is redone rather than half used.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

__all__ = ["PACKAGES", "VENV_DIR", "ensure_venv", "versions"]

VENV_DIR = Path(__file__).resolve().parent / ".venv-acpsdk"
PACKAGES = ("acp-sdk==1.0.3", "uvicorn<0.36", "uvloop", "httptools")
_MARKER = VENV_DIR / "bench-ready.txt"
_INSTALL_TIMEOUT = 900.0


def ensure_venv() -> Path:
    """Create the virtualenv if it is missing or incomplete; give its Python."""
    python = VENV_DIR / "bin" / "python"
    wanted = "\n".join(PACKAGES)
    if _MARKER.exists() and _MARKER.read_text() == wanted and python.exists():
        return python
    print(f"bench: creating {VENV_DIR} with {', '.join(PACKAGES)} (first use only)", file=sys.stderr)
    venv.EnvBuilder(with_pip=True, clear=True).create(VENV_DIR)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PACKAGES],
        check=True,
        timeout=_INSTALL_TIMEOUT,
    )
    subprocess.run([str(python), "-c", "import acp_sdk.server.app"], check=True, timeout=120)
    _MARKER.write_text(wanted)
    return python


def versions() -> str:
    """The versions of the venv's server stack, for the report."""
    probe = (
        "from importlib.metadata import version as v; "
        "print(', '.join(f'{d} {v(d)}' for d in ('acp-sdk', 'fastapi', 'starlette', 'uvicorn', 'pydantic')))"
    )
    python = VENV_DIR / "bin" / "python"
    return subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, timeout=60
    ).stdout.strip()


if __name__ == "__main__":
    print(ensure_venv())
