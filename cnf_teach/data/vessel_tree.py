"""The vessel tree of a synthetic retina: its growth, its rendering, and the cells graders draw.

Vessel trees grow from the optic disc: four main arcades curving around the macula, then
random-walk branches that bifurcate, thin out and fade, with per-branch contrast
(:func:`grow_trees`). The photograph's darkness along the vessels is their anti-aliased tube
profile times their contrast (:func:`render_darkness`). A branch too faint to be seen through
the photograph's noise (:func:`segment_snr`) is cut from the tree with everything that grows
from it (:func:`prune_segments`), so every branch a grader may draw is in the photograph. For
the random annotation process (:mod:`cnf_teach.data.annotation`), every pixel that some
segment could draw is assigned to one segment, its *cell*, and to the smallest width offset at
which that segment draws it, its *level* (:func:`annotation_cells`).

The settings come from :class:`cnf_teach.data.retina_config.RetinaConfig`; the photograph
and the DRIVE folder are drawn in :mod:`cnf_teach.data.synthetic_retina`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .retina_config import RetinaConfig

__all__ = [
    "VesselSegment",
    "grow_trees",
    "render_darkness",
    "thin_attenuation",
    "segment_snr",
    "prune_segments",
    "surviving",
    "annotation_cells",
]


@dataclass
class VesselSegment:
    """A polyline piece of vessel: centre points ``[N, 2]`` (row, col), radii ``[N]``, contrast.

    ``parent`` is the index of the branch it grew from (``-1`` for a main arcade) and
    ``depth`` its number of bifurcations from the optic disc.

    Examples:
        >>> import numpy as np
        >>> from cnf_teach.data.vessel_tree import VesselSegment
        >>> seg = VesselSegment(np.array([[4.0, 4.0], [4.0, 5.0], [4.0, 6.0]]), np.full(3, 0.6), contrast=0.5)
        >>> seg.parent, seg.depth  # a main arcade
        (-1, 0)
        >>> round(seg.visibility, 3)  # thin vessels look fainter: 0.5 * (0.55 + 0.45 * 0.6)
        0.41
    """

    points: np.ndarray
    radii: np.ndarray
    contrast: float
    parent: int = -1
    depth: int = 0

    @property
    def visibility(self) -> float:
        """Peak darkness of the vessel in the photograph: contrast times the renderer's thin-vessel attenuation."""
        return float(self.contrast * thin_attenuation(float(np.median(self.radii))))


def grow_trees(cfg: RetinaConfig, rng: np.random.Generator, disc: np.ndarray, macula: np.ndarray) -> list:
    """Grow the vessel trees from the optic disc ``disc`` around the macula; parents come before children."""
    size = min(cfg.height, cfg.width)
    centre = np.array([cfg.height / 2, cfg.width / 2])
    radius = cfg.fov_radius * size
    step = 0.5
    r0 = max(cfg.trunk_width * size, 0.9)
    r_min = max(cfg.min_width * size / 96, 0.3)
    # Four arcades: up and down (curving toward the macula), and two shorter ones away from it.
    side = 1.0 if macula[1] >= disc[1] else -1.0  # macula right (+1) or left (-1) of the disc
    starts = []
    for vertical in (-1.0, 1.0):
        heading = math.atan2(vertical, side * 0.7)  # diagonal, toward the macula side
        curve = -vertical * side / (1.1 * radius)  # arc over and under the macula
        starts.append((heading, r0 * rng.uniform(0.9, 1.1), curve, rng.uniform(0.75, 1.0)))
        heading = math.atan2(vertical, -side * 0.8)
        starts.append((heading, r0 * rng.uniform(0.6, 0.8), 0.0, rng.uniform(0.6, 0.9)))
    # Stack entries: position, heading, radius, curvature, contrast, parent index, depth.
    stack = [(disc.copy(), h + rng.normal(0, 0.15), r, k, c, -1, 0) for h, r, k, c in starts]
    segments = []
    rate = cfg.branch_rate / radius  # bifurcations per pixel of length
    while stack and len(segments) < cfg.max_branches:
        pos, heading, r, curve, contrast, parent, depth = stack.pop()
        index = len(segments)  # this branch's index once appended (children are popped after it)
        pts, radii = [], []
        length = 0.0
        while r >= r_min and length < 1.6 * radius:
            pts.append(pos.copy())
            radii.append(r)
            heading += curve * step + rng.normal(0.0, 0.06) * math.sqrt(step)
            pos = pos + step * np.array([math.sin(heading), math.cos(heading)])
            length += step
            r *= math.exp(-step / (cfg.taper * radius))  # slow thinning along the vessel
            if np.linalg.norm(pos - centre) > radius + 2 * r:
                break
            if rng.random() < rate * step and length > 3 * r0:
                child = r * rng.uniform(*cfg.child_width)
                angle = rng.uniform(0.45, 1.1) * rng.choice([-1.0, 1.0])
                fade = rng.uniform(*cfg.fade)
                stack.append(
                    (pos.copy(), heading + angle, child, rng.normal(0, 0.4 / radius), contrast * fade, index, depth + 1)
                )
                r *= rng.uniform(0.85, 0.95)
                heading -= 0.3 * angle
        if len(pts) > 1:
            segments.append(VesselSegment(np.array(pts), np.array(radii), contrast, parent, depth))
    return segments


def thin_attenuation(radius: float | np.ndarray) -> float | np.ndarray:
    """How much fainter a thin vessel looks: its peak darkness is its contrast times $\\min(1, 0.55 + 0.45 r)$.

    Examples:
        >>> from cnf_teach.data.vessel_tree import thin_attenuation
        >>> round(float(thin_attenuation(0.6)), 3), float(thin_attenuation(2.0))  # a 0.6-px vessel, a 2-px one
        (0.82, 1.0)
    """
    return np.minimum(1.0, 0.55 + 0.45 * radius)


def _draw_segment(dark: np.ndarray, seg: VesselSegment) -> None:
    """Darken ``dark`` in place (elementwise maximum) with one segment's anti-aliased tube profile."""
    shape = dark.shape
    for (py, px), r in zip(seg.points, seg.radii, strict=True):
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
        np.maximum(window, seg.contrast * cover * thin_attenuation(r), out=window)


def render_darkness(segments: list[VesselSegment], shape: tuple[int, int]) -> np.ndarray:
    """Rasterise the vessels' darkness ``[H, W]`` in [0, 1]: contrast x anti-aliased tube profile."""
    dark = np.zeros(shape, np.float32)
    for seg in segments:
        _draw_segment(dark, seg)
    return dark


def segment_snr(segments: list[VesselSegment], drop: np.ndarray, noise: float) -> np.ndarray:
    """How clearly the photograph shows each segment: its matched-filter signal-to-noise ratio, ``[S]``.

    A segment darkens pixel $j$ of the green channel by $d_j$ = its darkness there times ``drop``
    (the green channel's fall per unit darkness at that pixel: illumination x colour x absorption).
    An observer who knows where to look separates the segment from white noise of standard
    deviation $\\sigma$ with the signal-to-noise ratio $\\sqrt{\\sum_j d_j^2} / \\sigma$.

    Examples:
        >>> import numpy as np
        >>> from cnf_teach.data.vessel_tree import VesselSegment, segment_snr
        >>> seg = VesselSegment(np.array([[4.0, 2.0 + 0.5 * k] for k in range(9)]), np.full(9, 1.0), 0.5)
        >>> snr = segment_snr([seg], drop=np.full((9, 9), 0.1), noise=0.015)
        >>> snr.shape, bool(snr[0] > 5)
        ((1,), True)
    """
    out = np.zeros(len(segments))
    for s, seg in enumerate(segments):
        dark = np.zeros(drop.shape, np.float32)
        _draw_segment(dark, seg)
        out[s] = math.sqrt(float(((dark * drop) ** 2).sum())) / noise
    return out


def surviving(segments: list[VesselSegment], keep: np.ndarray) -> np.ndarray:
    """``[S]`` bool: kept, and every ancestor kept (parents precede their children)."""
    alive = np.zeros(len(segments), bool)
    for s, seg in enumerate(segments):
        alive[s] = bool(keep[s]) and (seg.parent < 0 or alive[seg.parent])
    return alive


def prune_segments(segments: list[VesselSegment], keep: np.ndarray) -> list[VesselSegment]:
    """Drop the segments not kept and every segment that grows from a dropped one; renumber the parents.

    Parents precede their children in ``segments`` and in the result (the survivors are
    :func:`surviving`'s mask).

    Examples:
        >>> import numpy as np
        >>> from cnf_teach.data.vessel_tree import VesselSegment, prune_segments
        >>> pts, radii = np.zeros((2, 2)), np.ones(2)
        >>> tree = [VesselSegment(pts, radii, 1.0), VesselSegment(pts, radii, 0.2, parent=0, depth=1),
        ...         VesselSegment(pts, radii, 0.1, parent=1, depth=2),
        ...         VesselSegment(pts, radii, 0.9, parent=0, depth=1)]
        >>> [(s.contrast, s.parent) for s in prune_segments(tree, np.array([True, False, True, True]))]
        [(1.0, -1), (0.9, 0)]
    """
    alive = surviving(segments, keep)
    new_index = np.cumsum(alive) - 1  # position of each survivor in the result
    return [
        VesselSegment(
            seg.points, seg.radii, seg.contrast, int(new_index[seg.parent]) if seg.parent >= 0 else -1, seg.depth
        )
        for seg, a in zip(segments, alive, strict=True)
        if a
    ]


def annotation_cells(
    segments: list[VesselSegment], fov: np.ndarray, width_step: float
) -> tuple[np.ndarray, np.ndarray]:
    """Assign every drawable FOV pixel to one segment and the smallest width offset that draws it.

    A segment with offset $o \\in \\{0, 1, 2\\}$ (narrower, as seen, wider) draws the pixels within
    $\\max(r + (o - 1)\\,w, 0.5)$ of one of its centre points ($r$ the local radius, $w$ the width
    step). A pixel inside some segment's narrowest drawing belongs to the shallowest such segment
    (so a parent's core never depends on its children); any other drawable pixel belongs to the
    segment whose tube it lies deepest in.

    Returns:
        ``owner`` ``[H, W]`` int32 (``-1``: no segment can draw it) and ``level`` ``[H, W]`` int8,
        the smallest offset at which the owner draws the pixel (3 where no one can).
    """
    h, w = fov.shape
    best = np.full((h, w), np.inf)
    owner = np.full((h, w), -1, np.int32)
    level = np.full((h, w), 3, np.int8)
    deltas = np.array([-1.0, 0.0, 1.0]) * width_step
    for s, seg in enumerate(segments):
        pts, radii = seg.points, seg.radii  # [K, 2], [K]
        reach = float(radii.max()) + width_step + 1.0
        y0, x0 = np.maximum(np.floor(pts.min(0) - reach).astype(int), 0)
        y1, x1 = np.minimum(np.ceil(pts.max(0) + reach).astype(int) + 1, [h, w])
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        pix = np.stack([yy.ravel(), xx.ravel()], 1).astype(np.float64)  # [P, 2]
        dist = np.sqrt(((pix[:, None, :] - pts[None, :, :]) ** 2).sum(-1))  # [P, K]
        reach_o = np.maximum(radii[None, :] + deltas[:, None], 0.5)  # [3, K]
        slack = np.stack([(dist - reach_o[o][None, :]).min(1) for o in range(3)])  # [3, P]; <= 0: drawn
        lev = np.where(slack[0] <= 0, 0, np.where(slack[1] <= 0, 1, np.where(slack[2] <= 0, 2, 3)))  # [P]
        # Ownership key: cores (level 0) first, shallow before deep; then the deepest inside the tube.
        key = np.where(lev == 0, -1000.0 + 20.0 * seg.depth + slack[1], slack[1])
        key = np.where((lev < 3) & fov[y0:y1, x0:x1].ravel(), key, np.inf).reshape(yy.shape)
        window = best[y0:y1, x0:x1]
        better = key < window
        window[better] = key[better]
        owner[y0:y1, x0:x1][better] = s
        level[y0:y1, x0:x1][better] = lev.reshape(yy.shape)[better]
    return owner, level
