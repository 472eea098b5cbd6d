"""Bad inputs: every problem is named with its path; --strict fails and writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

try:
    from prepare_fixtures import (
        image_array,
        make_glas_official,
        make_glas_repack,
        make_isic,
        make_kvasir,
        make_ph2,
        run,
        save,
    )
except ImportError:  # tests/ is a package
    from tests.prepare_fixtures import (
        image_array,
        make_glas_official,
        make_glas_repack,
        make_isic,
        make_kvasir,
        make_ph2,
        run,
        save,
    )

GLAS_DIR = "Warwick QU Dataset (Released 2016_07_08)"


def problems_of(out: Path) -> list[dict]:
    return json.loads((out / "dataset.json").read_text())["problems"]["items"]


def ids_of(out: Path, split: str = "training") -> list[str]:
    return [i["id"] for i in json.loads((out / "datalist.json").read_text())[split]]


def assert_one_error_line(err: str, *fragments: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, err
    for f in fragments:
        assert f in lines[0], lines[0]
    assert "Traceback" not in err


def test_missing_mask_reported_and_skipped(tmp_path, capsys):
    tree = make_glas_official(tmp_path / "src")
    root = tree.root / GLAS_DIR
    (root / "train_3_anno.bmp").unlink()
    out = tmp_path / "out"
    rc, stdout, err = run(["glas", "--src", tree.root, "--out", out, "--folds", "2"], capsys)
    assert rc == 0
    expected = f"problem: missing mask for image 'train_3.bmp' (expected {root / 'train_3_anno.bmp'})"
    assert expected in err
    assert "1 problem (affected pairs skipped)" in stdout
    assert "train_3" not in ids_of(out)
    assert [p["kind"] for p in problems_of(out)] == ["missing_mask"]


def test_missing_mask_strict_fails_and_writes_nothing(tmp_path, capsys):
    tree = make_glas_official(tmp_path / "src")
    (tree.root / GLAS_DIR / "train_3_anno.bmp").unlink()
    out = tmp_path / "out"
    rc, _, err = run(["glas", "--src", tree.root, "--out", out, "--strict"], capsys)
    assert rc == 1
    assert "problem: missing mask for image 'train_3.bmp'" in err
    assert_one_error_line(err, "1 problem found under", str(tree.root), "nothing written (--strict)")
    assert not out.exists()


def test_missing_image_for_mask(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src")
    (tree.root / "images" / "cju01abc007.jpg").unlink()
    rc, _, err = run(["kvasir", "--src", tree.root, "--out", tmp_path / "out", "--folds", "2"], capsys)
    assert rc == 0
    assert (
        f"problem: missing image for mask 'cju01abc007.jpg' (expected {tree.root / 'images' / 'cju01abc007.*'})" in err
    )


def test_missing_mask_in_nested_ph2_layout(tmp_path, capsys):
    tree = make_ph2(tmp_path / "src")
    case = tree.root / "PH2Dataset" / "PH2 Dataset images" / "IMD010"
    shutil.rmtree(case / "IMD010_lesion")
    rc, _, err = run(["ph2", "--src", tree.root, "--out", tmp_path / "out", "--folds", "2"], capsys)
    assert rc == 0
    assert f"missing mask for image 'IMD010.bmp' (expected {case / 'IMD010_lesion' / 'IMD010_lesion.bmp'})" in err


def test_size_mismatch(tmp_path, capsys):
    tree = make_glas_official(tmp_path / "src")
    root = tree.root / GLAS_DIR
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(root / "train_2_anno.bmp")
    out = tmp_path / "out"
    rc, _, err = run(["glas", "--src", tree.root, "--out", out, "--folds", "2"], capsys)
    assert rc == 0
    msg = f"size mismatch: image {root / 'train_2.bmp'} is 30x20 but mask {root / 'train_2_anno.bmp'} is 12x10"
    assert msg in err
    assert problems_of(out)[0]["message"] == msg
    assert "train_2" not in ids_of(out)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"this is not an image at all", "not a recognised image file"),
        (b"", "file is empty"),
        ("truncate", "image file is truncated"),
    ],
)
def test_corrupt_image(tmp_path, capsys, content, reason):
    tree = make_kvasir(tmp_path / "src")
    bad = tree.root / "images" / "cju02abc014.jpg"
    if content == "truncate":
        content = bad.read_bytes()[:300]
    bad.write_bytes(content)
    out = tmp_path / "out"
    rc, _, err = run(["kvasir", "--src", tree.root, "--out", out, "--folds", "2"], capsys)
    assert rc == 0
    assert f"problem: cannot read {bad}: {reason}" in err
    assert "cju02abc014" not in ids_of(out)
    rc, _, err = run(["kvasir", "--src", tree.root, "--out", tmp_path / "out2", "--strict"], capsys)
    assert rc == 1 and f"cannot read {bad}: {reason}" in err
    assert not (tmp_path / "out2").exists()


def test_corrupt_mask(tmp_path, capsys):
    tree = make_isic(tmp_path / "src")
    bad = tree.root / "ISIC2018_Task1_Training_GroundTruth" / "ISIC_0000002_segmentation.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    rc, _, err = run(["isic2018", "--src", tree.root, "--out", tmp_path / "out", "--folds", "2"], capsys)
    assert rc == 0
    assert f"problem: cannot read {bad}: " in err


def test_empty_source_folder(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    rc, _, err = run(["kvasir", "--src", src, "--out", tmp_path / "out"], capsys)
    assert rc == 1
    assert_one_error_line(err, f"no Kvasir-SEG layout found under {src}")


@pytest.mark.parametrize("dataset", ["kvasir", "glas"])
def test_empty_image_folders(tmp_path, capsys, dataset):
    src = tmp_path / "src"
    if dataset == "kvasir":
        (src / "images").mkdir(parents=True)
        (src / "masks").mkdir()
        where = src / "images"
    else:
        (src / "Train_Folder" / "img").mkdir(parents=True)
        (src / "Train_Folder" / "labelcol").mkdir()
        where = src / "Train_Folder" / "img"
    rc, _, err = run([dataset, "--src", src, "--out", tmp_path / "out"], capsys)
    assert rc == 1
    assert_one_error_line(err, f"no images found under {where}")
    assert not (tmp_path / "out").exists()


def test_empty_test_set_is_a_problem_not_fatal(tmp_path, capsys):
    tree = make_glas_repack(tmp_path / "src")
    for f in (tree.root / "Test_Folder" / "img").iterdir():
        f.unlink()
    rc, _, err = run(["glas", "--src", tree.root, "--out", tmp_path / "out", "--folds", "2"], capsys)
    assert rc == 0
    assert f"problem: no images found under {tree.root / 'Test_Folder' / 'img'}" in err


def test_non_image_files_are_ignored_and_noted(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src")
    for name in ("Thumbs.db", ".DS_Store", "readme.txt"):
        (tree.root / "images" / name).write_bytes(b"\x00\x01junk")
    (tree.root / "masks" / "desktop.ini").write_text("[x]")
    out = tmp_path / "out"
    rc, stdout, err = run(["kvasir", "--src", tree.root, "--out", out, "--folds", "2"], capsys)
    assert rc == 0, err
    assert "0 problems" in stdout
    assert "note: ignored 4 files that are not part of the layout:" in stdout
    assert "Thumbs.db" in stdout and "readme.txt" in stdout
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["ignored_files"]["count"] == 4
    assert len(ids_of(out)) == 6
    # --strict does not fail on ignored files
    rc, _, err = run(["kvasir", "--src", tree.root, "--out", tmp_path / "o2", "--strict", "--folds", "2"], capsys)
    assert rc == 0, err


def test_mask_that_is_not_binarizable(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src")
    grey = tree.root / "masks" / "cju03abc021.png"
    (tree.root / "masks" / "cju03abc021.jpg").unlink()
    Image.fromarray(np.full((27, 38), 128, np.uint8)).save(grey)
    colour = tree.root / "masks" / "cju04abc028.jpg"
    save(colour, image_array(40, 28, 99))
    out = tmp_path / "out"
    rc, _, err = run(["kvasir", "--src", tree.root, "--out", out, "--folds", "2"], capsys)
    assert rc == 0
    assert f"problem: mask {grey} cannot be binarized: 100.0% of pixels are grey (between 64 and 191)" in err
    assert f"problem: mask {colour} cannot be binarized: it is a colour image" in err
    assert ids_of(out) == ["cju00abc000", "cju01abc007", "cju02abc014", "cju05abc035"]


def test_duplicate_images(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src")
    images, masks = tree.root / "images", tree.root / "masks"
    shutil.copy(images / "cju00abc000.jpg", images / "zz_copy.jpg")
    shutil.copy(masks / "cju00abc000.jpg", masks / "zz_copy.jpg")
    out = tmp_path / "out"
    rc, _, err = run(["kvasir", "--src", tree.root, "--out", out, "--folds", "2"], capsys)
    assert rc == 0
    assert f"problem: duplicate image: {images / 'zz_copy.jpg'} is identical to {images / 'cju00abc000.jpg'}" in err
    assert "zz_copy" not in ids_of(out)


def test_duplicate_across_splits_keeps_the_held_out_copy(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src", layout="folders")
    train, val = tree.root / "train", tree.root / "val"
    shutil.copy(val / "images" / "cju00abc000.jpg", train / "images" / "leak.jpg")
    shutil.copy(val / "masks" / "cju00abc000.jpg", train / "masks" / "leak.jpg")
    out = tmp_path / "out"
    rc, _, err = run(["kvasir", "--src", tree.root, "--out", out, "--folds", "2"], capsys)
    assert rc == 0
    assert "(training copy skipped, validation copy kept)" in err
    assert "leak" not in ids_of(out)
    assert "cju00abc000" in ids_of(out, "validation")


def test_two_images_with_one_id(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src")
    save(tree.root / "images" / "cju01abc007.png", image_array(34, 25, 1234))
    rc, _, err = run(["kvasir", "--src", tree.root, "--out", tmp_path / "out", "--folds", "2"], capsys)
    assert rc == 0
    assert (
        f"problem: several images share the id 'cju01abc007' in {tree.root / 'images'}: cju01abc007.jpg, cju01abc007.png"
        in err
    )


def test_split_file_problems(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src", layout="files")
    (tree.root / "val.txt").write_text("cju00abc000\nghost\n")  # cju01abc007 now unlisted
    rc, _, err = run(["kvasir", "--src", tree.root, "--out", tmp_path / "out", "--folds", "2"], capsys)
    assert rc == 0
    assert f"lists 'ghost' but there is no image 'ghost.*' in {tree.root / 'images'}" in err
    assert "image 'cju01abc007.jpg' is not listed in any split file (train.txt, val.txt); skipped" in err


def test_isic_missing_ground_truth_folder(tmp_path, capsys):
    tree = make_isic(tmp_path / "src")
    shutil.rmtree(tree.root / "ISIC2018_Task1_Test_GroundTruth")
    out = tmp_path / "out"
    rc, _, err = run(["isic2018", "--src", tree.root, "--out", out, "--folds", "2"], capsys)
    assert rc == 0
    assert f"ground-truth folder missing for {tree.root / 'ISIC2018_Task1-2_Test_Input'}" in err
    assert ids_of(out, "test") == []


def test_source_not_found(tmp_path, capsys):
    rc, _, err = run(["ph2", "--src", tmp_path / "nope", "--out", tmp_path / "out"], capsys)
    assert rc == 1
    assert_one_error_line(err, f"source folder not found: {tmp_path / 'nope'}")


def test_unrecognised_layout(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src")
    rc, _, err = run(["isic2018", "--src", tree.root, "--out", tmp_path / "out"], capsys)
    assert rc == 1
    assert_one_error_line(err, f"no ISIC 2018 layout found under {tree.root}")


def test_out_equal_to_src_refused(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src")
    rc, _, err = run(["kvasir", "--src", tree.root, "--out", tree.root], capsys)
    assert rc == 1
    assert_one_error_line(err, "--out must differ from --src")


def test_fewer_pairs_than_folds(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src", n=3)
    rc, _, err = run(["kvasir", "--src", tree.root, "--out", tmp_path / "out", "--folds", "5"], capsys)
    assert rc == 1
    assert_one_error_line(err, "only 3 training pairs", "fewer than --folds 5")


def test_no_usable_pairs(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src", n=2)
    for f in (tree.root / "masks").iterdir():
        f.unlink()
    rc, _, err = run(["kvasir", "--src", tree.root, "--out", tmp_path / "out", "--folds", "2"], capsys)
    assert rc == 1
    assert "problem: missing mask for image 'cju00abc000.jpg'" in err
    assert_one_error_line(err, f"no usable training pairs under {tree.root} (2 problems found)")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nosuchdataset", "--src", "a", "--out", "b"],
        ["kvasir", "--out", "b"],
        ["kvasir", "--src", "a", "--out", "b", "--folds", "1"],
        ["kvasir", "--src", "a", "--out", "b", "--folds", "x"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    rc, _, err = run(argv, capsys)
    assert rc == 2
    assert "usage:" in err and "Traceback" not in err


def test_help(capsys):
    rc, stdout, _ = run(["--help"], capsys)
    assert rc == 0
    for name in ("glas", "kvasir", "cvc-clinicdb", "pranet", "isic2018", "ph2"):
        assert name in stdout
    rc, stdout, _ = run(["ph2", "--help"], capsys)
    assert rc == 0
    assert "IMDnnn_lesion" in stdout and "--copy-images" in stdout and "--strict" in stdout
    rc, stdout, _ = run(["cvc-clinicdb", "--help"], capsys)
    assert rc == 0 and "--variant" in stdout
