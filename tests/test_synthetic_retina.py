"""Synthetic retinas: DRIVE's layout, plausible statistics, and vessels that look like vessels."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from skimage import filters

from cnf_teach.data.drive import read_drive_split
from cnf_teach.data.synthetic_retina import RetinaConfig, make_synthetic_drive, synthetic_retina
from cnf_teach.metrics import precision_recall


def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula."""
    ranks = np.argsort(np.argsort(scores)) + 1.0
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_written_in_drive_layout_and_reproducible(tmp_path):
    cfg = RetinaConfig(height=40, width=36)
    make_synthetic_drive(tmp_path / "a", num_train=2, num_test=2, config=cfg, seed=3)
    make_synthetic_drive(tmp_path / "b", num_train=2, num_test=2, config=cfg, seed=3)
    train = read_drive_split(tmp_path / "a", "training")
    test = read_drive_split(tmp_path / "a", "test")
    assert [i.name for i in train] == ["21", "22"] and [i.name for i in test] == ["01", "02"]
    assert train[0].image.shape == (40, 36, 3) and all(i.label2 is not None for i in test)
    again = read_drive_split(tmp_path / "b", "training")
    assert np.array_equal(train[1].image, again[1].image) and np.array_equal(train[1].label, again[1].label)
    assert not np.array_equal(train[0].label, train[1].label)


def test_statistics_are_fundus_like():
    rng = np.random.default_rng(0)
    images = [synthetic_retina(RetinaConfig(height=128, width=128), rng, second_grader=True) for _ in range(4)]
    for im in images:
        fov = im.mask > 0
        assert 0.6 < fov.mean() < 0.75  # a disc of radius 0.47 of the side
        assert not (im.label & ~fov).any()  # no vessel outside the field of view
        vessels = im.label[fov].mean()
        assert 0.04 < vessels < 0.2, vessels  # DRIVE: about 12% of the FOV
        green = im.image[..., 1].astype(float)
        assert green[im.label > 0].mean() < green[fov & (im.label == 0)].mean() - 8  # vessels are dark in green
        red = im.image[..., 0].astype(float)
        assert red[fov].mean() > green[fov].mean()  # a red-orange fundus
        # A tree: most vessel pixels hang together (8-connectivity).
        labelled, n = ndimage.label(im.label, structure=np.ones((3, 3)))
        sizes = np.bincount(labelled.ravel())[1:]
        assert sizes.max() > 0.6 * sizes.sum(), (n, sizes.max(), sizes.sum())
        # The second grader agrees largely, not perfectly.
        p, r = precision_recall(im.label2, im.label, im.mask)
        f = 2 * p * r / (p + r)
        assert 0.6 < f < 0.99, (p, r)


def test_vesselness_filter_finds_the_labelled_vessels():
    """Frangi's vesselness on the green channel ranks labelled vessel pixels above background."""
    rng = np.random.default_rng(1)
    aucs = []
    for _ in range(3):
        im = synthetic_retina(RetinaConfig(height=128, width=128), rng)
        fov = ndimage.binary_erosion(im.mask > 0, iterations=3)
        v = filters.frangi(im.image[..., 1] / 255.0, sigmas=[1, 1.5, 2], black_ridges=True)
        aucs.append(_auc(v[fov], im.label[fov] > 0))
    assert min(aucs) > 0.8, aucs


def test_a_model_trained_on_them_finds_vessels_in_a_real_fundus(tmp_path):
    """Trained on synthetic retinas only, the factored model's map of skimage.data.retina() follows Frangi's vesselness.

    The control is the photograph's own darkness (inverted green channel), which does not:
    the model responds to vessels, not to dark pixels.
    """
    from cnf_teach.data.augment import JointAugment
    from cnf_teach.data.drive import DriveDataset
    from cnf_teach.vessels import SegBaseline, SegConfig, real_retina, seg_loss

    root = make_synthetic_drive(tmp_path, num_train=12, num_test=0, config=RetinaConfig(height=48, width=48))
    loader = torch.utils.data.DataLoader(DriveDataset(root, "training", augment=JointAugment()), batch_size=4)
    model = SegBaseline(SegConfig.tiny())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(50):  # 150 steps
        for batch in loader:
            loss, _ = seg_loss(model, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
    x, fov = real_retina(96)
    green = x[0, 1].numpy()
    vesselness = filters.frangi(green, sigmas=[1, 1.5, 2], black_ridges=True)
    response = model.soft_map(x)[0, 0].numpy()
    r_model = np.corrcoef(response[fov], vesselness[fov])[0, 1]
    r_dark = np.corrcoef(-green[fov], vesselness[fov])[0, 1]
    assert r_model > 0.45 and r_model > r_dark + 0.3, (r_model, r_dark)
