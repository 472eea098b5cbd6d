"""Issue 20 item 5: big datalists. The up-front check runs in a thread pool with a progress bar and decodes each
file once per process; the cache's memory is estimated from the headers before anything is cached and
cache_rate lowered, in one line, when it would not fit; resident memory stays within 2× the cached data."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

from medseg_masksup.data import image_check
from medseg_masksup.data.cache import cached_item_bytes, fit_cache_rate
from medseg_masksup.data.datalist import DatalistError, load_split
from medseg_masksup.data.preprocessing import training_preprocessing, validation_preprocessing
from medseg_masksup.record import TrainingRecord


def _items(tmp_path, n: int, size=(60, 40)) -> tuple[str, list[dict]]:
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        Image.fromarray(np.zeros((size[1], size[0]), np.uint8)).save(tmp_path / f"{i}_mask.png")
        items.append({"image": f"{i}.png", "label": f"{i}_mask.png", "fold": i % 2})
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"training": items}))
    return str(path), [{"image": str(tmp_path / it["image"]), "label": str(tmp_path / it["label"])} for it in items]


def test_check_runs_in_threads_shows_progress_and_decodes_each_file_once(tmp_path, monkeypatch, capsys):
    datalist, _ = _items(tmp_path, 4)
    decode, threads, calls = image_check._decode, set(), []

    def slow_decode(path):
        threads.add(threading.current_thread().name)
        calls.append(path)
        time.sleep(0.2)
        return decode(path)

    monkeypatch.setattr(image_check, "_decode", slow_decode)
    monkeypatch.setattr(image_check, "PROGRESS_MIN_FILES", 1)
    monkeypatch.setattr(image_check, "PROGRESS_DELAY_S", 0.0)
    image_check._cached.cache_clear()
    load_split(datalist)
    assert len(calls) == 8 and len(threads) > 1 and all(t.startswith("datalist-check") for t in threads)
    assert "checking the 8 files of datalist.json" in capsys.readouterr().err
    load_split(datalist)  # the settings check and the bundle's split: the second look decodes nothing
    assert len(calls) == 8


@pytest.mark.parametrize("mode", ["resize", "patch"])
def test_the_cache_estimate_is_the_size_of_a_preprocessed_item(tmp_path, mode):
    _, items = _items(tmp_path, 1, size=(75, 52))
    record = TrainingRecord(img_size=[32, 32], spatial_mode=mode, scale=0.5)
    for make, training in ((training_preprocessing, True), (validation_preprocessing, False)):
        out = make(record)(items[0])
        arrays = sum(out[key].numel() * out[key].element_size() for key in ("image", "label"))
        estimate = cached_item_bytes(record, 75, 52, training=training)
        assert arrays <= estimate <= arrays + 16 * 1024, (make.__name__, arrays, estimate)


def test_a_cache_that_does_not_fit_is_reduced_in_one_line(tmp_path, capsys):
    _, items = _items(tmp_path, 4, size=(75, 52))
    record = TrainingRecord(img_size=[32, 32])  # 4 × 32 × 32 × 4 B + overhead = 24.6 kB per item
    per_item = cached_item_bytes(record, 75, 52)
    assert fit_cache_rate(items, [], record, 1.0, available=100 * per_item) == 1.0
    assert capsys.readouterr().err == ""
    assert fit_cache_rate(items, [], record, 1.0, available=2 * per_item) == 0.4  # 0.8 × 2 / 4
    assert capsys.readouterr().err.splitlines() == [
        "warning: caching the 4 preprocessed training and validation items would take 0.098 MB (0.025 MB each), more "
        "than the 0.039 MB this run may use (80% of the 0.049 MB available); caching 40% of them (cache_rate 0.4); "
        "the rest are read from disk each epoch"]
    assert fit_cache_rate(items, [], record, 1.0, available=0) == 0.0
    assert "caching none of them (cache_rate 0)" in capsys.readouterr().err


def _rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS"))


@pytest.mark.integration
@pytest.mark.skipif(not image_check.os.path.exists("/proc/self/status"), reason="needs /proc (Linux)")
def test_resident_memory_of_the_cache_stays_within_twice_its_size(tmp_path):
    """775 × 522 pictures cached at 128 × 128: the full-size temporaries of each item used to stay resident
    (~9× the cached data on glibc); the preprocessing now hands them back."""
    from monai.data import CacheDataset

    _, items = _items(tmp_path, 1, size=(775, 522))
    items = items * 120  # 120 items (the same file: decoded per item all the same)
    record = TrainingRecord()
    transform = training_preprocessing(record)
    transform(items[0])  # first-call allocations (kernels, caches) out of the measurement
    before = _rss_bytes()
    dataset = CacheDataset(items, transform, cache_rate=1.0, num_workers=1, progress=False)
    grown = _rss_bytes() - before
    cached = len(items) * cached_item_bytes(record, 775, 522)
    assert len(dataset) == 120 and grown <= 2 * cached, f"resident memory grew {grown / cached:.1f}× the cached data"


def test_an_8_bit_png_with_damaged_pixel_data_is_refused_by_its_checksums(tmp_path):
    """8-bit PNGs are checked by their CRCs (decoding waits for the cache): a flipped byte is still named."""
    datalist, items = _items(tmp_path, 2, size=(64, 48))
    data = bytearray((tmp_path / "1.png").read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the IDAT chunk
    (tmp_path / "1.png").write_bytes(bytes(data))
    with pytest.raises(DatalistError) as err:
        load_split(datalist)
    assert str(err.value) == (f"datalist {datalist}: cannot read {tmp_path / '1.png'} as an image "
                              "(broken PNG file (bad header checksum in b'IDAT'))")
