import pytest
import torch

from medseg_masksup.checkpoint import CheckpointError, load_checkpoint, load_weights, save_checkpoint
from medseg_masksup.networks import build_network
from medseg_masksup.record import TrainingRecord


def test_missing_empty_corrupt_and_truncated_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match=f"checkpoint not found: {tmp_path / 'none.pt'}"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.pt: not a readable PyTorch checkpoint \(the file is empty, 0 bytes\)"):
        load_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "junk.pt").write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"junk.pt: not a readable PyTorch checkpoint \(.+\)$"):
        load_checkpoint(tmp_path / "junk.pt")
    good = tmp_path / "good.pt"
    torch.save({"model": build_network("unet").state_dict(), "training_record": TrainingRecord().state_dict()}, good)
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"cut.pt: not a readable PyTorch checkpoint \(.+\)$"):
        load_checkpoint(tmp_path / "cut.pt")


def test_pickled_objects_are_refused_weights_only(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(build_network("unet"), path)  # a whole pickled module: code could run on load
    with pytest.raises(CheckpointError, match=r"module.pt: not a readable PyTorch checkpoint \(it holds pickled Python objects"):
        load_checkpoint(path)


def test_foreign_checkpoint_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match=r"is not a medseg-masksup checkpoint: missing model, training_record"):
        load_checkpoint(path)


def test_weights_of_another_network_are_refused_with_a_message(tmp_path):
    path = tmp_path / "unet.pt"
    save_checkpoint({"model": build_network("unet").state_dict(), "training_record": TrainingRecord().state_dict()}, path)
    state = load_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"checkpoint .*unet.pt does not fit AttentionUnet as configured"):
        load_weights(build_network("attentionunet"), state["model"], path)
    load_weights(build_network("unet"), state["model"], path)  # the right one loads


def test_save_checkpoint_leaves_no_temporary_file_and_keeps_the_old_on_failure(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"a": torch.ones(1)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint({"a": Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(1))  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind
