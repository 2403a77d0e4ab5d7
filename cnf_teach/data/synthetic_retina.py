"""Synthetic fundus photographs with exact vessel ground truth: the offline stand-in for DRIVE.

DRIVE cannot be downloaded here, so the vessel-segmentation pipeline trains and is
tested on procedurally generated retinas written in DRIVE's own folder layout
(:func:`cnf_teach.data.drive.write_drive_split`). Each image has

- a circular field of view (FOV) on a dark background;
- uneven illumination: a bright centre falling off to the rim, a random tilt, a bright
  optic disc and a darker macula;
- an orange-red fundus colour with a smooth choroidal texture and pixel noise;
- vessel trees growing from the optic disc: four main arcades curving around the
  macula, then random-walk branches that bifurcate and thin out, with per-branch
  contrast (vessels are dark in the green and blue channels, faint in red, as in
  real photographs).

The ground truth marks every pixel within a vessel's radius (at least its centre
line). A second, "human" grader is simulated by redrawing the same tree with jittered
widths and without some of the thinnest branches, so that the test split has the
inter-observer disagreement DRIVE has.

These are not real retinas; they are realistic enough that a model trained on them
responds to the vessels of scikit-image's real fundus photograph
``skimage.data.retina()`` (measured in the tests and the reproduction benchmark).

References:
    Staal et al. Ridge-based vessel segmentation in color images of the retina. IEEE TMI 2004.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from .drive import DriveImage, write_drive_split

__all__ = ["RetinaConfig", "VesselSegment", "synthetic_retina", "make_synthetic_drive"]


@dataclass
class RetinaConfig:
    """Knobs of the generator; lengths are fractions of the image's shorter side.

    Attributes:
        height: Image height in pixels.
        width: Image width in pixels.
        fov_radius: Radius of the field of view.
        trunk_width: Radius of the main vessels at the optic disc (pixels = this x size, at least 0.9).
        min_width: Branches stop when thinner than this radius in pixels.
        branch_rate: Expected bifurcations along a length of vessel equal to the FOV radius.
        noise: Standard deviation of the pixel noise (in [0, 1] intensity).
        max_branches: Upper bound on the number of branches per tree.
    """

    height: int = 96
    width: int = 96
    fov_radius: float = 0.47
    trunk_width: float = 0.016
    min_width: float = 0.45
    branch_rate: float = 6.0
    noise: float = 0.015
    max_branches: int = 160


@dataclass
class VesselSegment:
    """A polyline piece of vessel: centre points ``[N, 2]`` (row, col), radii ``[N]``, contrast."""

    points: np.ndarray
    radii: np.ndarray
    contrast: float


def _grow_trees(cfg: RetinaConfig, rng: np.random.Generator, disc: np.ndarray, macula: np.ndarray) -> list:
    size = min(cfg.height, cfg.width)
    centre = np.array([cfg.height / 2, cfg.width / 2])
    radius = cfg.fov_radius * size
    step = 0.5
    r0 = max(cfg.trunk_width * size, 0.9)
    # Four arcades: up and down (curving toward the macula), and two shorter ones away from it.
    side = 1.0 if macula[1] >= disc[1] else -1.0  # macula right (+1) or left (-1) of the disc
    starts = []
    for vertical in (-1.0, 1.0):
        heading = math.atan2(vertical, side * 0.7)  # diagonal, toward the macula side
        curve = -vertical * side / (1.1 * radius)  # arc over and under the macula
        starts.append((heading, r0 * rng.uniform(0.9, 1.1), curve, rng.uniform(0.75, 1.0)))
        heading = math.atan2(vertical, -side * 0.8)
        starts.append((heading, r0 * rng.uniform(0.6, 0.8), 0.0, rng.uniform(0.6, 0.9)))
    stack = [(disc.copy(), h + rng.normal(0, 0.15), r, k, c) for h, r, k, c in starts]
    segments = []
    rate = cfg.branch_rate / radius  # bifurcations per pixel of length
    while stack and len(segments) < cfg.max_branches:
        pos, heading, r, curve, contrast = stack.pop()
        pts, radii = [], []
        length = 0.0
        while r >= cfg.min_width and length < 1.6 * radius:
            pts.append(pos.copy())
            radii.append(r)
            heading += curve * step + rng.normal(0.0, 0.06) * math.sqrt(step)
            pos = pos + step * np.array([math.sin(heading), math.cos(heading)])
            length += step
            r *= math.exp(-step / (1.2 * radius))  # slow thinning along the vessel
            if np.linalg.norm(pos - centre) > radius + 2 * r:
                break
            if rng.random() < rate * step and length > 3 * r0:
                child = r * rng.uniform(0.55, 0.8)
                angle = rng.uniform(0.45, 1.1) * rng.choice([-1.0, 1.0])
                stack.append((pos.copy(), heading + angle, child, rng.normal(0, 0.4 / radius), contrast * 0.95))
                r *= rng.uniform(0.85, 0.95)
                heading -= 0.3 * angle
        if len(pts) > 1:
            segments.append(VesselSegment(np.array(pts), np.array(radii), contrast))
    return segments


def _render(
    segments: list[VesselSegment], shape: tuple[int, int], width_jitter: float = 0.0, rng=None, drop_below: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise vessels: darkness ``[H, W]`` in [0, 1] (contrast x tube profile) and the binary label."""
    dark = np.zeros(shape, np.float32)
    label = np.zeros(shape, bool)
    for seg in segments:
        scale = 1.0 + (rng.normal(0, width_jitter) if width_jitter and rng is not None else 0.0)
        if seg.radii.max() * scale < drop_below:
            continue
        for (py, px), r in zip(seg.points, seg.radii * scale, strict=True):
            reach = int(math.ceil(r + 1.5))
            y0, y1 = max(int(py) - reach, 0), min(int(py) + reach + 2, shape[0])
            x0, x1 = max(int(px) - reach, 0), min(int(px) + reach + 2, shape[1])
            if y0 >= y1 or x0 >= x1:
                continue
            yy, xx = np.mgrid[y0:y1, x0:x1]
            d = np.hypot(yy - py, xx - px)
            # Anti-aliased disc times a tube profile: darkest on the centre line.
            cover = np.clip(r + 0.5 - d, 0.0, 1.0) * (0.65 + 0.35 * np.sqrt(np.clip(1 - (d / (r + 0.5)) ** 2, 0, 1)))
            window = dark[y0:y1, x0:x1]
            np.maximum(window, seg.contrast * cover * min(1.0, 0.55 + 0.45 * r), out=window)
            label[y0:y1, x0:x1] |= d <= max(r, 0.5)
    return dark, label


def synthetic_retina(
    config: RetinaConfig | None = None, rng: np.random.Generator | None = None, second_grader: bool = False
) -> DriveImage:
    """Draw one synthetic fundus photograph with its vessel label and FOV mask.

    Args:
        config: Generator settings (default :class:`RetinaConfig`).
        rng: NumPy random generator (seeded by the caller for reproducibility).
        second_grader: Also draw a second annotation with jittered widths.

    Returns:
        A :class:`~cnf_teach.data.drive.DriveImage` (name ``"00"``; the caller renames it).
    """
    cfg = config or RetinaConfig()
    rng = rng or np.random.default_rng()
    h, w = cfg.height, cfg.width
    size = min(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    centre = np.array([h / 2, w / 2])
    radius = cfg.fov_radius * size
    rho = np.hypot(yy - centre[0], xx - centre[1])
    mask = rho <= radius
    side = rng.choice([-1.0, 1.0])  # optic disc on the left or the right
    disc = centre + np.array([rng.uniform(-0.08, 0.08) * size, side * rng.uniform(0.22, 0.3) * size])
    macula = centre + np.array([rng.uniform(-0.05, 0.05) * size, -side * rng.uniform(0.02, 0.08) * size])
    segments = _grow_trees(cfg, rng, disc, macula)
    dark, label = _render(segments, (h, w))

    # Illumination: bright centre, vignetting, a random tilt, optic disc and macula.
    tilt = rng.normal(0, 0.12, size=2)
    illum = 0.45 + 0.55 * np.exp(-((rho / (1.05 * radius)) ** 2))
    illum *= 1.0 + tilt[0] * (yy - centre[0]) / radius + tilt[1] * (xx - centre[1]) / radius
    d_disc = np.hypot(yy - disc[0], xx - disc[1])
    d_mac = np.hypot(yy - macula[0], xx - macula[1])
    disc_r = rng.uniform(0.06, 0.085) * size
    illum = illum * (1.0 - 0.3 * np.exp(-((d_mac / (0.12 * size)) ** 2)))
    texture = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), sigma=max(1.0, size / 60)).astype(np.float32)
    texture /= texture.std() + 1e-8
    illum = illum * (1.0 + 0.04 * texture)

    # Colour, exposure and vessel contrast vary between photographs (and cameras): randomise them.
    base = np.array([0.86, 0.40, 0.17]) * rng.uniform(0.8, 1.2, size=3) * rng.uniform(0.75, 1.25)
    absorb = np.array([0.22, 0.62, 0.5]) * rng.uniform(0.6, 1.3)  # vessels: dark in green/blue
    img = illum[..., None] * base * (1.0 - dark[..., None] * absorb)
    disc_glow = np.exp(-((d_disc / disc_r) ** 4))[..., None] * np.array([0.35, 0.45, 0.3])
    img = img + disc_glow * (1.0 - 0.6 * dark[..., None])
    img = img + rng.normal(0, cfg.noise, img.shape)
    img = np.where(mask[..., None], img, 0.02 + rng.normal(0, cfg.noise / 3, img.shape))
    image = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    label = label & mask
    label2 = None
    if second_grader:
        _, label2 = _render(segments, (h, w), width_jitter=0.15, rng=rng, drop_below=cfg.min_width * 1.6)
        label2 = (label2 & mask).astype(np.uint8)
    return DriveImage("00", image, label.astype(np.uint8), mask.astype(np.uint8), label2)


def make_synthetic_drive(
    root: str | Path,
    num_train: int = 20,
    num_test: int = 20,
    config: RetinaConfig | None = None,
    seed: int = 0,
) -> Path:
    """Write a synthetic DRIVE folder (same layout and file formats as the real one).

    Training ids are 21.., test ids 01.. as in DRIVE; the test split gets a
    ``2nd_manual`` grader.

    Args:
        root: Destination folder.
        num_train: Training images.
        num_test: Test images.
        config: Generator settings.
        seed: Seed of the generator (the same seed writes the same files).

    Returns:
        ``root`` as a :class:`~pathlib.Path`.
    """
    if num_train < 1 and num_test < 1:
        raise ValueError("nothing to write: num_train and num_test are both 0")
    rng = np.random.default_rng(seed)
    root = Path(root)
    train = []
    for i in range(num_train):
        im = synthetic_retina(config, rng)
        im.name = f"{21 + i:02d}"
        train.append(im)
    test = []
    for i in range(num_test):
        im = synthetic_retina(config, rng, second_grader=True)
        im.name = f"{1 + i:02d}"
        test.append(im)
    if train:
        write_drive_split(root, "training", train)
    if test:
        write_drive_split(root, "test", test)
    return root
