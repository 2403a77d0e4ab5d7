"""Synthetic retinas: DRIVE's layout, plausible statistics, vessels that look like vessels, and a random
annotation process whose two floors (entropy and factorized) match their closed forms."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import torch
from scipy import ndimage
from skimage import filters

from cnf_teach.data.drive import read_drive_split
from cnf_teach.data.synthetic_retina import (
    AnnotationProcess,
    RetinaConfig,
    annotation_floors,
    draw_retina,
    make_synthetic_drive,
    read_floors,
    synthetic_retina,
)
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


class _FactoredProbe(torch.nn.Module):
    """A small factored segmenter used as a probe: Table 4's features at full, half and quarter resolution,
    decoded back to full resolution (the project's baseline before it became the flow run feed-forward)."""

    def __init__(self) -> None:
        from cnf_teach.nets.vgg import InstanceNormCouplingNet, VGGFeatures

        super().__init__()
        self.features = VGGFeatures(3, (8, 16, 16))
        self.up1 = InstanceNormCouplingNet(32, 16, 16)
        self.up0 = InstanceNormCouplingNet(8 + 16, 1, 16)
        for net in (self.up1, self.up0):  # a classifier needs a live last layer
            torch.nn.init.kaiming_uniform_(net[-1].weight, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        full, (h0, h1) = self.features.all_features(x)
        u = self.up1(torch.cat([h0, F.interpolate(h1, size=h0.shape[2:], mode="nearest")], dim=1))
        return self.up0(torch.cat([full, F.interpolate(u, size=full.shape[2:], mode="nearest")], dim=1))


def test_a_model_trained_on_them_finds_vessels_in_a_real_fundus(tmp_path):
    """Trained on synthetic retinas only, a factored segmenter's map of skimage.data.retina() follows Frangi's
    vesselness.

    The control is the photograph's own darkness (inverted green channel), which does not:
    the model responds to vessels, not to dark pixels. History of the bar: 0.45 with the first
    generator's deterministic labels (0.46 measured), 0.40 once annotations became random given the
    photograph (0.435 measured at 48 px), 0.35 now that a grader draws only branches the photograph
    shows (``RetinaConfig.min_snr``): the faintest branches, which Frangi's filter still finds in the
    real photograph, are no longer labelled, and the probe follows them less (measured after these
    150 steps: 0.388 at 64 px, 0.297 at 96 px, 0.233 at 48 px, where the cut removes the most
    branches; the margin over the darkness control, 0.02, is unchanged). The probe is a small
    full-resolution decoder on Table 4's features: the library's baseline, now the vessel flow run
    feed-forward, reaches its pixels through features pooled to half resolution and scored 0.26
    after 150 steps at 48 px, which says more about that architecture at this size than about the
    retinas. The bar is on the mean of four probes (data seeds and initialisations 0-3): one probe's
    correlation spreads by about 0.05 with the seed (six seeds: 0.33-0.46 with the generator before
    graders judged a branch by the contrast the photograph shows along it, 0.31-0.43 after; means
    0.372 and 0.363), so a single probe passed or failed the bar by chance under either generator.
    Measured means of these four: 0.372 before, 0.360 after.
    """
    from cnf_teach.baselines import weighted_bce_loss
    from cnf_teach.data.augment import JointAugment
    from cnf_teach.data.drive import DriveDataset
    from cnf_teach.vessels import real_retina

    x, fov = real_retina(96)
    green = x[0, 1].numpy()
    vesselness = filters.frangi(green, sigmas=[1, 1.5, 2], black_ridges=True)
    r_dark = np.corrcoef(-green[fov], vesselness[fov])[0, 1]
    r_models = []
    for seed in range(4):  # one probe is a coin toss around the bar (see above); four are not
        torch.manual_seed(seed)
        root = make_synthetic_drive(
            tmp_path / str(seed), num_train=12, num_test=0, config=RetinaConfig(height=64, width=64), seed=seed
        )
        loader = torch.utils.data.DataLoader(DriveDataset(root, "training", augment=JointAugment()), batch_size=4)
        model = _FactoredProbe()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(50):  # 150 steps
            for batch in loader:
                loss = weighted_bce_loss(batch["y"], model(batch["x"]), 0.9)
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            response = torch.sigmoid(model(x))[0, 0].numpy()
        r_models.append(np.corrcoef(response[fov], vesselness[fov])[0, 1])
    r_model = float(np.mean(r_models))
    assert r_model > 0.35 and r_model > r_dark + 0.3, (r_models, r_dark)


def _hb(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def _process(owner, level, parent, include, offsets=(0.0, 1.0, 0.0)) -> AnnotationProcess:
    owner = np.array(owner, np.int32)
    return AnnotationProcess(owner, np.array(level, np.int8), np.array(parent), np.array(include), offsets, owner > -2)


def _exhaustive(proc: AnnotationProcess) -> tuple[float, np.ndarray]:
    """H(Y) and the pixel marginals by enumerating every mask of a tiny process."""
    shape = proc.owner.shape
    total, entropy, marg = 0.0, 0.0, np.zeros(shape)
    for bits in itertools.product((0, 1), repeat=proc.owner.size):
        y = np.array(bits, np.uint8).reshape(shape)
        lp = proc.log2_prob(y)
        if lp == -math.inf:
            continue
        p = 2.0**lp
        total += p
        entropy -= p * lp
        marg += p * y
    assert abs(total - 1.0) < 1e-9, total  # log2_prob is a normalised law over masks
    return entropy, marg


def test_floors_of_one_faint_branch_have_the_binary_entropy():
    """A root pixel (always drawn) and a branch pixel drawn with probability p: both floors are H_b(p)."""
    p = 0.3
    proc = _process([[0, 1]], [[0, 0]], [-1, 0], [0.5, p])  # a root's probability is forced to 1
    floors = annotation_floors(proc)
    assert floors.num_pixels == 2 and math.isclose(floors.entropy_bits, _hb(p))
    assert math.isclose(floors.factorized_bits, _hb(p)) and math.isclose(floors.entropy_per_pixel, _hb(p) / 2)
    assert np.allclose(proc.pixel_marginals(), [[1.0, p]])


def test_a_branch_drawn_whole_costs_once_jointly_and_per_pixel_when_factorized():
    """Two pixels of one branch, fully correlated: joint floor H_b(p), factorized floor 2 H_b(p)."""
    p = 0.3
    proc = _process([[0, 1, 1]], [[0, 0, 0]], [-1, 0], [1.0, p])
    assert math.isclose(proc.entropy_bits(), _hb(p)) and math.isclose(proc.factorized_bits(), 2 * _hb(p))
    h, marg = _exhaustive(proc)
    assert math.isclose(h, _hb(p)) and np.allclose(marg, proc.pixel_marginals())


def test_width_offsets_and_nested_branches_match_closed_forms():
    """Offsets (a, b, c) on a root with pixels at levels 0, 1, 2; a child (p1) and grandchild (p2) of one pixel."""
    a, b, c = 0.2, 0.5, 0.3
    p1, p2 = 0.6, 0.25
    owner = [[0, 0, 0, 1, 2]]
    level = [[0, 1, 2, 0, 0]]
    proc = _process(owner, level, [-1, 0, 1], [1.0, p1, p2], (a, b, c))
    h_off = -sum(x * math.log2(x) for x in (a, b, c))
    # Joint: the root's offset, then the child's inclusion, then (if included) the grandchild's.
    # The child and grandchild own only level-0 pixels, so their offsets are invisible (no entropy).
    expected_h = h_off + _hb(p1) + p1 * _hb(p2)
    expected_f = _hb(b + c) + _hb(c) + _hb(p1) + _hb(p1 * p2)
    assert math.isclose(proc.entropy_bits(), expected_h) and math.isclose(proc.factorized_bits(), expected_f)
    h, marg = _exhaustive(proc)
    assert math.isclose(h, expected_h) and np.allclose(marg, proc.pixel_marginals())


def test_a_branch_that_cannot_show_its_inclusion_follows_its_parent():
    """A child owning only a pixel that its narrowest drawing misses (level 1) is drawn iff its parent is."""
    p = 0.4
    proc = _process([[0, 1, 2]], [[0, 0, 1]], [-1, 0, 1], [1.0, p, 0.1], (0.5, 0.5, 0.0))
    assert proc.include_prob[2] == 1.0
    expected = _hb(p) + p * 1.0  # the grandchild's offset (levels 0 | 1, 2) is one fair bit when drawn
    h, marg = _exhaustive(proc)
    assert math.isclose(proc.entropy_bits(), expected) and math.isclose(h, expected)
    assert np.allclose(marg, proc.pixel_marginals())


def test_monte_carlo_floors_agree_with_the_closed_forms_on_a_retina():
    rng = np.random.default_rng(0)
    retina = draw_retina(RetinaConfig(height=48, width=48), rng)
    floors = annotation_floors(retina.process, mc_samples=400, rng=rng)
    assert 0 < floors.entropy_bits < floors.factorized_bits  # a joint model has something to win
    assert abs(floors.entropy_bits_mc - floors.entropy_bits) < 4 * floors.entropy_bits_mc_se + 1e-9
    assert abs(floors.factorized_bits_mc - floors.factorized_bits) < 4 * floors.factorized_bits_mc_se + 1e-9
    assert floors.num_fov_pixels == int(retina.mask.sum())
    # Every draw is a whole-branch, whole-segment-offset annotation that the process can explain.
    for y in retina.process.sample(rng, 20):
        assert np.isfinite(retina.process.log2_prob(y))
    assert not np.isfinite(retina.process.log2_prob(np.ones((48, 48))))


def test_annotations_are_random_given_the_photograph_and_coherent_along_branches():
    rng = np.random.default_rng(2)
    retina = draw_retina(RetinaConfig(height=64, width=64), rng)
    a, b = retina.annotate(rng), retina.annotate(rng)
    assert not np.array_equal(a, b)
    proc = retina.process
    # Each segment's cell is drawn all-or-nothing at its core: never some core pixels without the others.
    for s in range(proc.num_segments):
        core = (proc.owner == s) & (proc.level == 0)
        if core.any():
            assert a[core].all() or not a[core].any()


def test_synth_writes_the_floors_of_every_test_image(tmp_path):
    cfg = RetinaConfig(height=40, width=40)
    root = make_synthetic_drive(tmp_path, num_train=1, num_test=3, config=cfg, seed=1, mc_samples=50)
    doc = read_floors(root)
    assert json.loads((root / "test" / "floors.json").read_text()) == doc
    assert [r["image"] for r in doc["images"]] == ["01", "02", "03"]
    for row in doc["images"]:
        assert 0 < row["entropy_per_fov_pixel"] < row["factorized_per_fov_pixel"]
        assert math.isclose(row["entropy_per_pixel"] * row["num_pixels"], row["entropy_bits"])
        assert abs(row["entropy_bits_mc"] - row["entropy_bits"]) < 5 * row["entropy_bits_mc_se"] + 1e-9
    assert doc["mean"]["entropy_per_pixel"] < doc["mean"]["entropy_per_fov_pixel"]


def test_every_branch_a_grader_may_draw_is_shown_by_the_photograph():
    """Branches too faint to see through the noise are cut from the tree, with their descendants: the
    photograph shows every segment the annotation process can draw, so the floors are entropies given x."""
    cut_any = 0
    for seed in range(4):
        cfg = RetinaConfig(height=64, width=64)
        pruned = draw_retina(cfg, np.random.default_rng(seed))
        whole = draw_retina(RetinaConfig(height=64, width=64, min_snr=0.0), np.random.default_rng(seed))
        assert pruned.snr.shape == (len(pruned.segments),) and (pruned.snr >= cfg.min_snr).all()
        assert len(whole.snr) == len(whole.segments)
        # The kept tree is the whole tree less its faint branches and all that grows from them.
        faint = whole.snr < cfg.min_snr
        cut = faint.copy()
        for s, seg in enumerate(whole.segments):
            cut[s] |= seg.parent >= 0 and cut[seg.parent]
        assert [seg.contrast for seg in pruned.segments] == [
            seg.contrast for seg, c in zip(whole.segments, cut, strict=True) if not c
        ]
        assert np.allclose(pruned.snr, whole.snr[~cut])
        cut_any += int(faint.any())
        # What the grader may draw, the photograph shows darker than the fundus right beside it.
        green = pruned.image[..., 1].astype(np.float64)
        proc = pruned.process
        for s in range(proc.num_segments):
            core = (proc.owner == s) & (proc.level == 0)
            ring = ndimage.binary_dilation(core, iterations=2) & ~(proc.owner >= 0) & (pruned.mask > 0)
            if core.sum() >= 3 and ring.sum() >= 3:
                assert green[core].mean() < green[ring].mean()
    assert cut_any > 0  # the rule did cut something in these retinas


def test_pruning_drops_a_faint_branch_and_everything_that_grows_from_it():
    from cnf_teach.data.vessel_tree import VesselSegment, prune_segments, segment_snr

    pts = np.array([[10.0, 4.0 + 0.5 * k] for k in range(20)])
    strong = VesselSegment(pts, np.full(20, 1.0), contrast=0.9)
    faint = VesselSegment(pts + [4, 0], np.full(20, 0.5), contrast=0.02, parent=0, depth=1)
    child = VesselSegment(pts + [8, 0], np.full(20, 0.5), contrast=0.9, parent=1, depth=2)
    sibling = VesselSegment(pts + [-4, 0], np.full(20, 0.8), contrast=0.8, parent=0, depth=1)
    tree = [strong, faint, child, sibling]
    snr = segment_snr(tree, np.full((24, 24), 0.1), noise=0.015)
    assert snr[1] < 8 < min(snr[0], snr[2], snr[3])
    kept = prune_segments(tree, snr >= 8)
    # The bright child of the faint branch goes too: a grader never draws a branch hanging in the air.
    assert [s.contrast for s in kept] == [0.9, 0.8] and [s.parent for s in kept] == [-1, 0]


def test_pixel_noise_off_keeps_the_tree_and_the_annotations():
    """``pixel_noise=False`` (a diagnostic) leaves the same retina without its pixel noise: same tree, same
    annotation process, same later draws; the two photographs differ inside the FOV by noise of ``config.noise``."""
    cfg = RetinaConfig(height=64, width=64)
    noisy_rng, clean_rng = np.random.default_rng(5), np.random.default_rng(5)
    noisy, clean = draw_retina(cfg, noisy_rng), draw_retina(cfg, clean_rng, pixel_noise=False)
    assert np.array_equal(noisy.process.owner, clean.process.owner)
    assert np.array_equal(noisy.process.include_prob, clean.process.include_prob)
    assert np.array_equal(noisy.annotate(noisy_rng), clean.annotate(clean_rng))  # the streams stay in step
    inside = noisy.mask > 0
    diff = (noisy.image.astype(float) - clean.image.astype(float))[inside]  # [N, 3] in grey levels
    assert abs(diff.std() - cfg.noise * 255) < 0.25 * cfg.noise * 255 and abs(diff.mean()) < 0.5
    assert np.all(clean.image[~inside] == round(0.02 * 255))  # a flat dark surround


def test_a_branch_is_annotated_by_the_contrast_the_photograph_shows_along_it():
    """A grader's chance of drawing a branch is a function of what the photograph shows along it: the
    Weber contrast of the green channel on its centre line (``branch_contrast``), not the branch's hidden
    contrast parameter, which the photograph's exposure, colour and vessel absorption scale by a factor
    of up to two. Read off the noiseless photograph (branch darker than the fundus beside it, relative to
    that fundus), the contrast follows ``retina.contrast`` far more closely than the hidden ``visibility``
    (measured on these 4 retinas, 61 branches: correlation 0.85 against 0.69)."""
    cfg = RetinaConfig()
    measured, seen, hidden = [], [], []
    for seed in range(4):
        retina = draw_retina(cfg, np.random.default_rng(seed), pixel_noise=False)
        proc = retina.process
        # The inclusion law is the logistic of the seen contrast (roots and branches that cannot show
        # their inclusion are always drawn with their parent).
        free = np.array([s.parent >= 0 for s in retina.segments]) & (proc.include_prob < 1.0)
        expected = 1.0 / (1.0 + np.exp(-(retina.contrast - cfg.include_mid) / cfg.include_scale))
        assert free.any() and np.allclose(proc.include_prob[free], expected[free])
        green = retina.image[..., 1].astype(np.float64)
        drawn = ndimage.binary_dilation(proc.owner >= 0)
        for s, seg in enumerate(retina.segments):
            core = (proc.owner == s) & (proc.level == 0)
            ring = ndimage.binary_dilation(core, iterations=2) & ~drawn & (retina.mask > 0)
            if core.sum() < 6 or ring.sum() < 6:
                continue
            rows = np.clip(np.rint(seg.points[:, 0]).astype(int), 0, cfg.height - 1)
            cols = np.clip(np.rint(seg.points[:, 1]).astype(int), 0, cfg.width - 1)
            measured.append(1.0 - np.median(green[rows, cols]) / np.median(green[ring]))
            seen.append(retina.contrast[s])
            hidden.append(seg.visibility)
    r_seen, r_hidden = np.corrcoef(measured, seen)[0, 1], np.corrcoef(measured, hidden)[0, 1]
    assert len(measured) > 40 and r_seen > 0.8 and r_seen > r_hidden + 0.15, (len(measured), r_seen, r_hidden)
