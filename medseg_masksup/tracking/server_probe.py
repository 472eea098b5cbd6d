"""Is the MLflow tracking server there? One quick request before a run makes anything.

MLflow's client retries an unreachable server for minutes (7 retries with back-off, 120 s timeouts) and then
fails with a chain of tracebacks, after the run folder was made. :func:`require_reachable` asks an
``http(s)://`` tracking server once, with a short timeout and no retries, through MLflow's own request function
(so credentials and TLS settings from ``MLFLOW_TRACKING_*`` apply), and refuses in one line when it does not
answer as an MLflow server. Other stores (``sqlite:///``, ``databricks``, …) are not probed.
"""

from __future__ import annotations

import os
import socket

from ..errors import SettingsError

#: seconds the probe waits for the server (connect and read)
PROBE_TIMEOUT_S = 5.0
#: the request the probe sends: the cheapest read of MLflow's REST API
PROBE_ENDPOINT = "/api/2.0/mlflow/experiments/search"


class TrackingServerError(SettingsError):
    """The MLflow tracking server given cannot be used (it does not answer, or not as an MLflow server)."""


def _reason(err: BaseException, timeout: float) -> str:
    """A short reason for a failed request, from the innermost error of its chain."""
    seen, chain = set(), []
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        chain.append(err)
        err = err.__cause__ or err.__context__ or getattr(err, "reason", None)
        err = err if isinstance(err, BaseException) else None
    names = " ".join(type(e).__name__ for e in chain) + " " + " ".join(str(e) for e in chain)
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "Connection refused" in names:
        return "connection refused: nothing listens there"
    if any(isinstance(e, socket.gaierror) for e in chain) or "Name or service not known" in names:
        return "its host name is not known"
    if "Timeout" in names or "timed out" in names:
        return f"no answer within {timeout:g} s"
    text = str(chain[-1]).strip().splitlines()
    return text[0][:200] if text else type(chain[-1]).__name__


def require_reachable(tracking_uri: str | None, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`TrackingServerError` (one line) unless the ``http(s)://`` tracking server answers within
    ``timeout`` s as an MLflow server; ``MLFLOW_TRACKING_URI`` overrides ``tracking_uri``, as in training."""
    from_env = bool(os.environ.get("MLFLOW_TRACKING_URI"))
    uri = str(os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri or "")
    if not uri.lower().startswith(("http://", "https://")):
        return
    from mlflow.tracking._tracking_service.utils import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    given = f"MLFLOW_TRACKING_URI={uri}" if from_env else f"--tracking_uri {uri}"
    fix = "start the server (mlflow server --port …), or " + (
        "unset MLFLOW_TRACKING_URI" if from_env else "leave out --tracking_uri") + " to log into the local SQLite store"
    try:
        response = http_request(get_default_host_creds(uri), PROBE_ENDPOINT, "GET", max_retries=0, backoff_factor=0,
                                timeout=timeout, raise_on_status=False, retry_read_errors=False,
                                params={"max_results": 1})
    except Exception as err:  # noqa: BLE001 - every way a request can fail means the same: no server
        raise TrackingServerError(f"{given}: the MLflow tracking server does not answer ({_reason(err, timeout)}); "
                                  f"{fix}") from None
    status = response.status_code
    if status in (401, 403):
        raise TrackingServerError(f"{given}: the MLflow tracking server refuses access (HTTP {status}); set "
                                  "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN")
    if status != 200:
        raise TrackingServerError(f"{given}: answers HTTP {status} to {PROBE_ENDPOINT}, so it is not a working "
                                  f"MLflow tracking server; {fix}")
