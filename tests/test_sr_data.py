"""SR data: image folders, downsampled-ImageNet npz files, the bundled natural images, padding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from cnf_teach.data.imagenet import DownsampledImageNet, imagenet_files, save_imagenet_batch, write_imagenet_cache
from cnf_teach.data.imagenet_cache import CACHE_FOLDER, cache_paths
from cnf_teach.data.images import (
    SRImageDataset,
    SRImageFolder,
    crop_to,
    list_images,
    load_image,
    make_lr,
    modcrop,
    pad_to_multiple,
)
from cnf_teach.data.imresize import imresize
from cnf_teach.data.natural import NATURAL_TEST, natural_sr_dataset


def _write_set(folder: Path) -> dict[str, np.ndarray]:
    """A small image set in four formats, one of them grayscale and one with alpha."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    imgs = {
        "a.png": rng.integers(0, 256, (41, 50, 3), dtype=np.uint8),
        "b.bmp": rng.integers(0, 256, (36, 36, 3), dtype=np.uint8),
        "c.tif": rng.integers(0, 256, (30, 45), dtype=np.uint8),  # grayscale
        "d.png": rng.integers(0, 256, (33, 34, 4), dtype=np.uint8),  # RGBA: alpha dropped
    }
    for name, arr in imgs.items():
        Image.fromarray(arr).save(folder / name)
    Image.fromarray(imgs["a.png"]).save(folder / "e.jpg", quality=95)
    (folder / "notes.txt").write_text("not an image")
    return imgs


# --- image folders --------------------------------------------------------------------------------


def test_folder_gives_modcropped_hr_and_matlab_lr(tmp_path):
    imgs = _write_set(tmp_path / "set")
    ds = SRImageFolder(tmp_path / "set", scale=2)
    assert ds.names == ["a.png", "b.bmp", "c.tif", "d.png", "e.jpg"]  # sorted, notes.txt ignored
    assert ds.gray == [False, False, True, False, False]
    assert len(ds) == 5
    lr, hr = ds[0]
    assert lr.dtype == hr.dtype == torch.uint8
    assert hr.shape == (3, 40, 50) and lr.shape == (3, 20, 25)
    expected_hr = torch.from_numpy(imgs["a.png"][:40]).permute(2, 0, 1)
    assert torch.equal(hr, expected_hr)
    assert torch.equal(lr, imresize(expected_hr, scale=0.5))
    lr, hr = ds[2]  # grayscale: three equal channels
    assert hr.shape == (3, 30, 44) and torch.equal(hr[0], hr[1]) and torch.equal(hr[0], hr[2])
    assert torch.equal(hr[0], torch.from_numpy(imgs["c.tif"][:30, :44]))
    _, hr = ds[3]  # RGBA: the colour channels
    assert torch.equal(hr, torch.from_numpy(imgs["d.png"][:32, :34, :3]).permute(2, 0, 1))


def test_scale_3_and_4_modcrop():
    img = np.random.default_rng(1).integers(0, 256, (50, 61, 3), dtype=np.uint8)
    for s, hr_shape in ((3, (3, 48, 60)), (4, (3, 48, 60))):
        lr, hr = SRImageDataset([img], scale=s)[0]
        assert hr.shape == hr_shape and lr.shape == (3, hr_shape[1] // s, hr_shape[2] // s)


def test_training_patches_are_aligned_crops():
    img = np.random.default_rng(2).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    ds = SRImageDataset([img], scale=2, patch_size=16, flips=False, repeat=5)
    full_lr, full_hr = ds.lr[0], ds.hr[0]
    assert len(ds) == 5
    seen = set()
    for i in range(len(ds)):
        lr, hr = ds[i]
        assert lr.shape == (3, 8, 8) and hr.shape == (3, 16, 16)
        hits = [
            (t, c)
            for t in range(full_lr.shape[1] - 7)
            for c in range(full_lr.shape[2] - 7)
            if torch.equal(full_lr[:, t : t + 8, c : c + 8], lr)
        ]
        assert hits, "the LR patch is a crop of the image's LR"
        t, c = hits[0]
        assert torch.equal(full_hr[:, 2 * t : 2 * t + 16, 2 * c : 2 * c + 16], hr)
        seen.add(hits[0])
    assert len(seen) > 1, "random positions"


def test_flips_are_applied_to_both_images():
    img = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    ds = SRImageDataset([img], scale=2, patch_size=16, flips=True, repeat=40)
    full_lr, full_hr = ds.lr[0], ds.hr[0]
    variants = set()
    for i in range(len(ds)):
        lr, hr = ds[i]
        for k, dims in enumerate(([], [-1], [-2], [-2, -1])):
            f_lr = full_lr.flip(dims) if dims else full_lr
            f_hr = full_hr.flip(dims) if dims else full_hr
            if torch.equal(lr, f_lr):
                assert torch.equal(hr, f_hr)
                variants.add(k)
                break
        else:
            pytest.fail("patch is not a flip of the image")
    assert variants == {0, 1, 2, 3}


def test_patches_collate_into_batches():
    img = np.random.default_rng(4).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    ds = SRImageDataset([img, img], scale=2, patch_size=24, repeat=4)
    lr, hr = next(iter(DataLoader(ds, batch_size=8, shuffle=True)))
    assert lr.shape == (8, 3, 12, 12) and hr.shape == (8, 3, 24, 24) and hr.dtype == torch.uint8


def test_indices_past_the_end_raise_so_plain_loops_stop():
    img = np.random.default_rng(4).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    for ds in (SRImageDataset([img, img], scale=2), SRImageDataset([img, img], scale=2, patch_size=24, repeat=3)):
        assert len(list(ds)) == len(ds)  # iteration by __getitem__ ends at the first IndexError
        assert torch.equal(ds[-1][1], ds[len(ds) - 1][1]) or ds.patch_size is not None  # negative indices count back
        with pytest.raises(IndexError, match="out of range"):
            ds[len(ds)]


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        SRImageFolder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"empty.*holds no image"):
        SRImageFolder(tmp_path / "empty")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(ValueError, match="not a folder"):
        list_images(tmp_path / "file.png")
    bad = tmp_path / "bad"
    _write_set(bad)
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ValueError, match=r"broken\.png.*corrupt"):
        SRImageFolder(bad)
    small = tmp_path / "small"
    small.mkdir()
    Image.fromarray(np.zeros((20, 60, 3), np.uint8)).save(small / "tiny.png")
    with pytest.raises(ValueError, match=r"tiny\.png is 20x60, smaller than the patch size 32"):
        SRImageFolder(small, scale=2, patch_size=32)
    with pytest.raises(ValueError, match="multiple of the scale"):
        SRImageFolder(small, scale=2, patch_size=15)


def test_sixteen_bit_images_are_rejected(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(ValueError, match="8-bit"):
        load_image(tmp_path / "deep.png")


def test_make_lr_needs_a_multiple():
    with pytest.raises(ValueError, match="modcrop"):
        make_lr(torch.zeros(3, 9, 8, dtype=torch.uint8), 2)
    assert modcrop(torch.zeros(3, 9, 11), 4).shape == (3, 8, 8)


def test_pad_to_multiple_and_crop_back():
    x = torch.randint(0, 256, (2, 3, 37, 50), dtype=torch.uint8)
    padded, size = pad_to_multiple(x, 8)
    assert padded.shape == (2, 3, 40, 56) and size == (37, 50) and padded.dtype == torch.uint8
    assert torch.equal(crop_to(padded, size), x)
    assert torch.equal(padded[..., 39, :50], x[..., 36, :])  # bottom rows repeat the last row
    assert torch.equal(padded[..., :37, 55], x[..., :, 49])  # right columns repeat the last column
    zeros, size = pad_to_multiple(x, 8, mode="zeros")
    assert zeros.shape == padded.shape and torch.equal(crop_to(zeros, size), x)
    assert zeros[..., 37:, :].eq(0).all() and zeros[..., 50:].eq(0).all()
    with pytest.raises(ValueError, match="mode"):
        pad_to_multiple(x, 8, mode="reflect")
    same, size = pad_to_multiple(x[..., :32, :48], 16)
    assert same.shape[-2:] == (32, 48) and size == (32, 48)


# --- downsampled ImageNet -------------------------------------------------------------------------


def _write_imagenet(folder: Path, side: int, counts: dict[str, int]) -> dict[str, np.ndarray]:
    """Files exactly as Chrabaszcz et al. publish them: data [N, 3*S*S] uint8 (R plane, G, B), labels, mean."""
    rng = np.random.default_rng(5)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for stem, n in counts.items():
        hwc = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)  # images as H x W x C
        planes = [hwc[..., c].reshape(n, side * side) for c in range(3)]
        data = np.concatenate(planes, axis=1)  # [N, 3*S*S]: all of red, then green, then blue
        extra = {"mean": data.mean(0)} if stem.startswith("train") else {}
        np.savez(folder / f"{stem}.npz", data=data, labels=list(rng.integers(1, 1001, n)), **extra)
        out[stem] = hwc
    return out


def test_downsampled_imagenet_reads_the_published_layout(tmp_path):
    stems = {"train_data_batch_1": 5, "train_data_batch_2": 4, "train_data_batch_10": 3, "val_data": 6}
    written = _write_imagenet(tmp_path, 16, stems)
    assert [p.name for p in imagenet_files(tmp_path, "train")] == [
        "train_data_batch_1.npz",
        "train_data_batch_2.npz",
        "train_data_batch_10.npz",
    ]
    ds = DownsampledImageNet(tmp_path, split="train", scale=2, holdout=0)
    assert len(ds) == 12 and ds.resolution == 16
    order = np.concatenate(
        [written["train_data_batch_1"], written["train_data_batch_2"], written["train_data_batch_10"]]
    )
    for i in (0, 4, 5, 8, 9, 11):
        lr, hr = ds[i]
        assert hr.dtype == lr.dtype == torch.uint8 and hr.shape == (3, 16, 16) and lr.shape == (3, 8, 8)
        assert torch.equal(hr, torch.from_numpy(order[i]).permute(2, 0, 1))
        assert torch.equal(lr, imresize(hr, scale=0.5))
    val = DownsampledImageNet(tmp_path, split="val", scale=4)
    lr, hr = val[5]
    assert len(val) == 6 and lr.shape == (3, 4, 4)
    assert torch.equal(hr, torch.from_numpy(written["val_data"][5]).permute(2, 0, 1))
    assert len(DownsampledImageNet(tmp_path, max_images=7)) == 7
    with pytest.raises(IndexError):
        ds.hr(12)


def test_downsampled_imagenet_holds_out_training_images_for_validation(tmp_path):
    """§5.1: ImageNet's validation file is the test set; training images are held out for validation."""
    _write_imagenet(tmp_path, 8, {"train_data_batch_1": 30, "train_data_batch_2": 20, "val_data": 4})
    train = DownsampledImageNet(tmp_path, "train", holdout=5)
    held = DownsampledImageNet(tmp_path, "holdout", holdout=5)
    everything = DownsampledImageNet(tmp_path, "train", holdout=0)
    assert (len(train), len(held), len(everything)) == (45, 5, 50)
    key = {everything.hr(i).numpy().tobytes(): i for i in range(50)}
    train_ids = {key[train.hr(i).numpy().tobytes()] for i in range(45)}
    held_ids = {key[held.hr(i).numpy().tobytes()] for i in range(5)}
    assert not train_ids & held_ids and len(train_ids | held_ids) == 50
    assert held_ids == {
        key[DownsampledImageNet(tmp_path, "holdout", holdout=5).hr(i).numpy().tobytes()] for i in range(5)
    }
    assert held_ids != {
        key[DownsampledImageNet(tmp_path, "holdout", holdout=5, holdout_seed=1).hr(i).numpy().tobytes()]
        for i in range(5)
    }
    assert held_ids != set(range(45, 50))  # a random choice, not the last files' tail
    assert len(DownsampledImageNet(tmp_path, "holdout")) == 5  # 50 images: a tenth instead of 10,000
    assert len(DownsampledImageNet(tmp_path, "test")) == len(DownsampledImageNet(tmp_path, "val")) == 4
    with pytest.raises(ValueError, match="empty"):
        DownsampledImageNet(tmp_path, "holdout", holdout=0)
    with pytest.raises(ValueError, match="split must be"):
        DownsampledImageNet(tmp_path, "valid")


def test_save_imagenet_batch_round_trip(tmp_path):
    imgs = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    save_imagenet_batch(tmp_path / "val_data.npz", imgs)
    with np.load(tmp_path / "val_data.npz") as f:
        assert f["data"].shape == (4, 192) and f["data"].dtype == np.uint8
    ds = DownsampledImageNet(tmp_path, split="val")
    assert all(torch.equal(ds.hr(i), imgs[i]) for i in range(4))


def test_downsampled_imagenet_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        DownsampledImageNet(tmp_path / "nope")
    with pytest.raises(ValueError, match=r"no train_data_batch_\*\.npz"):
        DownsampledImageNet(tmp_path)
    np.savez(tmp_path / "val_data.npz", data=np.zeros((2, 100), np.uint8))
    with pytest.raises(ValueError, match="not 3\\*S\\*S"):
        DownsampledImageNet(tmp_path, split="val")
    np.savez(tmp_path / "val_data.npz", pixels=np.zeros((2, 12), np.uint8))
    with pytest.raises(ValueError, match="no 'data' array"):
        DownsampledImageNet(tmp_path, split="val")
    (tmp_path / "val_data.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        DownsampledImageNet(tmp_path, split="val")
    np.savez(tmp_path / "val_data.npz", data=np.zeros((2, 3 * 9 * 9), np.uint8))
    with pytest.raises(ValueError, match="scale dividing"):
        DownsampledImageNet(tmp_path, split="val", scale=2)


# --- bundled natural images -----------------------------------------------------------------------


def test_natural_images_run_offline():
    test = natural_sr_dataset("test", scale=2)
    assert test.names == list(NATURAL_TEST) and len(test) == 3
    assert test.gray == [False, True, True]  # chelsea, camera, coins
    lr, hr = test[0]
    assert hr.shape == (3, 300, 450) and lr.shape == (3, 150, 225) and hr.dtype == torch.uint8
    train = natural_sr_dataset("train", scale=4, patch_size=64, repeat=2)
    lr, hr = train[3]
    assert len(train) == 10 and lr.shape == (3, 16, 16) and hr.shape == (3, 64, 64)
    with pytest.raises(ValueError, match="unknown natural image"):
        natural_sr_dataset(names=["lena"])
    with pytest.raises(ValueError, match="split"):
        natural_sr_dataset("valid")


def test_cached_lr_images_equal_the_per_item_downscale(tmp_path):
    """cache_lr computes LR once per image (chunked); with random flips each item equals the on-the-fly one."""
    _write_imagenet(tmp_path, 16, {"train_data_batch_1": 30, "train_data_batch_2": 20})
    plain = DownsampledImageNet(tmp_path, "holdout", holdout=5, flips=True)
    cached = DownsampledImageNet(tmp_path, "holdout", holdout=5, flips=True, cache_lr=True)
    assert cached.lr_cache is not None and cached.lr_cache.shape == (5, 3, 8, 8)
    assert torch.equal(cached._downscale_all(chunk=2), cached.lr_cache)
    flipped = 0
    for i in range(len(plain)):
        for _ in range(4):
            torch.manual_seed(10 * i + _)
            lr, hr = plain[i]
            torch.manual_seed(10 * i + _)
            lr_c, hr_c = cached[i]
            assert torch.equal(hr, hr_c) and torch.equal(lr, lr_c)  # the flip commutes with the downscale
            flipped += int(not torch.equal(hr, plain.hr(i)))
    assert 0 < flipped < 20  # both branches ran


def _items(ds: DownsampledImageNet, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(seed)  # the same flips for both datasets
    return [ds[i] for i in range(len(ds))]


def test_memory_mapped_copies_give_the_same_items(tmp_path):
    """`sr prepare`'s copies: every split, with and without cached LR and flips, item for item the npz's."""
    _write_imagenet(tmp_path, 16, {"train_data_batch_1": 30, "train_data_batch_2": 20, "val_data": 7})
    kw = {"holdout": 5, "flips": True}
    before = {
        (split, lr): _items(DownsampledImageNet(tmp_path, split, cache_lr=lr, **kw))
        for split in ("train", "holdout", "val")
        for lr in (False, True)
    }
    files = write_imagenet_cache(tmp_path, scale=2, chunk=8)
    assert [p.name for p in files] == ["train_data_batch_1.npz", "train_data_batch_2.npz", "val_data.npz"]
    for (split, lr), items in before.items():
        ds = DownsampledImageNet(tmp_path, split, cache_lr=lr, **kw)
        assert all(isinstance(b, np.memmap) for b in ds.batches)  # read from the page cache, not RAM
        assert (ds.lr_batches is not None) == lr and ds.lr_cache is None  # LR read, not recomputed
        got = _items(ds)
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(items, got, strict=True))
    capped = DownsampledImageNet(tmp_path, "train", max_images=35, holdout=0, cache_lr=True)
    assert len(capped) == 35 and len(capped.lr_batches[1]) == 5
    plain = DownsampledImageNet(tmp_path, "val", mmap=False)
    assert not any(isinstance(b, np.memmap) for b in plain.batches)


def test_memory_mapped_dataset_pickles_as_file_names(tmp_path):
    """Workers started by spawn get the file and length of each map, not a copy of the images."""
    import pickle

    _write_imagenet(tmp_path, 32, {"train_data_batch_1": 64})
    write_imagenet_cache(tmp_path, scale=2)
    ds = DownsampledImageNet(tmp_path, "train", holdout=0, cache_lr=True, max_images=50)
    blob = pickle.dumps(ds)
    assert len(blob) < 3 * 32 * 32 * 10  # far less than the 50 images it serves
    copy = pickle.loads(blob)
    assert isinstance(copy.batches[0], np.memmap) and len(copy) == 50
    assert all(torch.equal(a, b) for i in range(50) for a, b in zip(ds[i], copy[i], strict=True))


def test_out_of_date_or_partial_copies_are_ignored(tmp_path, caplog):
    _write_imagenet(tmp_path, 16, {"train_data_batch_1": 12})
    write_imagenet_cache(tmp_path, scale=2)
    assert (tmp_path / CACHE_FOLDER).is_dir()
    # The npz file changes (other images, another size): its copy no longer counts.
    save_imagenet_batch(tmp_path / "train_data_batch_1.npz", np.zeros((13, 3, 16, 16), dtype=np.uint8))
    with caplog.at_level("WARNING"):
        ds = DownsampledImageNet(tmp_path, "train", holdout=0)
    assert "out of date" in caplog.text and len(ds) == 13 and not isinstance(ds.batches[0], np.memmap)
    # A copy interrupted before its record was written is never used; prepare resumes it.
    write_imagenet_cache(tmp_path, scale=2)
    cache_paths(tmp_path / "train_data_batch_1.npz", 2)[2].unlink()
    assert not isinstance(DownsampledImageNet(tmp_path, "train", holdout=0).batches[0], np.memmap)
    write_imagenet_cache(tmp_path, scale=2)
    assert isinstance(DownsampledImageNet(tmp_path, "train", holdout=0).batches[0], np.memmap)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no train_data_batch"):
        write_imagenet_cache(tmp_path / "empty")
