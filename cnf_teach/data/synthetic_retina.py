"""Synthetic fundus photographs with a known, random annotation process: the offline stand-in for DRIVE.

DRIVE cannot be downloaded here, so the vessel-segmentation pipeline trains and is
tested on procedurally generated retinas written in DRIVE's own folder layout
(:func:`cnf_teach.data.drive.write_drive_split`). Each photograph has

- a circular field of view (FOV) on a dark background;
- uneven illumination: a bright centre falling off to the rim, a random tilt, a bright
  optic disc and a darker macula;
- an orange-red fundus colour with a smooth choroidal texture and pixel noise;
- vessel trees growing from the optic disc: four main arcades curving around the
  macula, then random-walk branches that bifurcate, thin out and fade, with per-branch
  contrast (vessels are dark in the green and blue channels, faint in red, as in
  real photographs).

**Annotations are random given the photograph**, as real ones are. The vessel tree (its
growth, its rendering, and the assignment of every pixel that some segment could draw to one
segment, its *cell*, and the smallest width offset that draws it, its *level*) is
:mod:`cnf_teach.data.vessel_tree`; the random grader on those cells and its two exact floors
(entropy and factorized) are :mod:`cnf_teach.data.annotation`. This module draws the
photograph around the tree and writes the synthetic DRIVE folder; the other two modules'
public names are re-exported here. The training split
stores one annotation per image, the test split two independent ones (``1st_manual`` and
``2nd_manual``, as DRIVE), and :func:`make_synthetic_drive` writes the two floors of every
test image to ``test/floors.json`` (read back by :func:`read_floors`).

The default settings are calibrated to two statistics of DRIVE, never to any model's
score: vessels cover about 12 % of the FOV (11.7 % on average over 100 retinas), and two graders agree with F about 0.79
inside the FOV. The photographs are not real retinas; they are realistic enough that a
model trained on them responds to the vessels of scikit-image's real fundus photograph
``skimage.data.retina()`` (measured in the tests and the reproduction benchmark).

References:
    Staal et al. Ridge-based vessel segmentation in color images of the retina. IEEE TMI 2004.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.2, Table 3.

"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from .annotation import AnnotationFloors, AnnotationProcess, annotation_floors, bernoulli_entropy
from .drive import DriveImage, write_drive_split
from .retina_config import RetinaConfig
from .vessel_tree import (
    VesselSegment,
    annotation_cells,
    grow_trees,
    prune_segments,
    render_darkness,
    segment_snr,
    surviving,
    thin_attenuation,
)

#: :func:`~cnf_teach.data.annotation.bernoulli_entropy` under the name notebook 07 reaches it by.
_bernoulli_entropy = bernoulli_entropy

__all__ = [
    "RetinaConfig",
    "VesselSegment",
    "AnnotationProcess",
    "AnnotationFloors",
    "SyntheticRetina",
    "branch_contrast",
    "draw_retina",
    "synthetic_retina",
    "annotation_floors",
    "make_synthetic_drive",
    "read_floors",
    "FLOORS_FILE",
]

log = logging.getLogger(__name__)

#: Name of the file, inside the test split's folder, that holds the per-image floors.
FLOORS_FILE = "floors.json"


@dataclass
class SyntheticRetina:
    """One synthetic photograph with its random annotation process.

    Attributes:
        image: RGB photograph ``[H, W, 3]`` uint8.
        mask: Field-of-view mask ``[H, W]`` uint8.
        segments: The vessel tree, one :class:`VesselSegment` per branch.
        process: The annotation process given this photograph.
        snr: ``[S]`` how clearly the photograph shows each segment (matched-filter signal-to-noise ratio of
            its darkening of the green channel, :func:`~cnf_teach.data.vessel_tree.segment_snr`); at least
            :attr:`RetinaConfig.min_snr` for every segment kept.
        contrast: ``[S]`` the contrast a grader judges each segment by (:func:`branch_contrast`), which sets its
            probability of being annotated.

    Examples:
        >>> import numpy as np
        >>> from cnf_teach.data.synthetic_retina import RetinaConfig, draw_retina
        >>> rng = np.random.default_rng(0)
        >>> retina = draw_retina(RetinaConfig(height=24, width=24), rng)
        >>> retina.image.shape, retina.mask.shape, retina.segments[0].parent
        ((24, 24, 3), (24, 24), -1)
        >>> label = retina.annotate(rng)  # one grader; another call draws another grader
        >>> bool((label <= retina.mask).all())  # vessels are annotated inside the FOV only
        True
        >>> im = retina.to_drive_image(rng, second_grader=True, name="01")
        >>> im.name, im.label.shape, im.label2.shape
        ('01', (24, 24), (24, 24))
    """

    image: np.ndarray
    mask: np.ndarray
    segments: list[VesselSegment]
    process: AnnotationProcess
    snr: np.ndarray | None = None
    contrast: np.ndarray | None = None

    def annotate(self, rng: np.random.Generator) -> np.ndarray:
        """One grader's annotation ``[H, W]`` uint8 in {0, 1}."""
        return self.process.sample(rng)

    def to_drive_image(self, rng: np.random.Generator, second_grader: bool = False, name: str = "00") -> DriveImage:
        """A :class:`~cnf_teach.data.drive.DriveImage` with one annotation, or two independent ones."""
        label = self.annotate(rng)
        label2 = self.annotate(rng) if second_grader else None
        return DriveImage(name, self.image, label, self.mask, label2)


def branch_contrast(segments: list[VesselSegment], background: np.ndarray, fall: np.ndarray) -> np.ndarray:
    """The contrast a grader sees along each branch: median Weber contrast of its centre line, ``[S]``.

    At a centre point of darkness $d$ (the branch's contrast times the thin-vessel attenuation) the
    green channel is $b - d f$, with $b$ the fundus beside the vessel (``background``) and $f$ its fall
    per unit darkness (``fall``), both clipped to the sensor's range [0, 1]; its Weber contrast is
    $(b - (b - d f)) / b$. The median over the branch's centre points is what a grader reads off the
    photograph along the branch, whatever the photograph's exposure, colour and vessel absorption
    (relative, not absolute, darkening is what the eye judges).

    Examples:
        >>> import numpy as np
        >>> from cnf_teach.data.synthetic_retina import VesselSegment, branch_contrast
        >>> seg = VesselSegment(np.array([[4.0, 2.0 + 0.5 * k] for k in range(9)]), np.full(9, 1.0), 0.5)
        >>> branch_contrast([seg], np.full((9, 9), 0.4), np.full((9, 9), 0.2)).round(3).tolist()  # 0.5 * 0.2 / 0.4
        [0.25]
    """
    h, w = background.shape
    out = np.zeros(len(segments))
    for s, seg in enumerate(segments):
        rows = np.clip(np.rint(seg.points[:, 0]).astype(int), 0, h - 1)
        cols = np.clip(np.rint(seg.points[:, 1]).astype(int), 0, w - 1)
        b = background[rows, cols]
        dark = seg.contrast * thin_attenuation(seg.radii)
        bright = np.minimum(b, 1.0)
        weber = (bright - np.clip(b - dark * fall[rows, cols], 0.0, 1.0)) / np.maximum(bright, 1e-6)
        out[s] = float(np.median(weber))
    return out


def draw_retina(
    config: RetinaConfig | None = None, rng: np.random.Generator | None = None, pixel_noise: bool = True
) -> SyntheticRetina:
    """Draw one synthetic fundus photograph, its FOV and its annotation process (no annotation yet).

    Args:
        config: Generator settings (default :class:`RetinaConfig`).
        rng: NumPy random generator (seeded by the caller for reproducibility).
        pixel_noise: ``False`` leaves the pixel noise out of the photograph (a diagnostic: how much the
            noise hides). The noise is still drawn, so the tree, the annotation process and every later
            draw of ``rng`` are the same as with the noise; which branches a grader can see is still
            judged against ``config.noise``.

    Returns:
        A :class:`SyntheticRetina`.
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
    segments = grow_trees(cfg, rng, disc, macula)

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
    # A grader draws only what the photograph shows: cut branches too faint to see through the noise
    # (with all that grows from them) from the tree, so from the photograph and the annotation alike.
    green_drop = illum * base[1] * absorb[1] * mask  # [H, W] fall of the green channel per unit darkness
    snr = segment_snr(segments, green_drop, cfg.noise)
    if cfg.min_snr > 0:
        alive = surviving(segments, snr >= cfg.min_snr)
        segments, snr = prune_segments(segments, alive), snr[alive]
    disc_glow = np.exp(-((d_disc / disc_r) ** 4))[..., None] * np.array([0.35, 0.45, 0.3])

    def shade(dark: np.ndarray) -> np.ndarray:
        """The noiseless photograph ``[H, W, 3]`` of a vessel darkness map ``[H, W]`` (linear in it)."""
        return illum[..., None] * base * (1.0 - dark[..., None] * absorb) + disc_glow * (1.0 - 0.6 * dark[..., None])

    img = shade(render_darkness(segments, (h, w)))
    noise = rng.normal(0, cfg.noise, img.shape)
    outside = 0.02 + rng.normal(0, cfg.noise / 3, img.shape)
    if not pixel_noise:
        noise, outside = np.zeros_like(noise), np.full_like(outside, 0.02)
    img = np.where(mask[..., None], img + noise, outside)
    image = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)

    owner, level = annotation_cells(segments, mask, cfg.width_step * size / 96)
    # A grader judges a branch by the contrast the photograph shows along it, against the fundus beside it.
    green_bg = shade(np.zeros((h, w)))[..., 1]  # [H, W] green without vessels, before noise
    green_fall = green_bg - shade(np.ones((h, w)))[..., 1]  # [H, W] fall per unit darkness
    seen = branch_contrast(segments, green_bg, green_fall)  # [S]
    include = 1.0 / (1.0 + np.exp(-(seen - cfg.include_mid) / cfg.include_scale))
    process = AnnotationProcess(
        owner=owner,
        level=level,
        parent=np.array([seg.parent for seg in segments], np.int64),
        include_prob=include,
        offset_probs=(cfg.shift_prob, 1.0 - 2.0 * cfg.shift_prob, cfg.shift_prob),
        fov=mask,
    )
    return SyntheticRetina(image, mask.astype(np.uint8), segments, process, snr, seen)


def synthetic_retina(
    config: RetinaConfig | None = None, rng: np.random.Generator | None = None, second_grader: bool = False
) -> DriveImage:
    """Draw one synthetic fundus photograph with one random annotation (two with ``second_grader``) and its FOV.

    Args:
        config: Generator settings (default :class:`RetinaConfig`).
        rng: NumPy random generator (seeded by the caller for reproducibility).
        second_grader: Also draw a second, independent annotation from the same process.

    Returns:
        A :class:`~cnf_teach.data.drive.DriveImage` (name ``"00"``; the caller renames it). Use
        :func:`draw_retina` to keep the annotation process (for its floors).
    """
    rng = rng or np.random.default_rng()
    return draw_retina(config, rng).to_drive_image(rng, second_grader)


def make_synthetic_drive(
    root: str | Path,
    num_train: int = 20,
    num_test: int = 20,
    config: RetinaConfig | None = None,
    seed: int = 0,
    mc_samples: int = 200,
    pixel_noise: bool = True,
) -> Path:
    """Write a synthetic DRIVE folder (same layout and file formats as the real one) and the test floors.

    Training ids are 21.., test ids 01.. as in DRIVE. Every training image has one
    annotation drawn from its process; every test image two independent ones
    (``1st_manual``, ``2nd_manual``). ``test/floors.json`` holds, per test image, the entropy
    floor and the factorized floor (exact, with their Monte-Carlo checks; see
    :func:`~cnf_teach.data.annotation.annotation_floors`) and their means; read it with :func:`read_floors`.

    Args:
        root: Destination folder.
        num_train: Training images.
        num_test: Test images.
        config: Generator settings.
        seed: Seed of the generator (the same seed writes the same files).
        mc_samples: Annotations drawn per test image for the Monte-Carlo check of the floors (0: none).
        pixel_noise: ``False`` writes the same retinas and annotations without pixel noise (see
            :func:`draw_retina`).

    Returns:
        ``root`` as a :class:`~pathlib.Path`.
    """
    if num_train < 0 or num_test < 0:
        raise ValueError(f"num_train and num_test must be >= 0, got {num_train} and {num_test}")
    if num_train < 1 and num_test < 1:
        raise ValueError("nothing to write: num_train and num_test are both 0")
    cfg = config or RetinaConfig()
    rng = np.random.default_rng(seed)
    mc_rng = np.random.default_rng([seed, 1])  # the checks never shift the images
    root = Path(root)
    train = [draw_retina(cfg, rng, pixel_noise).to_drive_image(rng, name=f"{21 + i:02d}") for i in range(num_train)]
    test, floors = [], []
    for i in range(num_test):
        retina = draw_retina(cfg, rng, pixel_noise)
        test.append(retina.to_drive_image(rng, second_grader=True, name=f"{1 + i:02d}"))
        floors.append(annotation_floors(retina.process, mc_samples, mc_rng))
    if train:
        write_drive_split(root, "training", train)
    if test:
        write_drive_split(root, "test", test)
        _write_floors(root / "test" / FLOORS_FILE, [im.name for im in test], floors, cfg, seed)
    return root


def _write_floors(path: Path, names: list[str], floors: list[AnnotationFloors], cfg: RetinaConfig, seed: int) -> None:
    rows = [{"image": n, **f.as_dict()} for n, f in zip(names, floors, strict=True)]
    keys = ("entropy_per_pixel", "entropy_per_fov_pixel", "factorized_per_pixel", "factorized_per_fov_pixel")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    std = {k: float(np.std([r[k] for r in rows])) for k in keys}
    doc = {
        "description": (
            "Floors of the annotation process in bits/dim, exact (closed form); *_mc are Monte-Carlo checks "
            "with standard errors *_mc_se, in bits per image. entropy: H(Y|x); factorized: sum_j H(Y_j|x)."
        ),
        "config": asdict(cfg),
        "seed": seed,
        "mean": mean,
        "std": std,
        "images": rows,
    }
    path.write_text(json.dumps(doc, indent=2, allow_nan=True))
    log.debug(
        "floors of %d test images: entropy %.4f, factorized %.4f bits per FOV pixel",
        len(rows),
        mean["entropy_per_fov_pixel"],
        mean["factorized_per_fov_pixel"],
    )


def read_floors(root: str | Path) -> dict:
    """Read ``test/floors.json`` written by :func:`make_synthetic_drive` (per-image rows, means and stds).

    Raises:
        FileNotFoundError: naming the file, when the folder was not written by :func:`make_synthetic_drive`.
    """
    path = Path(root) / "test" / FLOORS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; only synthetic DRIVE folders written by make_synthetic_drive (`seg synth`) have floors"
        )
    return json.loads(path.read_text())
