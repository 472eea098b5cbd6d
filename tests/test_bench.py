"""``medseg-masksup bench`` at a tiny size: the bookkeeping of its figures, never their values (no timing asserts)."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
import torch

from medseg_masksup.method.trainer import amp_settings
from medseg_masksup.tools.bench import measure, settings, variants
from medseg_masksup.commands import bench as bench_cmd
from medseg_masksup.data.synthetic import ensure_synthetic_dataset

TINY = ["--img_size", "[32,32]", "--batch", "2", "--threads", "1", "--infer_steps", "2", "--quiet"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """10 synthetic 32x32 cases: 8 train (fold != 0), 2 validation."""
    return ensure_synthetic_dataset(tmp_path_factory.mktemp("bench_data"), n_cases=10, size=32)


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_out")
    argv = [*TINY, "--steps", "2", "--rounds", "2", "--warmup", "1", "--datalist", str(tiny_data),
            "--output_dir", str(out), "--json", str(out / "bench.json"), "--markdown", str(out / "bench.md")]
    threads = torch.get_num_threads()
    assert bench_cmd.main(argv) == 0
    assert torch.get_num_threads() == threads, "the bench must restore torch's thread count"
    return json.loads((out / "bench.json").read_text()), (out / "bench.md").read_text()


@pytest.mark.integration
def test_every_variant_ran_the_counted_steps(tiny_run):
    results, _ = tiny_run
    assert list(results["train"]) == list(settings.VARIANTS)
    for name, t in results["train"].items():
        assert len(t["step_ms"]["rounds"]) == 2, name
        assert t["iterations_run"] == (1 + 2) * 2, name  # (warm-up + timed rounds) x steps
        assert t["step_ms"]["median"] == pytest.approx(statistics.median(t["step_ms"]["rounds"]))
        assert t["step_ms"]["min"] <= t["step_ms"]["median"] <= t["step_ms"]["max"]
        assert t["images_per_s"] == pytest.approx(2 / (t["step_ms"]["median"] / 1e3))
        assert t["peak_memory_mb"] > 0 and t["peak_memory_above_start_mb"] >= 0


def test_ratios_are_paired_per_round(tiny_run):
    results, _ = tiny_run
    base = results["train"]["baseline"]["step_ms"]["rounds"]
    assert set(results["ratios"]) == {"masksup-sequential/baseline", "masksup-concat/baseline"}
    for key, ratio in results["ratios"].items():
        steps = results["train"][key.split("/")[0]]["step_ms"]["rounds"]
        assert ratio["rounds"] == pytest.approx([s / b for s, b in zip(steps, base)])
        assert ratio["median"] == pytest.approx(statistics.median(ratio["rounds"]))


def test_mask_loader_and_inference_bookkeeping(tiny_run):
    results, _ = tiny_run
    mask = results["mask"]
    seq = results["train"]["masksup-sequential"]["step_ms"]["rounds"]
    assert mask["reference_variant"] == "masksup-sequential"
    assert mask["share_rounds"] == pytest.approx([m / s for m, s in zip(mask["ms_per_batch"]["rounds"], seq)])
    assert mask["share_of_step"] == pytest.approx(statistics.median(mask["share_rounds"]))

    data = results["data"]
    assert data["loader"] == "ThreadDataLoader" and data["dataset"] == "CacheDataset" and data["n_items"] == 8
    assert data["bundle_loader"]["images_per_round"] == 8  # one epoch of the 8 training items per round
    assert len(data["bundle_loader"]["rounds"]) == 2 and len(data["plain_dataloader"]["rounds"]) == 2
    fastest = max(t["images_per_s"] for t in results["train"].values())
    assert data["fastest_trainer_images_per_s"] == pytest.approx(fastest)
    assert data["factor_vs_fastest_trainer"] == pytest.approx(data["bundle_loader"]["images_per_s"] / fastest)

    inference = results["inference"]
    bare, trained = list(inference["latency_ms"])
    assert bare == "bare backbone" and trained.startswith("MaskSup-trained")
    paired = [t / b for t, b in zip(inference["latency_ms"][trained]["rounds"], inference["latency_ms"][bare]["rounds"])]
    assert inference["ratio"]["rounds"] == pytest.approx(paired)


def test_targets_and_reports(tiny_run):
    results, markdown = tiny_run
    targets = {t["target"]: t for t in results["targets"]}
    assert len(targets) == 5
    for t in targets.values():
        assert isinstance(t["met"], bool) and math.isfinite(t["value"])
    ratio = results["ratios"]["masksup-sequential/baseline"]["median"]
    assert targets["masksup-sequential/baseline step time <= 2.0"]["met"] == (ratio <= 2.0)
    inf = results["inference"]["ratio"]["median"]
    assert targets["inference latency MaskSup-trained / bare = 1.00 +- 0.03"]["met"] == (abs(inf - 1) <= 0.03)
    assert results["environment"]["timer"] == "time.perf_counter" and results["environment"]["torch_threads"] == 1
    assert results["command"].startswith("medseg-masksup bench ")
    for name in settings.VARIANTS:
        assert f"| {name} |" in markdown
    assert "| target | measured | met |" in markdown and "inference latency ratio" in markdown


@pytest.mark.integration
def test_profile_subset_and_cpu_safe_cuda_options(tiny_data, tmp_path, capsys):
    """--amp (bf16 autocast on CPU), --channels_last and --plain_tensors must not break a CPU run."""
    argv = [*TINY, "--steps", "1", "--rounds", "1", "--warmup", "0", "--variants", "baseline,masksup-concat",
            "--amp", "--channels_last", "--plain_tensors", "--datalist", str(tiny_data),
            "--output_dir", str(tmp_path), "--json", str(tmp_path / "b.json"), "--profile", str(tmp_path / "prof")]
    assert bench_cmd.main(argv) == 0
    results = json.loads((tmp_path / "b.json").read_text())
    assert list(results["train"]) == ["baseline", "masksup-concat"]
    assert list(results["ratios"]) == ["masksup-concat/baseline"]
    assert results["environment"]["amp"].startswith("bf16")
    for name in ("baseline", "masksup-concat"):
        assert results["train"][name]["iterations_run"] == 1 + 1 + 1  # timed round, phase run, profiler run
        phases = results["profile"]["phases"][name]
        assert sum(p["share"] for p in phases.values()) == pytest.approx(1.0)
        assert (tmp_path / "prof" / f"profile_{name}.txt").read_text().strip()
    assert (tmp_path / "prof" / "profile_masks.txt").is_file()
    assert "Where a step's time goes" in capsys.readouterr().out


def test_bad_arguments_are_refused(capsys):
    assert bench_cmd.main(["--variants", "baseline,nope"]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert bench_cmd.main(["--steps", "0"]) == 2
    assert "steps must be >= 1" in capsys.readouterr().err
    assert bench_cmd.main(["--help"]) == 0


def test_img_size_parsing():
    assert bench_cmd._img_size("128") == (128, 128)
    assert bench_cmd._img_size("[96, 128]") == (96, 128)
    assert bench_cmd._img_size("64,64,32") == (64, 64, 32)


def test_rotation_interleaves_every_order():
    names = list(settings.VARIANTS)
    orders = [measure._rotate(names, r) for r in range(3)]
    assert [o[0] for o in orders] == names  # each variant leads one round
    assert all(sorted(o) == sorted(names) for o in orders)


def test_clock_and_peak_memory_on_cpu():
    clock = measure.Clock(torch.device("cpu"))
    calls = []
    assert clock.time(lambda: calls.append(1)) >= 0 and calls == [1]
    memory = measure.PeakMemory(torch.device("cpu"))
    memory.start()
    block = torch.ones(8 * 2**20 // 4)  # 8 MiB, touched
    block += 1
    peak, above = memory.stop()
    assert peak > 0 and above >= 0
    assert memory.kind.startswith("peak RSS")


def test_prepare_batch_plain_and_channels_last():
    from monai.data import MetaTensor

    batch = {"image": MetaTensor(torch.rand(2, 3, 8, 8)), "label": MetaTensor(torch.rand(2, 1, 8, 8))}
    image, label = variants.PrepareBatch(channels_last=True, plain_tensors=True)(batch, torch.device("cpu"), True)
    assert type(image) is torch.Tensor and type(label) is torch.Tensor
    assert image.is_contiguous(memory_format=torch.channels_last)
    image, _ = variants.PrepareBatch()(batch, torch.device("cpu"))
    assert isinstance(image, MetaTensor)


def test_amp_settings_cpu_is_bf16_without_scaler():
    kwargs, label = amp_settings(torch.device("cpu"))  # re-exported from the trainer
    assert kwargs == {"dtype": torch.bfloat16} and label.startswith("bf16")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_tiny_bench_on_cuda(tiny_data, tmp_path):
    argv = [*TINY, "--steps", "2", "--rounds", "1", "--device", "cuda", "--amp", "--channels_last",
            "--datalist", str(tiny_data), "--output_dir", str(tmp_path), "--json", str(tmp_path / "b.json")]
    assert bench_cmd.main(argv) == 0
    results = json.loads((tmp_path / "b.json").read_text())
    assert results["environment"]["timer"] == "CUDA events"
    assert results["environment"]["memory"] == "torch.cuda.max_memory_allocated"


@pytest.mark.slow
def test_tiny_bench_with_torch_compile(tiny_data, tmp_path):
    """torch.compile of the backbone (inductor needs a C++ compiler on CPU); slow: compilation."""
    argv = [*TINY, "--steps", "1", "--rounds", "1", "--warmup", "1", "--compile", "--variants", "baseline,masksup-sequential",
            "--datalist", str(tiny_data), "--output_dir", str(tmp_path), "--json", str(tmp_path / "b.json")]
    assert bench_cmd.main(argv) == 0
    results = json.loads((tmp_path / "b.json").read_text())
    assert results["settings"]["compile"] is True


def test_cpu_timer_counts_work_not_waiting():
    import time

    cpu, wall = measure.Clock(torch.device("cpu"), "cpu"), measure.Clock(torch.device("cpu"), "wall")
    assert cpu.name.startswith("time.process_time") and wall.name == "time.perf_counter"
    assert cpu.time(lambda: time.sleep(0.2)) < 0.1  # sleeping costs no CPU time
    assert wall.time(lambda: time.sleep(0.2)) >= 0.2
    with pytest.raises(ValueError, match="unknown timer 'gpu'; choose one of wall, cpu"):
        measure.Clock(torch.device("cpu"), "gpu")
