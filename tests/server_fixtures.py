"""Start a local HTTP server (``mlflow ui``, ``mlflow models serve``) on loopback for a test, and stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def loopback_server(args: list[str], port: int, ready_path: str, log_path: Path, env: dict | None = None):
    """Run ``args`` (which must listen on 127.0.0.1:``port``) in its own process group; yield the base URL
    once ``ready_path`` answers; stop the group afterwards."""
    log = open(log_path, "w")
    # the interpreter's own bin folder first: mlflow starts helpers (uvicorn) by name, even from an unactivated venv
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    server = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                              env={**os.environ, "PATH": path, "OMP_NUM_THREADS": "1", **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if server.poll() is not None:
                pytest.fail(f"{' '.join(args[:4])} exited: {log_path.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(base + ready_path, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"{' '.join(args[:4])} did not answer {ready_path} in 2 minutes")
        yield base
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        except ProcessLookupError:  # the server had already exited (its log is in the failure above)
            pass
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
