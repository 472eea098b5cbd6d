"""Robustness curve: fixed-seed occlusions shared by every checkpoint, Dice/IoU per masked fraction."""

from __future__ import annotations

import csv

import pytest
import torch
from infer_fixtures import bright_checkpoint, make_record, shared_tracking_uri, write_labelled_set
from torch import nn

from medseg_masksup.commands import robustness as robustness_cmd
from medseg_masksup.checkpoint import load_network
from medseg_masksup.io import UserError
from medseg_masksup.data.preprocessing import training_preprocessing
from medseg_masksup.inference.robustness import COLUMNS, occlusion_mask, read_curve, robustness_curve, run_robustness


class Recorder(nn.Module):
    """Logit = channel 0; remembers every input it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return x[:, :1] * 4


def _cases(tmp_path, n=3):
    from monai.data import Dataset

    datalist = write_labelled_set(tmp_path / "data", n=n)
    import json

    items = [{k: str(tmp_path / "data" / v) for k, v in it.items() if k != "id"}
             for it in json.loads(datalist.read_text())["validation"]]
    return [dict(c) for c in Dataset(items, transform=training_preprocessing(make_record()))], datalist


@pytest.mark.parametrize("kind", ["freeform", "patch", "block"])
def test_occlusion_is_seeded_and_hides_the_requested_share(kind):
    a = occlusion_mask(kind, 0.45, seed=3, index=5, shape=(1, 3, 32, 32))
    assert torch.equal(a, occlusion_mask(kind, 0.45, seed=3, index=5, shape=(1, 3, 32, 32)))
    assert not torch.equal(a, occlusion_mask(kind, 0.45, seed=3, index=6, shape=(1, 3, 32, 32)))
    assert a.sum().item() == round(0.45 * 32 * 32)  # exact on a 32 × 32 grid
    assert occlusion_mask(kind, 0.0, seed=3, index=5, shape=(1, 3, 32, 32)).sum() == 0


def test_every_checkpoint_sees_the_same_occluded_inputs(tmp_path):
    cases, _ = _cases(tmp_path)
    record = make_record()
    first, second = Recorder(), Recorder()
    robustness_curve(first, record, cases, ["patch"], [0.5], seeds=[1], batch_size=1)
    robustness_curve(second, record, cases, ["patch"], [0.5], seeds=[1], batch_size=3)  # other batching
    torch.testing.assert_close(torch.cat(first.seen), torch.cat(second.seen), rtol=0, atol=0)
    holes = torch.cat(first.seen) == 0
    assert holes.float().mean().item() == pytest.approx(0.5, abs=0.01)


def test_curve_starts_at_plain_validation_and_drops_when_hidden(tmp_path):
    cases, _ = _cases(tmp_path, n=4)
    network, record = load_network(bright_checkpoint())
    curve, per_case = robustness_curve(network, record, cases, ["block"], [0.0, 0.75], seeds=[0, 1])
    assert [(r["kind"], r["ratio"], r["n_cases"], r["n_seeds"]) for r in curve] == [("block", 0.0, 4, 2), ("block", 0.75, 4, 2)]
    with torch.inference_mode():
        x = torch.stack([c["image"] for c in cases])
        y = torch.stack([c["label"] for c in cases])
        pred = (torch.sigmoid(network(x)) >= 0.5).float()
    plain = (2 * (pred * y).sum((1, 2, 3)) / (pred.sum((1, 2, 3)) + y.sum((1, 2, 3)))).numpy()
    assert curve[0]["dice_mean"] == pytest.approx(float(plain.mean()), abs=1e-5)  # unmasked = validation Dice
    assert curve[0]["hidden_fraction"] == 0.0 and curve[1]["hidden_fraction"] == pytest.approx(0.75, abs=0.01)
    assert curve[1]["dice_mean"] < curve[0]["dice_mean"] - 0.1
    assert len(per_case) == 2 * 2 * 4


def test_run_robustness_writes_table_plot_and_mlflow(tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    _, datalist = _cases(tmp_path)
    other = tmp_path / "baseline.csv"
    other.write_text(",".join(COLUMNS) + "\nbaseline,patch,0,0,3,1,0.9,0.1,0.8,0.1\nbaseline,patch,0.5,0.5,3,1,0.5,0.1,0.4,0.1\n")
    report = run_robustness(bright_checkpoint(), datalist, tmp_path / "rob", kinds="patch,block", ratios=[0, 0.5],
                            compare=[other], tracking_uri=shared_tracking_uri(), progress=False)
    table = read_curve(tmp_path / "rob" / "robustness.csv")
    assert [(r["kind"], r["ratio"]) for r in table] == [("patch", 0.0), ("patch", 0.5), ("block", 0.0), ("block", 0.5)]
    assert table[0]["label"] == "masksup/unet" and table[0]["dice_mean"] == table[2]["dice_mean"]
    assert (tmp_path / "rob" / "robustness.png").stat().st_size > 10_000
    assert len(list(csv.DictReader(open(tmp_path / "rob" / "robustness_per_case.csv")))) == 2 * 2 * 3
    out = capsys.readouterr().out
    assert "patch         50%  " in out
    client = MlflowClient(shared_tracking_uri())
    run = client.get_run(report.mlflow_run_id)
    assert run.data.tags["kind"] == "robustness" and run.data.params["ratios"] == "0,0.5"
    history = client.get_metric_history(report.mlflow_run_id, "robust_dice_patch")
    assert sorted(m.step for m in history) == [0, 50]
    assert client.get_experiment(run.info.experiment_id).name == "masksup-bright-test"


def test_robustness_user_errors(tmp_path, capsys):
    with pytest.raises(UserError, match="unknown mask kind 'holes'; choose from freeform, patch, block"):
        robustness_curve(Recorder(), make_record(), [], ["holes"], [0.1])
    with pytest.raises(UserError, match=r"masked fraction must be in \[0, 1\), got 1.0"):
        robustness_curve(Recorder(), make_record(), [], ["patch"], [1.0])
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match=f"{tmp_path / 'bad.csv'}: not a robustness table"):
        read_curve(tmp_path / "bad.csv")
    code = robustness_cmd.main(["--ckpt", str(bright_checkpoint()), "--datalist", str(tmp_path / "d.json")])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"medseg-masksup robustness: error: datalist not found: {tmp_path / 'd.json'}"
