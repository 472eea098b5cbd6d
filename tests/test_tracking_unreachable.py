"""A tracking server that does not answer: one line within seconds, before any run folder is made."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from conftest import REPO, TRAIN_CONFIG
from medseg_masksup.tracking.server_probe import PROBE_TIMEOUT_S, TrackingServerError, require_reachable

ENV = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


@contextmanager
def _silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def _http_server(status: int) -> Iterator[str]:
    """Answers every GET with ``status`` and an empty experiment list."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b'{"experiments": []}')

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_nothing_listening_is_refused_at_once_with_the_reason():
    uri = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(TrackingServerError) as err:
        require_reachable(uri)
    assert str(err.value).startswith(f"--tracking_uri {uri}: the MLflow tracking server does not answer (connection refused")


def test_a_server_that_never_answers_is_refused_after_the_probe_timeout():
    with _silent_server() as uri:
        start = time.monotonic()
        with pytest.raises(TrackingServerError, match=r"does not answer \(no answer within 1 s\)"):
            require_reachable(uri, timeout=1.0)
        assert time.monotonic() - start < 5


def test_a_server_that_is_not_mlflow_or_refuses_access_is_named_as_such():
    with _http_server(404) as uri, pytest.raises(TrackingServerError, match="answers HTTP 404 .* not a working MLflow"):
        require_reachable(uri)
    with _http_server(401) as uri, pytest.raises(TrackingServerError, match=r"refuses access \(HTTP 401\)"):
        require_reachable(uri)


def test_a_server_that_answers_and_local_stores_pass(tmp_path):
    with _http_server(200) as uri:
        require_reachable(uri)
    require_reachable(f"sqlite:///{tmp_path / 'mlflow.db'}")  # not probed: nothing to reach
    require_reachable(None)


def _train(out, *extra: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG),
                           "--output_dir", str(out), "--epochs", "1", *extra],
                          cwd=REPO, capture_output=True, text=True, env=env or ENV, timeout=600)
    return proc, time.monotonic() - start


@pytest.mark.integration
@pytest.mark.parametrize("via", ["flag", "environment"])
def test_training_against_a_dead_server_ends_in_one_line_before_any_run_folder(tmp_path, via):
    uri = f"http://127.0.0.1:{_closed_port()}"
    out = tmp_path / "runs"
    if via == "flag":
        proc, seconds = _train(out, "--tracking_uri", uri)
        given = f"--tracking_uri {uri}"
    else:
        proc, seconds = _train(out, env={**ENV, "MLFLOW_TRACKING_URI": uri})
        given = f"MLFLOW_TRACKING_URI={uri}"
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {given}: the MLflow tracking server does not answer (connection refused: nothing listens "
                      f"there); start the server (mlflow server --port …), or "
                      f"{'leave out --tracking_uri' if via == 'flag' else 'unset MLFLOW_TRACKING_URI'} to log into the "
                      "local SQLite store"], proc.stderr[-3000:]
    assert not out.exists(), sorted(str(p) for p in out.rglob("*"))  # no run folder, no store, no synthetic data
    assert seconds < 120, seconds  # MLflow alone retried for 259 s; the probe takes milliseconds, the rest is start-up


@pytest.mark.integration
def test_training_against_a_silent_server_gives_up_after_the_probe_timeout(tmp_path):
    out = tmp_path / "runs"
    with _silent_server() as uri:
        proc, seconds = _train(out, "--tracking_uri", uri)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"does not answer (no answer within {PROBE_TIMEOUT_S:g} s)" in errors[0], proc.stderr[-3000:]
    assert not out.exists()


@pytest.mark.integration
@pytest.mark.parametrize("command", ["evaluate", "robustness"])
def test_evaluate_and_robustness_refuse_a_dead_server_before_any_work(tmp_path, command):
    uri = f"http://127.0.0.1:{_closed_port()}"
    out = tmp_path / "scores"
    proc = subprocess.run([sys.executable, "-m", "medseg_masksup.cli", command, "--ckpt", str(tmp_path / "model.pt"),
                           "--datalist", str(tmp_path / "datalist.json"), "--output_dir", str(out), "--tracking_uri", uri],
                          cwd=REPO, capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        f"medseg-masksup {command}: error: --tracking_uri {uri}: the MLflow tracking server does not answer (connection "
        "refused: nothing listens there); start the server (mlflow server --port …), or leave out --tracking_uri to log "
        "into the local SQLite store"], proc.stderr[-3000:]
    assert not out.exists()
