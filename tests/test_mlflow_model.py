import mlflow.pytorch
import torch
import yaml

from medseg_masksup.inference.mlflow_model import save_backbone_model
from medseg_masksup.networks import build_network
from medseg_masksup.record import TrainingRecord


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
