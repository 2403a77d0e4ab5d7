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
    downscale_image,
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


def _palette_gif(levels: np.ndarray, grey: tuple[int, ...], path) -> None:
    """Write ``levels`` (palette indices) as a palette GIF whose entry i is the grey level ``grey[i]``."""
    im = Image.fromarray(levels.astype(np.uint8), mode="P")
    palette = []
    for g in grey:
        palette += [g, g, g]
    im.putpalette(palette + [0, 0, 0] * (256 - len(grey)))
    im.save(path)


def test_palette_gifs_with_two_levels_are_read(mini_drive):
    """Some DRIVE mirrors ship palette GIFs with the levels 3 and 253: read at the mid-level, like 0/255."""
    root, train, test = mini_drive
    _palette_gif(test[0].label2, (3, 253), root / "test/2nd_manual/01_manual2.gif")
    _palette_gif(1 - test[0].label, (253, 3), root / "test/1st_manual/01_manual1.gif")  # index 0 is the light level
    _palette_gif(test[0].mask, (3, 253), root / "test/mask/01_test_mask.gif")
    with Image.open(root / "test/2nd_manual/01_manual2.gif") as im:
        assert im.mode == "P"
        assert set(np.unique(np.asarray(im.convert("L"))).tolist()) == {3, 253}
    back = read_drive_split(root, "test")[0]
    np.testing.assert_array_equal(back.label2, test[0].label2)
    np.testing.assert_array_equal(back.label, test[0].label)
    np.testing.assert_array_equal(back.mask, test[0].mask)
    assert drive_summary(root)["test"]["images"] == 2


def test_other_two_level_encodings_are_read(mini_drive):
    root, train, _ = mini_drive
    Image.fromarray(train[1].label).save(root / "training/1st_manual/22_manual1.gif")  # 0/1 grey
    Image.fromarray(train[2].label * 100 + 20).save(root / "training/1st_manual/23_manual1.gif")  # 20/120 grey
    back = read_drive_split(root, "training")
    np.testing.assert_array_equal(back[1].label, train[1].label)
    np.testing.assert_array_equal(back[2].label, train[2].label)


def test_single_level_annotations(mini_drive):
    root, _, _ = mini_drive
    Image.fromarray(np.zeros((H, W), np.uint8)).save(root / "training/1st_manual/21_manual1.gif")
    Image.fromarray(np.full((H, W), 255, np.uint8)).save(root / "training/mask/21_training_mask.gif")
    back = read_drive_split(root, "training")[0]
    assert back.label.sum() == 0 and back.mask.min() == 1
    Image.fromarray(np.full((H, W), 60, np.uint8)).save(root / "training/1st_manual/21_manual1.gif")
    with pytest.raises(DriveFormatError, match=r"21_manual1.gif holds the single level 60"):
        read_drive_split(root, "training")


def test_non_binary_label_is_named(mini_drive):
    root, _, _ = mini_drive
    grey = np.full((H, W), 128, np.uint8)
    grey[0, 0] = 0
    grey[1, 1] = 255
    Image.fromarray(grey).save(root / "training/1st_manual/23_manual1.gif")
    with pytest.raises(DriveFormatError, match=r"23_manual1.gif is not binary: it holds 3 levels") as err:
        read_drive_split(root, "training")
    assert "\n" not in str(err.value)
    # A palette GIF with three levels is refused as well.
    _palette_gif(np.arange(H * W).reshape(H, W) % 3, (3, 128, 253), root / "training/mask/22_training_mask.gif")
    Image.fromarray(np.zeros((H, W), np.uint8)).save(root / "training/1st_manual/23_manual1.gif")
    with pytest.raises(DriveFormatError, match=r"22_training_mask.gif is not binary"):
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


def test_downscale_halves_images_and_keeps_annotations_binary(mini_drive):
    root, train, _ = mini_drive
    small = downscale_image(train[0], 2)
    assert small.image.shape == (H // 2, W // 2, 3) and small.label.shape == small.mask.shape == (H // 2, W // 2)
    assert set(np.unique(small.label).tolist()) <= {0, 1} and small.label2 is None
    # Area filter: each output pixel is the mean of a 2x2 block of the photograph.
    block = train[0].image[:2, :2].astype(np.float64).mean((0, 1))
    np.testing.assert_allclose(small.image[0, 0], block, atol=1.0)
    # A pixel is foreground when at least half of its block was.
    full = np.zeros((4, 4), np.uint8)
    full[0, :2] = 1  # half of the top-left block
    full[2, 2] = 1  # a quarter of the bottom-right block
    tiny = downscale_image(DriveImage("01", np.zeros((4, 4, 3), np.uint8), full, full), 2)
    np.testing.assert_array_equal(tiny.label, [[1, 0], [0, 0]])
    assert downscale_image(train[0], 1) is train[0]
    with pytest.raises(ValueError, match=">= 1"):
        downscale_image(train[0], 0.5)
    ds = DriveDataset(root, "test", downscale=2)
    assert ds[0]["x"].shape[1:] == (16, 12) and ds[0]["y2"].shape[1:] == (16, 12)  # 14x11 padded to multiples of 4


def test_random_crops_for_training(mini_drive):
    root, train, _ = mini_drive
    ds = DriveDataset(root, "training", crop=8, seed=0)
    whole = DriveDataset(root, "training")
    items = [ds[0] for _ in range(20)]
    assert all(it["x"].shape == (3, 8, 8) and it["y"].shape == (1, 8, 8) for it in items)
    assert tuple(items[0]["box"].tolist()) == (0, 0, 8, 8)
    # Every crop is a window of the whole padded image, and the windows move.
    canvas = whole[0]["x"]
    found = set()
    for it in items:
        hits = [
            (top, left)
            for top in range(canvas.shape[1] - 7)
            for left in range(canvas.shape[2] - 7)
            if torch.equal(canvas[:, top : top + 8, left : left + 8], it["x"])
        ]
        assert hits
        found.add(hits[0])
    assert len(found) > 1
    # Seeded: the same windows again.
    again = DriveDataset(root, "training", crop=8, seed=0)
    assert all(torch.equal(again[0]["x"], it["x"]) for it in items)
    # A crop larger than the image pads first.
    assert DriveDataset(root, "training", crop=40)[0]["x"].shape == (3, 40, 40)
    with pytest.raises(ValueError, match="multiple of 4"):
        DriveDataset(root, "training", crop=10)
