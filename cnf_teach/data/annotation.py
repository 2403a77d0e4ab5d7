"""The random annotation process of a synthetic retina, and its two exact floors.

**Annotations are random given the photograph**, as real ones are: on DRIVE the second
grader scores F = 0.79 against the first (Winkler et al. 2019, Table 3, "Human"), and the
disagreements are coherent along vessels. A grader here draws, independently for every
vessel segment (a branch between its start and its end),

- whether to annotate it at all: the main arcades always, any other branch with a
  probability that grows with the contrast the photograph shows along it (the median Weber
  contrast of the green channel on its centre line,
  :func:`~cnf_teach.data.synthetic_retina.branch_contrast`; logistic in
  :attr:`~cnf_teach.data.synthetic_retina.RetinaConfig.include_mid` and
  :attr:`~cnf_teach.data.synthetic_retina.RetinaConfig.include_scale`), and never
  when its parent branch was left out (a grader does not draw a capillary hanging in the
  air);
- one width offset for the whole segment: its radius drawn
  :attr:`~cnf_teach.data.synthetic_retina.RetinaConfig.width_step` pixels narrower, as seen, or wider, with
  probabilities ``(shift_prob, 1 - 2 shift_prob, shift_prob)``.

Every pixel that some segment could draw belongs to exactly one segment (its *cell*: the
shallowest segment whose narrowest drawing covers it, otherwise the segment whose tube
it lies deepest in), and the pixel is drawn when that segment is included with an offset
at least the pixel's *level*. The annotation is therefore a deterministic function of the
per-segment choices, and distinct choices give distinct masks once choices that draw the
same cell are merged, so the conditional entropy of an annotation and every pixel's
marginal have closed forms (:class:`AnnotationProcess`). Two graders are two independent
draws: the training split stores one per image, the test split two (``1st_manual`` and
``2nd_manual``, as DRIVE), and :func:`~cnf_teach.data.synthetic_retina.make_synthetic_drive` writes the two
floors of every test image to ``test/floors.json``:

- the **entropy floor** $H(Y \\mid x) / D$: no model of $p(y \\mid x)$ has a lower expected
  negative log-likelihood (bits/dim);
- the **factorized floor** $\\sum_j H(Y_j \\mid x) / D$: no factorized model
  $\\prod_j p(y_j \\mid x)$, such as the weighted Bernoulli of eq. (9), does better.

A joint model such as the conditional flow of §5.2 can go below the factorized floor, down to
the entropy floor; a factorized one cannot.

This is its own file because the process needs only the cells (each pixel's owner and
level), the tree's parent links and the per-segment probabilities, never the photograph:
:mod:`cnf_teach.data.synthetic_retina` grows the vessel tree, renders the photograph, computes
the cells from the tree and builds the process
(:func:`~cnf_teach.data.synthetic_retina.draw_retina`).

References:
    Staal et al. Ridge-based vessel segmentation in color images of the retina. IEEE TMI 2004.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.2, eq. (9), Table 3.

Length: about 350 lines, for one concept: the process's exact laws (pixel marginals, entropy,
log-probability of a mask) and its two floors with their Monte-Carlo check.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = [
    "bernoulli_entropy",
    "AnnotationProcess",
    "AnnotationFloors",
    "annotation_floors",
]


def bernoulli_entropy(p: np.ndarray) -> np.ndarray:
    """$H_b(p) = -p \\log_2 p - (1-p) \\log_2 (1-p)$ in bits, elementwise, with $0 \\log 0 = 0$."""
    p = np.asarray(p, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.where((p <= 0) | (p >= 1), 0.0, h)


@dataclass
class AnnotationProcess:
    """The random grader of one photograph: per-segment choices, and the exact laws they induce on masks.

    Segment $s$ is *included* with probability $q_s$ when its parent is included (never
    otherwise; main arcades have no parent), and draws with an offset $o_s \\in \\{0, 1, 2\\}$
    (narrower, as seen, wider) of probabilities ``offset_probs``. Pixel $j$ of segment $s$'s
    cell is drawn iff $s$ is included and $o_s \\ge \\ell_j$, its level. Segments whose narrowest
    drawing owns no pixel cannot show whether they were included; they follow their parent
    ($q_s = 1$), so inclusion is always readable from the mask.

    Attributes:
        owner: ``[H, W]`` int32, the segment whose cell holds each pixel (``-1``: never drawn).
        level: ``[H, W]`` int8, the smallest offset that draws each pixel (3: never drawn).
        parent: ``[S]`` int, each segment's parent index (``-1`` for a root); parents precede children.
        include_prob: ``[S]`` the probability $q_s$ of including a segment whose parent is included.
        offset_probs: Probabilities of the offsets 0, 1, 2.
        fov: ``[H, W]`` bool field-of-view mask (no pixel outside it is ever drawn).

    Examples:
        A root segment 0 (one core pixel, two pixels drawn unless it is narrowed) and its child 1:

        >>> import numpy as np
        >>> from cnf_teach.data.annotation import AnnotationProcess
        >>> owner, level = np.array([[0, 0, 0, 1]]), np.array([[0, 1, 1, 0]])
        >>> process = AnnotationProcess(owner, level, parent=[-1, 0], include_prob=[1.0, 0.5],
        ...                             offset_probs=(0.2, 0.6, 0.2), fov=np.ones((1, 4), bool))
        >>> process.pixel_marginals().tolist()
        [[1.0, 0.8, 0.8, 0.5]]
        >>> round(process.entropy_bits(), 3), round(process.factorized_bits(), 3)  # joint < factorized
        (1.722, 2.444)
        >>> round(process.log2_prob(np.array([[1, 1, 1, 0]])), 3), process.log2_prob(np.array([[1, 1, 0, 0]]))
        (-1.322, -inf)
    """

    owner: np.ndarray
    level: np.ndarray
    parent: np.ndarray
    include_prob: np.ndarray
    offset_probs: tuple[float, float, float]
    fov: np.ndarray
    _counts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.parent = np.asarray(self.parent, np.int64)
        self.include_prob = np.asarray(self.include_prob, np.float64).copy()
        n = len(self.parent)
        if self.include_prob.shape != (n,):
            raise ValueError(f"include_prob has shape {self.include_prob.shape}; expected one entry per segment ({n})")
        if np.any(self.parent >= np.arange(n)):
            raise ValueError("every parent index must be smaller than its child's (parents first), or -1 for a root")
        if self.owner.shape != self.level.shape or self.owner.shape != self.fov.shape:
            raise ValueError(f"owner {self.owner.shape}, level {self.level.shape} and fov {self.fov.shape} differ")
        if abs(sum(self.offset_probs) - 1.0) > 1e-9 or min(self.offset_probs) < 0:
            raise ValueError(f"offset_probs must be three probabilities summing to 1, got {self.offset_probs}")
        if self.owner.max(initial=-1) >= n:
            raise ValueError(f"owner names segment {self.owner.max()} but there are only {n} segments")
        self.fov = np.asarray(self.fov, bool)
        # _counts[s, l]: pixels of s's cell at level l (l = 0, 1, 2).
        owned = self.owner >= 0
        idx = self.owner[owned].astype(np.int64) * 3 + self.level[owned].astype(np.int64)
        self._counts = np.bincount(idx, minlength=3 * n).reshape(n, 3)
        # Roots are always drawn; segments invisible at their narrowest follow their parent.
        self.include_prob[(self.parent < 0) | (self._counts[:, 0] == 0)] = 1.0

    @property
    def num_segments(self) -> int:
        """Number of vessel segments $S$."""
        return len(self.parent)

    def inclusion_marginals(self) -> np.ndarray:
        """``[S]`` $P(s \\text{ included}) = \\prod q$ over $s$ and its ancestors (exact)."""
        p = np.ones(self.num_segments)
        for s, par in enumerate(self.parent):
            p[s] = self.include_prob[s] * (p[par] if par >= 0 else 1.0)
        return p

    def _offset_classes(self) -> list[list[list[int]]]:
        """Per segment, the offsets grouped by the cell mask they draw (offsets in one group draw the same cell)."""
        groups = []
        for c in self._counts:
            g = [[0]]
            for o in (1, 2):
                if c[o] > 0:
                    g.append([o])
                else:
                    g[-1].append(o)
            groups.append(g)
        return groups

    def sample(self, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
        """Draw one annotation ``[H, W]`` uint8 (or ``n`` of them, ``[n, H, W]``) from the process."""
        if n is None:
            return self.sample(rng, 1)[0]
        s_count = self.num_segments
        draws = rng.random((n, s_count)) < self.include_prob  # [n, S]
        included = np.zeros((n, s_count), bool)
        for s, par in enumerate(self.parent):
            included[:, s] = draws[:, s] & (included[:, par] if par >= 0 else True)
        offsets = rng.choice(3, size=(n, s_count), p=self.offset_probs)  # [n, S]
        out = np.zeros((n, *self.owner.shape), np.uint8)
        owned = self.owner >= 0
        seg = self.owner[owned]
        lev = self.level[owned]
        out[:, owned] = (included[:, seg] & (offsets[:, seg] >= lev)).astype(np.uint8)
        return out

    def pixel_marginals(self) -> np.ndarray:
        """``[H, W]`` the exact probability $P(Y_j = 1 \\mid x)$ that each pixel is drawn (no Monte-Carlo error)."""
        tail = np.cumsum(np.asarray(self.offset_probs)[::-1])[::-1]  # P(o >= l), l = 0, 1, 2
        tail = np.append(tail, 0.0)  # level 3: never drawn
        inc = self.inclusion_marginals()
        m = np.zeros(self.owner.shape)
        owned = self.owner >= 0
        m[owned] = inc[self.owner[owned]] * tail[self.level[owned]]
        return m

    def entropy_bits(self) -> float:
        """Exact $H(Y \\mid x)$ in bits (no Monte-Carlo error).

        The mask determines every segment's inclusion and the group of offsets that drew its
        cell, and these are all it depends on, so $H(Y \\mid x)$ is the entropy of those choices:
        $\\sum_s P(\\mathrm{pa}(s)\\ \\mathrm{incl.})\\, H_b(q_s) + P(s\\ \\mathrm{incl.})\\, H(G_s)$,
        with $G_s$ the offset group.
        """
        inc = self.inclusion_marginals()
        parent_inc = np.where(self.parent >= 0, inc[np.maximum(self.parent, 0)], 1.0)
        probs = np.asarray(self.offset_probs)
        total = float((parent_inc * bernoulli_entropy(self.include_prob)).sum())
        for s, groups in enumerate(self._offset_classes()):
            g = np.array([probs[grp].sum() for grp in groups])
            g = g[g > 0]
            total += float(inc[s] * -(g * np.log2(g)).sum())
        return total

    def factorized_bits(self) -> float:
        """Exact $\\sum_j H(Y_j \\mid x)$ in bits: each pixel's marginal entropy, summed (no Monte-Carlo error)."""
        return float(bernoulli_entropy(self.pixel_marginals()).sum())

    def log2_prob(self, label: np.ndarray) -> float:
        """Exact $\\log_2 p(y \\mid x)$ of one mask ``[H, W]`` under the process ($-\\infty$ if it cannot be drawn)."""
        y = np.asarray(label) > 0
        if y.shape != self.owner.shape:
            raise ValueError(f"label has shape {y.shape}; the process draws masks of shape {self.owner.shape}")
        owned = self.owner >= 0
        if np.any(y & ~owned):
            return -math.inf
        n = self.num_segments
        idx = self.owner[owned & y].astype(np.int64) * 3 + self.level[owned & y].astype(np.int64)
        drawn = np.bincount(idx, minlength=3 * n).reshape(n, 3)  # [S, 3] drawn pixels per cell and level
        probs = np.asarray(self.offset_probs)
        included = np.zeros(n, bool)
        total = 0.0
        for s, par in enumerate(self.parent):
            par_inc = bool(included[par]) if par >= 0 else True
            visible = self._counts[s, 0] > 0
            inc = bool(drawn[s].any()) if visible else par_inc
            q = self.include_prob[s]
            if inc and not par_inc:
                return -math.inf
            if par_inc:
                p_inc = q if inc else 1.0 - q
                if p_inc <= 0:
                    return -math.inf
                total += math.log2(p_inc)
            included[s] = inc
            if not inc:
                if drawn[s].any():
                    return -math.inf
                continue
            # Offsets o whose drawing {level <= o} is exactly the drawn part of the cell.
            match = [
                bool(np.all(drawn[s, : o + 1] == self._counts[s, : o + 1]) and not drawn[s, o + 1 :].any())
                for o in range(3)
            ]
            p_off = float(probs[match].sum())
            if p_off <= 0:
                return -math.inf
            total += math.log2(p_off)
        return total


@dataclass(frozen=True)
class AnnotationFloors:
    """The two floors of one photograph, in bits, with Monte-Carlo checks.

    ``entropy_bits`` and ``factorized_bits`` are exact (closed forms of
    :class:`AnnotationProcess`; no Monte-Carlo error). ``*_mc`` are independent Monte-Carlo
    estimates from ``mc_samples`` annotations, $\\frac1N \\sum_i -\\log_2 p(y_i)$ and
    $\\frac1N \\sum_i -\\sum_j \\log_2 p(y_{ij})$, with their standard errors ``*_mc_se``; they
    check the closed forms and agree with them within a few standard errors.

    Examples:
        >>> import numpy as np
        >>> from cnf_teach.data.annotation import annotation_floors
        >>> from cnf_teach.data.synthetic_retina import RetinaConfig, draw_retina
        >>> retina = draw_retina(RetinaConfig(height=24, width=24), np.random.default_rng(0))
        >>> floors = annotation_floors(retina.process, mc_samples=50, rng=np.random.default_rng(1))
        >>> floors.num_pixels, floors.entropy_bits <= floors.factorized_bits
        (576, True)
        >>> floors.entropy_per_pixel == floors.entropy_bits / 576
        True
        >>> abs(floors.entropy_bits_mc - floors.entropy_bits) < 5 * floors.entropy_bits_mc_se  # the check
        True
    """

    entropy_bits: float
    factorized_bits: float
    num_pixels: int
    num_fov_pixels: int
    mc_samples: int = 0
    entropy_bits_mc: float = math.nan
    entropy_bits_mc_se: float = math.nan
    factorized_bits_mc: float = math.nan
    factorized_bits_mc_se: float = math.nan

    @property
    def entropy_per_pixel(self) -> float:
        """Entropy floor in bits per image pixel, $H(Y \\mid x) / (H W)$."""
        return self.entropy_bits / self.num_pixels

    @property
    def entropy_per_fov_pixel(self) -> float:
        """Entropy floor in bits per field-of-view pixel."""
        return self.entropy_bits / self.num_fov_pixels

    @property
    def factorized_per_pixel(self) -> float:
        """Factorized floor in bits per image pixel, $\\sum_j H(Y_j \\mid x) / (H W)$."""
        return self.factorized_bits / self.num_pixels

    @property
    def factorized_per_fov_pixel(self) -> float:
        """Factorized floor in bits per field-of-view pixel."""
        return self.factorized_bits / self.num_fov_pixels

    def as_dict(self) -> dict:
        """Every field plus the four per-dimension floors (JSON-ready)."""
        out = asdict(self)
        for name in ("entropy_per_pixel", "entropy_per_fov_pixel", "factorized_per_pixel", "factorized_per_fov_pixel"):
            out[name] = getattr(self, name)
        return out


def annotation_floors(
    process: AnnotationProcess, mc_samples: int = 0, rng: np.random.Generator | None = None
) -> AnnotationFloors:
    """The entropy floor and the factorized floor of one photograph's annotation process.

    The entropy floor is $H(Y \\mid x)$: the expected negative log-likelihood (bits) of the
    best possible model $p(y \\mid x)$. The factorized floor is $\\sum_j H(Y_j \\mid x)$: the best
    that a model factorized over pixels can do (its per-pixel probabilities should then be the
    marginals). Divide by the number of pixels for bits/dim; both per image pixel and per FOV
    pixel are given. The annotation depends on the photograph only through the drawn vessel
    tree, so these are the entropies given the tree. The generator shows every branch a grader
    may draw (:attr:`~cnf_teach.data.retina_config.RetinaConfig.min_snr`), so they are the
    entropies given the photograph up to what its noise hides of each vessel's exact width; what
    it hides can only raise $H(Y \\mid x)$, so they stay floors either way.

    Args:
        process: The photograph's :class:`AnnotationProcess`.
        mc_samples: Annotations to draw for the Monte-Carlo check (0: none).
        rng: Random generator for the check.

    Returns:
        :class:`AnnotationFloors` with the exact floors and, if asked, the Monte-Carlo estimates.
    """
    exact_h = process.entropy_bits()
    exact_f = process.factorized_bits()
    num_pixels = int(process.owner.size)
    num_fov = int(process.fov.sum())
    if mc_samples <= 0:
        return AnnotationFloors(exact_h, exact_f, num_pixels, num_fov)
    rng = rng or np.random.default_rng()
    samples = process.sample(rng, mc_samples)  # [N, H, W]
    m = process.pixel_marginals()
    with np.errstate(divide="ignore"):
        log_on, log_off = np.log2(m), np.log2(1.0 - m)
    h = np.array([-process.log2_prob(y) for y in samples])
    f = -np.where(samples > 0, log_on, log_off).reshape(mc_samples, -1).sum(1)
    se = lambda v: float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan  # noqa: E731
    return AnnotationFloors(
        exact_h, exact_f, num_pixels, num_fov, mc_samples, float(h.mean()), se(h), float(f.mean()), se(f)
    )
