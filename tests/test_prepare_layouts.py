"""Each supported layout, on tiny fake trees: counts, splits, masks and layout quirks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

try:
    from prepare_fixtures import (
        BUILDERS,
        make_cvc,
        make_glas_official,
        make_glas_repack,
        make_isic,
        make_kvasir,
        make_ph2,
        make_pranet,
        prepare_ok,
        read_mask,
    )
except ImportError:  # tests/ is a package
    from tests.prepare_fixtures import (
        BUILDERS,
        make_cvc,
        make_glas_official,
        make_glas_repack,
        make_isic,
        make_kvasir,
        make_ph2,
        make_pranet,
        prepare_ok,
        read_mask,
    )


def check_datalist(datalist: dict, tree, out: Path) -> None:
    """Counts, keys, folds, paths and every mask's pixels against the tree's expectation."""
    assert datalist["labels"] == {"0": "background", "1": "foreground"}
    assert datalist["mask_values"] == "0/255"
    got = {s: len(datalist[s]) for s in ("training", "validation", "test")}
    assert got == tree.counts()
    for split in ("training", "validation", "test"):
        for item in datalist[split]:
            keys = {"image", "label", "id"} | ({"fold"} if split == "training" else set())
            assert set(item) == keys, item
            if split == "training":
                assert item["fold"] in (0, 1)
            image, fg = tree.expected[(split, item["id"])]
            assert item["image"] == image.resolve().as_posix()  # left in place: absolute
            assert not Path(item["label"]).is_absolute()
            assert item["label"].startswith(f"masks/{split}/")
            mask = read_mask(out / item["label"])
            assert set(np.unique(mask)) <= {0, 255}
            with Image.open(image) as im:
                assert im.size == (mask.shape[1], mask.shape[0])
            np.testing.assert_array_equal(mask == 255, fg)


@pytest.mark.parametrize("dataset", sorted(BUILDERS))
def test_every_layout_prepares(dataset, tmp_path, capsys):
    tree = BUILDERS[dataset](tmp_path / "src")
    out = tmp_path / "out"
    datalist, stdout, _ = prepare_ok(dataset, tree.root, out, capsys)
    check_datalist(datalist, tree, out)
    n = sum(tree.counts().values())
    assert f"{n} pairs accepted" in stdout
    assert "0 problems" in stdout
    assert (out / "dataset.json").is_file()


def test_monai_loads_the_datalist(tmp_path, capsys):
    from monai.data import load_decathlon_datalist
    from monai.transforms import LoadImaged

    tree = make_kvasir(tmp_path / "src", layout="folders")
    out = tmp_path / "out"
    prepare_ok("kvasir", tree.root, out, capsys)
    train = load_decathlon_datalist(out / "datalist.json", data_list_key="training", base_dir=out)
    val = load_decathlon_datalist(out / "datalist.json", data_list_key="validation", base_dir=out)
    assert len(train) == 4 and len(val) == 2
    load = LoadImaged(keys=["image", "label"], reader="PILReader", image_only=True)
    for item in train + val:
        data = load(item)
        assert tuple(data["image"].shape[:2]) == tuple(data["label"].shape[:2])
        assert set(np.unique(data["label"].numpy())) <= {0, 255}


def test_glas_official_quirks(tmp_path, capsys):
    tree = make_glas_official(tmp_path / "src")
    datalist, stdout, _ = prepare_ok("glas", tree.root, tmp_path / "out", capsys)
    assert "official release" in stdout
    assert [i["id"] for i in datalist["test"]] == ["testA_1", "testA_2", "testB_1", "testB_2"]
    assert all(i["id"].startswith("train_") for i in datalist["training"])
    # instance ids 1, 2 and 3 all become foreground 255
    raw = np.asarray(Image.open(tree.root / "Warwick QU Dataset (Released 2016_07_08)" / "train_1_anno.bmp"))
    assert len(set(np.unique(raw).tolist()) - {0}) >= 3
    assert "Grade.csv" in stdout  # ignored, and said so
    summary = (tmp_path / "out" / "dataset.json").read_text()
    assert '"testA": 2' in summary and '"testB": 2' in summary


def test_glas_repackaged(tmp_path, capsys):
    tree = make_glas_repack(tmp_path / "src")
    out = tmp_path / "out"
    datalist, stdout, _ = prepare_ok("glas", tree.root, out, capsys)
    assert "Train_Folder" in stdout
    check_datalist(datalist, tree, out)


def test_kvasir_official_split_folders(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src", layout="folders")
    out = tmp_path / "out"
    datalist, _, _ = prepare_ok("kvasir", tree.root, out, capsys)
    assert len(datalist["validation"]) == 2
    check_datalist(datalist, tree, out)


def test_kvasir_split_files(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src", layout="files")
    out = tmp_path / "out"
    datalist, stdout, _ = prepare_ok("kvasir", tree.root, out, capsys)
    assert "split files" in stdout
    check_datalist(datalist, tree, out)


def test_kvasir_split_dir_option(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src", layout="flat", n=5)
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "train.txt").write_text("cju00abc000\ncju01abc007\ncju02abc014\n")
    (splits / "test.txt").write_text("images/cju03abc021.jpg\ncju04abc028\n")
    datalist, _, _ = prepare_ok("kvasir", tree.root, tmp_path / "out", capsys, "--split-dir", splits)
    assert [i["id"] for i in datalist["test"]] == ["cju03abc021", "cju04abc028"]
    assert len(datalist["training"]) == 3


def test_kvasir_rgb_jpeg_masks_are_noisy_but_binarize_exactly(tmp_path, capsys):
    tree = make_kvasir(tmp_path / "src")
    mask = np.asarray(Image.open(tree.root / "masks" / "cju00abc000.jpg"))
    assert mask.ndim == 3 and len(np.unique(mask)) > 2  # JPEG noise
    out = tmp_path / "out"
    datalist, _, _ = prepare_ok("kvasir", tree.root, out, capsys)
    check_datalist(datalist, tree, out)


def test_cvc_tif_and_png_variants(tmp_path, capsys):
    tree = make_cvc(tmp_path / "src", variant="both")
    datalist, stdout, _ = prepare_ok("cvc-clinicdb", tree.root, tmp_path / "out", capsys)
    assert "(TIF)" in stdout
    assert all(i["image"].endswith(".tif") for i in datalist["training"])
    datalist, stdout, _ = prepare_ok("cvc-clinicdb", tree.root, tmp_path / "out2", capsys, "--variant", "png")
    assert "(PNG)" in stdout
    assert all(i["image"].endswith(".png") for i in datalist["training"])
    assert len(datalist["training"]) == 5


def test_cvc_png_only(tmp_path, capsys):
    tree = make_cvc(tmp_path / "src", variant="png")
    out = tmp_path / "out"
    datalist, _, _ = prepare_ok("cvc-clinicdb", tree.root, out, capsys)
    check_datalist(datalist, tree, out)


def test_pranet_test_sets_kept_apart(tmp_path, capsys):
    tree = make_pranet(tmp_path / "src")
    out = tmp_path / "out"
    datalist, _, _ = prepare_ok("pranet", tree.root, out, capsys)
    test_ids = {i["id"] for i in datalist["test"]}
    assert {i.split("/")[0] for i in test_ids} == {"CVC-300", "CVC-ClinicDB", "CVC-ColonDB", "ETIS-LaribPolypDB", "Kvasir"}
    train_images = {i["image"] for i in datalist["training"]}
    assert not train_images & {i["image"] for i in datalist["test"]}
    assert (out / "masks" / "test" / "ETIS-LaribPolypDB" / "1.png").is_file()
    # folds stratified by source: each fold gets Kvasir and CVC-ClinicDB items
    for fold in (0, 1):
        ids = [i["id"] for i in datalist["training"] if i["fold"] == fold]
        assert any(i.isdigit() for i in ids) and any(not i.isdigit() for i in ids)


def test_isic_segmentation_suffix_and_licence_files(tmp_path, capsys):
    tree = make_isic(tmp_path / "src")
    out = tmp_path / "out"
    datalist, stdout, _ = prepare_ok("isic2018", tree.root, out, capsys)
    assert [i["id"] for i in datalist["validation"]] == ["ISIC_0000005", "ISIC_0000006"]
    assert (out / "masks" / "training" / "ISIC_0000001.png").is_file()
    assert "LICENSE.txt" in stdout and "ATTRIBUTION.txt" in stdout


def test_ph2_nested_folders(tmp_path, capsys):
    tree = make_ph2(tmp_path / "src")
    out = tmp_path / "out"
    datalist, stdout, _ = prepare_ok("ph2", tree.root, out, capsys)
    assert [i["id"] for i in datalist["training"]] == ["IMD003", "IMD010", "IMD017", "IMD024", "IMD031"]
    assert "_roi" in stdout  # colour-class masks ignored, and said so
    # the PH2 Dataset images folder itself also works as --src
    datalist2, _, _ = prepare_ok("ph2", tree.root / "PH2Dataset" / "PH2 Dataset images", tmp_path / "out2", capsys)
    assert [i["id"] for i in datalist2["training"]] == [i["id"] for i in datalist["training"]]
