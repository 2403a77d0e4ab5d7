"""The DRIVE reader on a miniature DRIVE written in the official layout and file formats."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cnf_teach.data.drive import (
    DriveDataset,
    DriveFormatError,
    DriveImage,
    crop_back,
    drive_summary,
    pad_image,
    read_drive_split,
    write_drive_split,
)

H, W = 29, 23  # small and odd, like DRIVE's 584x565 (not a multiple of 4)


def _image(name: str, rng: np.random.Generator, second: bool = False) -> DriveImage:
    yy, xx = np.mgrid[0:H, 0:W]
    mask = ((yy - H / 2) ** 2 + (xx - W / 2) ** 2 < (0.45 * H) ** 2).astype(np.uint8)
    label = (rng.random((H, W)) < 0.15).astype(np.uint8) * mask
    label2 = ((label + (rng.random((H, W)) < 0.02)) > 0).astype(np.uint8) * mask if second else None
    return DriveImage(name, rng.integers(0, 256, (H, W, 3), dtype=np.uint8), label, mask, label2)


@pytest.fixture
def mini_drive(tmp_path):
    rng = np.random.default_rng(0)
    train = [_image(f"{21 + i}", rng) for i in range(3)]
    test = [_image(f"{1 + i:02d}", rng, second=True) for i in range(2)]
    write_drive_split(tmp_path, "training", train)
    write_drive_split(tmp_path, "test", test)
    return tmp_path, train, test


def test_layout_and_formats_are_drive_s(mini_drive):
    root, _, _ = mini_drive
    assert (root / "training/images/21_training.tif").is_file()
    assert (root / "training/1st_manual/21_manual1.gif").is_file()
    assert (root / "training/mask/21_training_mask.gif").is_file()
    assert (root / "test/images/01_test.tif").is_file()
    assert (root / "test/2nd_manual/01_manual2.gif").is_file()
    assert (root / "test/mask/01_test_mask.gif").is_file()
    with Image.open(root / "training/images/21_training.tif") as im:
        assert im.format == "TIFF" and im.mode == "RGB"
    with Image.open(root / "training/1st_manual/21_manual1.gif") as im:
        assert im.format == "GIF"
        assert set(np.unique(np.asarray(im.convert("L"))).tolist()) == {0, 255}


def test_round_trip_is_exact(mini_drive):
    root, train, test = mini_drive
    back = read_drive_split(root, "training")
    assert [b.name for b in back] == ["21", "22", "23"]
    for a, b in zip(train, back, strict=True):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.label, b.label)
        np.testing.assert_array_equal(a.mask, b.mask)
        assert b.label2 is None
    back = read_drive_split(root, "test")
    for a, b in zip(test, back, strict=True):
        np.testing.assert_array_equal(a.label2, b.label2)


def test_summary_figures(mini_drive, tmp_path):
    root, train, _ = mini_drive
    s = drive_summary(root)
    assert s["training"]["images"] == 3 and s["test"]["images"] == 2
    assert (s["training"]["height"], s["training"]["width"]) == (H, W)
    fov = sum(int(i.mask.sum()) for i in train)
    assert s["training"]["vessel_fraction_in_fov"] == pytest.approx(sum(int(i.label.sum()) for i in train) / fov)
    assert s["training"]["fov_fraction"] == pytest.approx(fov / (3 * H * W))


def test_missing_file_is_named(mini_drive):
    root, _, _ = mini_drive
    (root / "training/mask/22_training_mask.gif").unlink()
    with pytest.raises(DriveFormatError, match="22_training_mask.gif"):
        read_drive_split(root, "training")


def test_misnamed_file_is_named(mini_drive):
    root, _, _ = mini_drive
    (root / "training/images/22_training.tif").rename(root / "training/images/22_train.tif")
    with pytest.raises(DriveFormatError, match="22_train.tif"):
        read_drive_split(root, "training")


def test_corrupt_file_is_named(mini_drive):
    root, _, _ = mini_drive
    (root / "test/1st_manual/02_manual1.gif").write_bytes(b"GIF89a not really")
    with pytest.raises(DriveFormatError, match="02_manual1.gif"):
        read_drive_split(root, "test")


def test_non_binary_label_is_named(mini_drive):
    root, _, _ = mini_drive
    grey = np.full((H, W), 128, np.uint8)
    grey[0, 0] = 0
    grey[1, 1] = 255
    Image.fromarray(grey).save(root / "training/1st_manual/23_manual1.gif")
    with pytest.raises(DriveFormatError, match=r"23_manual1.gif is not binary"):
        read_drive_split(root, "training")


def test_wrong_size_label_is_named(mini_drive):
    root, _, _ = mini_drive
    Image.fromarray(np.zeros((H + 1, W), np.uint8)).save(root / "training/1st_manual/21_manual1.gif")
    with pytest.raises(DriveFormatError, match="21_manual1.gif"):
        read_drive_split(root, "training")


def test_missing_folder(tmp_path):
    with pytest.raises(DriveFormatError, match="images"):
        read_drive_split(tmp_path, "training")
    with pytest.raises(DriveFormatError, match="neither training"):
        drive_summary(tmp_path)


def test_pad_and_crop_back():
    t = torch.arange(2 * H * W, dtype=torch.float32).reshape(2, H, W)
    padded, box = pad_image(t, (32, 32))
    assert padded.shape == (2, 32, 32)
    assert padded.sum() == t.sum()  # zeros around
    assert torch.equal(crop_back(padded, box), t)
    with pytest.raises(ValueError, match="smaller"):
        pad_image(t, (16, 16))


def test_dataset_items(mini_drive):
    root, train, test = mini_drive
    ds = DriveDataset(root, "training", pad_to=64)
    item = ds[0]
    assert item["x"].shape == (3, 64, 64) and item["y"].shape == (1, 64, 64) and item["mask"].shape == (1, 64, 64)
    assert set(item["y"].unique().tolist()) <= {0.0, 1.0}
    box = tuple(item["box"].tolist())
    assert torch.equal(crop_back(item["y"][0], box), torch.from_numpy(train[0].label).float())
    assert torch.allclose(crop_back(item["x"], box), torch.from_numpy(train[0].image).permute(2, 0, 1) / 255.0)
    ds = DriveDataset(root, "test")  # pad to a multiple of 4 only
    assert ds[0]["x"].shape[1:] == (32, 24) and "y2" in ds[0]
    with pytest.raises(ValueError, match="divisible"):
        DriveDataset(root, "test", pad_to=30)
