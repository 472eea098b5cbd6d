import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import mlflow.pytorch
import numpy as np
import pytest
import torch
import yaml

from medseg_masksup.tracking.backbone_model import log_backbone_model, save_backbone_model, using_tracking_uri
from medseg_masksup.networks import build_network
from medseg_masksup.record import TrainingRecord
from medseg_masksup.tracking.store import sqlite_uri


@pytest.mark.integration
def test_backbone_saved_as_exported_program_with_dynamic_batch(tmp_path):
    torch.manual_seed(0)
    net = build_network("unet").eval()
    record = TrainingRecord(img_size=[32, 32])
    path = save_backbone_model(net, record, tmp_path / "model")
    meta = yaml.safe_load((path / "MLmodel").read_text())
    assert [p.name for p in (path / "data").iterdir()] == ["model.pt2"]  # a torch.export program, no pickle
    assert meta["metadata"]["training_record"]["img_size"] == [32, 32]
    loaded = mlflow.pytorch.load_model(str(path))
    for batch in (1, 4):
        x = torch.randn(batch, 3, 32, 32)
        with torch.no_grad():
            assert torch.allclose(loaded(x), net(x), atol=1e-5)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A training-like run with val_dice at epochs 1..3 and the backbone logged at best epoch 2, registered."""
    tmp = tmp_path_factory.mktemp("logged")
    torch.manual_seed(0)
    net = build_network("unet").eval()
    record = TrainingRecord(img_size=[32, 32], method="masksup", dataset="toy")
    uri = sqlite_uri(str(tmp / "mlflow.db"))
    client = mlflow.MlflowClient(uri)
    experiment_id = client.create_experiment("toy", artifact_location=(tmp / "mlruns").as_uri())
    run = client.create_run(experiment_id, run_name="masksup")
    for epoch, value in ((1, 0.2), (2, 0.6), (3, 0.5)):
        client.log_metric(run.info.run_id, "val_dice", value, step=epoch)
    info = log_backbone_model(client, run.info.run_id, net, record, step=2, registered_model_name="toy-seg")
    return tmp, uri, client, experiment_id, run.info.run_id, info, net


@pytest.mark.integration
def test_logged_model_belongs_to_the_run_with_the_best_epoch_metrics(logged):
    _, uri, client, experiment_id, run_id, info, _ = logged
    with using_tracking_uri(uri):
        models = mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list")
    assert [m.model_id for m in models] == [info.model_id]
    assert models[0].source_run_id == run_id
    assert [(m.key, m.value, m.step) for m in models[0].metrics] == [("val_dice", 0.6, 2)]
    assert [o.model_id for o in client.get_run(run_id).outputs.model_outputs] == [info.model_id]


@pytest.mark.integration
def test_pyfunc_predicts_logits_on_a_bare_ndarray(logged):
    _, uri, _, _, _, info, net = logged
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    with using_tracking_uri(uri):
        out = mlflow.pyfunc.load_model(info.model_uri).predict(x)
    assert isinstance(out, np.ndarray) and out.shape == (3, 1, 32, 32)
    with torch.no_grad():
        np.testing.assert_allclose(out, net(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_requirements_name_only_published_installed_packages(logged):
    _, _, client, _, _, info, _ = logged
    folder = Path(client.get_logged_model(info.model_id).artifact_location.removeprefix("file://"))
    requirements = (folder / "requirements.txt").read_text().split()
    names = [r.split("=")[0].split(">")[0] for r in requirements]
    assert "medseg-masksup" not in names and "torch" in names
    for name in names:
        importlib.metadata.version(name)  # installed here, i.e. resolvable from the index this env came from


def test_registered_under_the_given_name(logged):
    _, _, client, _, _, info, _ = logged
    versions = client.search_model_versions("name='toy-seg'")
    assert [(v.source, v.run_id) for v in versions] == [(info.model_uri, logged[4])]


@pytest.mark.integration
def test_model_loads_and_predicts_without_this_package_or_monai(logged):
    """The requirements are honest: the exported program needs neither medseg_masksup nor MONAI."""
    _, uri, _, _, _, info, _ = logged
    code = (
        "import sys; sys.modules['medseg_masksup'] = None; sys.modules['monai'] = None\n"
        "import mlflow, numpy as np\n"
        f"mlflow.set_tracking_uri({uri!r})\n"
        f"out = mlflow.pyfunc.load_model({info.model_uri!r}).predict(np.zeros((2, 3, 32, 32), np.float32))\n"
        "print(out.shape)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("(2, 1, 32, 32)")


@pytest.mark.integration
def test_mlflow_models_serve_answers_on_loopback(logged):
    """``mlflow models serve --env-manager local`` on the logged model: /invocations returns logits."""
    import json
    import urllib.request

    from server_fixtures import free_port, loopback_server

    tmp, uri, _, _, _, info, net = logged
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", info.model_uri, "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with loopback_server(cmd, port, "/ping", tmp / "serve.log", env={"MLFLOW_TRACKING_URI": uri}) as base:
        request = urllib.request.Request(f"{base}/invocations", data=json.dumps({"inputs": x.tolist()}).encode(),
                                         headers={"Content-Type": "application/json"})
        predictions = np.asarray(json.load(urllib.request.urlopen(request, timeout=60))["predictions"], np.float32)
    assert predictions.shape == (2, 1, 32, 32)
    with torch.no_grad():
        np.testing.assert_allclose(predictions, net(torch.from_numpy(x)).numpy(), atol=1e-4)
