"""The settings of the synthetic retinas: :class:`RetinaConfig`.

Its own module so that the vessel tree (:mod:`cnf_teach.data.vessel_tree`) and the photograph
(:mod:`cnf_teach.data.synthetic_retina`) both read it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RetinaConfig"]


@dataclass
class RetinaConfig:
    """Knobs of the generator; lengths are fractions of the image's shorter side unless marked pixels.

    Attributes:
        height: Image height in pixels.
        width: Image width in pixels.
        fov_radius: Radius of the field of view.
        trunk_width: Radius of the main vessels at the optic disc (pixels = this x size, at least 0.9).
        min_width: Branches stop when thinner than this radius in pixels of a 96-pixel image (scaled with the
            size, at least 0.3 pixels), so that the vessel fraction hardly depends on the size.
        branch_rate: Expected bifurcations along a length of vessel equal to the FOV radius.
        noise: Standard deviation of the pixel noise (in [0, 1] intensity).
        max_branches: Upper bound on the number of branches per image.
        taper: A vessel's radius falls by a factor e along this length (in FOV radii).
        child_width: Range of a child branch's radius relative to its parent's at the bifurcation.
        fade: Range of the factor by which a child branch's contrast falls below its parent's.
        width_step: Pixels by which a grader's width offset moves a segment's drawn radius, at 96 pixels
            (scaled with the size).
        shift_prob: Probability of each non-zero width offset (narrower, wider).
        include_mid: Contrast a grader sees along a branch (the median Weber contrast of the green channel on
            its centre line, :func:`~cnf_teach.data.synthetic_retina.branch_contrast`) at which the branch is
            annotated with probability 1/2.
        include_scale: Logistic scale of the inclusion probability in that contrast.
        min_snr: A branch is kept only if the photograph shows it: the matched-filter signal-to-noise
            ratio of its darkening of the green channel, $\\sqrt{\\sum_j d_j^2} / \\sigma$ over its pixels
            ($\\sigma$ = ``noise``), must reach this; fainter branches are left out of the photograph *and*
            of the annotation process, together with the branches that grow from them. So a grader never
            draws what the photograph does not show, and the floors are entropies given the photograph
            (0 keeps every branch, as before).

    Examples:
        >>> import numpy as np
        >>> from cnf_teach.data.synthetic_retina import RetinaConfig, draw_retina
        >>> config = RetinaConfig(height=24, width=32)
        >>> draw_retina(config, np.random.default_rng(0)).image.shape
        (24, 32, 3)
        >>> RetinaConfig(shift_prob=0.6)
        Traceback (most recent call last):
        ...
        ValueError: shift_prob must lie in [0, 0.5] (two offsets share it), got 0.6
    """

    height: int = 96
    width: int = 96
    fov_radius: float = 0.47
    trunk_width: float = 0.015
    min_width: float = 0.4
    branch_rate: float = 7.0
    noise: float = 0.015
    max_branches: int = 400
    taper: float = 2.5
    child_width: tuple[float, float] = (0.6, 0.85)
    fade: tuple[float, float] = (0.8, 0.97)
    width_step: float = 0.5
    shift_prob: float = 0.2
    include_mid: float = 0.21
    include_scale: float = 0.07
    min_snr: float = 8.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.shift_prob <= 0.5:
            raise ValueError(f"shift_prob must lie in [0, 0.5] (two offsets share it), got {self.shift_prob}")
        if self.include_scale <= 0:
            raise ValueError(f"include_scale must be positive, got {self.include_scale}")
        if self.min_snr < 0:
            raise ValueError(f"min_snr must be >= 0, got {self.min_snr}")
        if self.width_step < 0:
            raise ValueError(f"width_step must be >= 0 pixels, got {self.width_step}")
