"""Joint augmentation: the same map moves image, label and mask; labels stay binary; mirror images are exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cnf_teach.data.augment import FlipAugment, JointAugment, affine_matrix, warp


def _blob(size: int = 33) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    y = torch.zeros(1, size, size)
    y[0, 10:14, 20:24] = 1.0  # an off-centre square
    x = torch.cat([y, 0.5 * y, torch.zeros_like(y)]) + 0.1
    mask = torch.zeros(1, size, size)
    mask[0, 4:-4, 4:-4] = 1.0
    return x, y, mask


def test_rotation_by_90_degrees_is_exact():
    _, y, _ = _blob()
    rotated = warp(y, affine_matrix(90.0, 1.0, 0.0), "nearest")
    assert torch.equal(rotated, torch.rot90(y, k=1, dims=(1, 2))) or torch.equal(
        rotated, torch.rot90(y, k=-1, dims=(1, 2))
    )


def test_identity_is_identity():
    x, _, _ = _blob()
    assert torch.allclose(warp(x, affine_matrix(0.0, 1.0, 0.0)), x, atol=1e-6)


def test_matrix_parameters():
    m = affine_matrix(30.0, 1.2, 0.0)
    assert torch.det(m).item() == pytest.approx(1.44, rel=1e-5)  # isotropic scale squared
    m = affine_matrix(0.0, 1.0, 10.0)
    assert m[0, 1].item() == pytest.approx(math.tan(math.radians(10.0)), rel=1e-5)
    with pytest.raises(ValueError, match="positive"):
        affine_matrix(0.0, 0.0, 0.0)


def test_joint_augment_keeps_labels_binary_and_aligned():
    aug = JointAugment()
    g = torch.Generator().manual_seed(0)
    x, y, mask = _blob(65)
    agreements = []
    for _ in range(20):
        xa, ya, ma = aug(x, y, mask, g)
        assert xa.shape == x.shape and ya.shape == y.shape and ma.shape == mask.shape
        assert set(ya.unique().tolist()) <= {0.0, 1.0}
        assert set(ma.unique().tolist()) <= {0.0, 1.0}
        # The red channel of x is 0.1 + label: the bilinearly warped image must follow the label.
        inside = xa[0][ya[0] > 0]
        outside = xa[0][(ya[0] == 0) & (xa[0] > 0.05)]
        agreements.append(inside.mean().item() - outside.mean().item())
        # Area of the square changes by the scale squared, within [0.8^2, 1.2^2] (plus pixelation).
        assert 0.4 * 16 <= ya.sum().item() <= 1.9 * 16
    assert min(agreements) > 0.5


def test_parameter_distributions():
    aug = JointAugment()
    g = torch.Generator().manual_seed(1)
    dets, rots = [], []
    for _ in range(400):
        m = aug.sample_matrix(g)
        dets.append(torch.det(m).item())
        rots.append(math.degrees(math.atan2(m[1, 0].item(), m[0, 0].item())) % 360)
    scales = np.sqrt(dets)  # det = scale^2 (shear has det 1)
    assert scales.min() >= 0.8 - 1e-6 and scales.max() <= 1.2 + 1e-6
    assert np.histogram(rots, bins=4, range=(0, 360))[0].min() > 60  # the whole circle is used


def test_shape_mismatch_is_reported():
    x, y, mask = _blob()
    with pytest.raises(ValueError, match="share H and W"):
        JointAugment()(x, y[:, :-1], mask)


def test_batch_augmentation_equals_the_per_item_path_for_the_same_draws():
    x, y, mask = _blob()
    xs = torch.stack([x, x.flip(-1), 0.5 * x])  # [3, 3, H, W]
    ys, masks = torch.stack([y, y.flip(-1), y]), torch.stack([mask, mask, mask.flip(-2)])
    aug = JointAugment()
    g = torch.Generator().manual_seed(7)
    per_item = [aug(xs[i], ys[i], masks[i], g) for i in range(3)]
    g = torch.Generator().manual_seed(7)
    bx, by, bm = aug.batch(xs, ys, masks, g)
    assert torch.allclose(bx, torch.stack([p[0] for p in per_item]), atol=1e-6)
    assert torch.equal(by, torch.stack([p[1] for p in per_item]))  # nearest neighbour: still exact and binary
    assert torch.equal(bm, torch.stack([p[2] for p in per_item]))
    assert not torch.equal(by[0], by[2])  # each image got its own map


def _small_drive(folder, n: int = 4) -> None:
    """``n`` random 29 x 23 DRIVE-format training images in ``folder``."""
    from cnf_teach.data.drive import DriveImage, write_drive_split

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:29, 0:23]
    fov = (((yy - 14.5) ** 2 + (xx - 11.5) ** 2) < 13**2).astype(np.uint8)
    images = []
    for i in range(n):
        photo = rng.integers(0, 256, (29, 23, 3), dtype=np.uint8)
        images.append(DriveImage(f"{21 + i}", photo, ((rng.random((29, 23)) < 0.2) * fov).astype(np.uint8), fov))
    write_drive_split(folder, "training", images)


def test_device_drive_loader_equals_the_dataloader_path(tmp_path):
    """DRIVE on the device: the batch path (stacked images, warped per batch) equals the per-item CPU path."""
    from cnf_teach.data.drive import DeviceDriveLoader, DriveDataset

    _small_drive(tmp_path)
    for crop in (None, 16):
        dataset = DriveDataset(tmp_path, "training", augment=JointAugment(), seed=5, crop=crop)
        loader = DeviceDriveLoader(dataset, batch_size=2, device="cpu", seed=3)
        order = torch.randperm(4, generator=torch.Generator().manual_seed(3)).tolist()
        batches = list(loader)
        assert len(batches) == len(loader) == 2
        reference = DriveDataset(tmp_path, "training", augment=JointAugment(), seed=5, crop=crop)
        for b, batch in enumerate(batches):
            items = [reference[i] for i in order[2 * b : 2 * b + 2]]
            for key in ("x", "y", "mask", "box"):
                expected = torch.stack([item[key] for item in items])
                assert batch[key].shape == expected.shape
                assert torch.allclose(batch[key].float(), expected.float(), atol=1e-6), (crop, key)


def test_device_drive_loader_knows_its_share_before_the_process_group_exists(tmp_path, monkeypatch):
    """Under torchrun the loader's share (and so steps per epoch) comes from the environment.

    The training command plans its schedule from ``len(loader)`` before the engine joins the
    process group; a loader that only asked ``torch.distributed`` would count the whole set on
    every rank there, and its size check would pass a set too small for one batch per rank.
    """
    from cnf_teach.data.drive import DeviceDriveLoader, DriveDataset

    _small_drive(tmp_path, n=6)
    dataset = DriveDataset(tmp_path, "training", seed=5)
    assert not torch.distributed.is_initialized()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    loader = DeviceDriveLoader(dataset, batch_size=2, device="cpu", seed=3)
    assert len(loader) == 1  # 3 of the 6 images, one full batch of 2
    order = torch.randperm(6, generator=torch.Generator().manual_seed(3)).tolist()
    assert loader._indices() == order[1::2]  # this rank's interleaved share of the epoch's order
    with pytest.raises(ValueError, match="3 items for process 1 of 2, fewer than one batch of 4"):
        DeviceDriveLoader(dataset, batch_size=4, device="cpu")
    # Explicit arguments win over the environment.
    alone = DeviceDriveLoader(dataset, batch_size=4, device="cpu", rank=0, world_size=1)
    assert len(alone) == 1 and len(alone._indices()) == 6
    with pytest.raises(ValueError, match="rank 2 of 2"):
        DeviceDriveLoader(dataset, batch_size=1, device="cpu", rank=2, world_size=2)


def test_flip_augment_shows_each_of_the_four_mirror_images_exactly():
    """Flips move pixels without resampling: image, label and mask move alike, and all four views occur."""
    x, y, mask = _blob(9)
    x = x + torch.rand_like(x)  # no symmetry to hide a wrong axis
    x_before, y_before = x.clone(), y.clone()
    gen = torch.Generator().manual_seed(0)
    views = {
        (False, False): (x, y),
        (True, False): (x.flip(-1), y.flip(-1)),
        (False, True): (x.flip(-2), y.flip(-2)),
        (True, True): (x.flip([-1, -2]), y.flip([-1, -2])),
    }
    seen = set()
    for _ in range(40):
        x2, y2, m2 = FlipAugment()(x, y, mask, gen)
        match = [k for k, (xv, yv) in views.items() if torch.equal(x2, xv)]
        assert len(match) == 1, "not a mirror image of the photograph"
        xv, yv = views[match[0]]
        assert torch.equal(y2, yv), "the label did not move with the photograph"
        mv = {(False, False): mask, (True, False): mask.flip(-1), (False, True): mask.flip(-2)}
        assert torch.equal(m2, mv.get(match[0], mask.flip([-1, -2])))
        seen.add(match[0])
    assert seen == set(views)
    assert torch.equal(x, x_before) and torch.equal(y, y_before)  # inputs untouched
    # Turning an axis off keeps it: only left-right mirror images.
    for _ in range(10):
        x2, _, _ = FlipAugment(vertical=False)(x, y, mask, gen)
        assert torch.equal(x2, x) or torch.equal(x2, x.flip(-1))


def test_flip_augment_batch_equals_the_per_item_path():
    x = torch.rand(3, 3, 8, 6)
    y = (torch.rand(3, 1, 8, 6) > 0.5).float()
    mask = torch.ones(3, 1, 8, 6)
    xb, yb, mb = FlipAugment().batch(x, y, mask, torch.Generator().manual_seed(4))
    gen = torch.Generator().manual_seed(4)
    for i in range(3):
        xi, yi, mi = FlipAugment()(x[i], y[i], mask[i], gen)
        assert torch.equal(xb[i], xi) and torch.equal(yb[i], yi) and torch.equal(mb[i], mi)
    with pytest.raises(ValueError, match="share H and W"):
        FlipAugment()(x[0], y[0, :, :4], mask[0])
