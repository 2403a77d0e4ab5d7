"""Settings of the vessel models (flow, VGG feature extractor, coupling net): :class:`SegConfig` and its presets.

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.2 and
    Tables 4, 5 and 7.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["SegConfig"]


@dataclass
class SegConfig:
    """Architecture and training settings of the vessel models.

    Attributes:
        in_channels: Channels of $x$ (3: RGB).
        levels: $L$, levels of the multi-scale flow.
        steps: $K$, flow steps per level.
        vgg_widths: Channels of the conditioner's blocks at $H$, $H/2$, $H/4$ (our choice; Table 4
            gives none).
        vgg_convs: [InstanceNorm, ReLU, conv3x3] units per conditioner block (1 in Table 4).
        full_to_half: The flow's first level also sees the conditioner's full-resolution features,
            space-to-depth to $H/2$ (:class:`~cnf_teach.nets.VGGFeatures`; not in Table 4).
        coupling_hidden: Hidden channels of Table 7's coupling net (32 in the paper).
        prior_hidden: Hidden channels of the split and top prior networks.
        deq_steps: Coupling steps of the binary dequantizer's flow.
        deq_hidden: Hidden channels of the dequantizer's networks.
        deq_features: Channels of the dequantizer's embedding of $(y, x)$.
        beta: Exponent of the vessel term of eq. (9) (:func:`cnf_teach.baselines.weighted_bce_loss`);
            the background term gets $1 - \\beta$. 0.9 is our reading of the paper's "~10%"
            ($1 - \\beta$, the share of vessel pixels it balances; see "Readings and deviations").
        pad_to: Images are padded to this square size (1024 in the paper); ``None`` pads
            only to a multiple of $2^L$.
        lr: Adam's learning rate.
        batch_size: Images per batch.
        epochs: Training epochs (2000 in the paper).
        eval_samples: Samples averaged into the soft map (100 in the paper).

    Examples:
        >>> from cnf_teach.vessels import SegConfig
        >>> config = SegConfig.tiny()
        >>> config.levels, config.steps, config.vgg_widths, config.pad_to
        (2, 2, (8, 16, 16), None)
        >>> SegConfig.paper_drive().pad_to
        1024
        >>> SegConfig.small().vgg_widths, SegConfig.small().coupling_hidden  # the shipped models
        ((32, 64, 128), 32)
        >>> SegConfig.from_dict(config.to_dict()) == config
        True
        >>> SegConfig(levels=3)
        Traceback (most recent call last):
        ...
        ValueError: the vessel model conditions two levels with VGG features, so levels must be 2, got 3
    """

    in_channels: int = 3
    levels: int = 2
    steps: int = 2
    vgg_widths: tuple[int, int, int] = (32, 64, 128)
    vgg_convs: int = 1
    full_to_half: bool = False
    coupling_hidden: int = 32
    prior_hidden: int = 32
    deq_steps: int = 2
    deq_hidden: int = 32
    deq_features: int = 16
    beta: float = 0.9
    pad_to: int | None = 1024
    lr: float = 1e-3
    batch_size: int = 2
    epochs: int = 2000
    eval_samples: int = 100

    def __post_init__(self) -> None:
        self.vgg_widths = tuple(self.vgg_widths)  # a list after a JSON round trip
        if self.levels != 2:
            raise ValueError(
                f"the vessel model conditions two levels with VGG features, so levels must be 2, got {self.levels}"
            )
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not 0.0 < self.beta < 1.0:
            raise ValueError(f"beta must be in (0, 1), got {self.beta}")

    @classmethod
    def paper_drive(cls) -> SegConfig:
        """The DRIVE setting of §5.2: L=2, K=2, Adam 1e-3, batch 2, 1024x1024, 2000 epochs, 100 samples."""
        return cls()

    @classmethod
    def small(cls) -> SegConfig:
        """The shipped vessel models' setting: the paper's flow (Tables 4, 5 and 7) at CPU scale.

        $L = 2$, $K = 2$, Table 7's coupling width 32, one conv per VGG block (Table 4) with our
        widths 32/64/128, batch 4 of unpadded 96x96 synthetic retinas, Adam 1e-3. The binary
        dequantizer (2 coupling steps of width 24 on 16 feature channels) is sized so that the
        factored baseline, the same flow run feed-forward without a dequantizer, has within 10 % of
        the binary CNF's parameters (468,638 against 514,744).
        """
        return cls(
            deq_hidden=24,
            deq_features=16,
            pad_to=None,
            batch_size=4,
            epochs=100,
            eval_samples=32,
        )

    @classmethod
    def tiny(cls) -> SegConfig:
        """A CPU-sized model for tests, tutorials and the small-scale reproduction."""
        return cls(
            vgg_widths=(8, 16, 16),
            vgg_convs=1,
            coupling_hidden=16,
            prior_hidden=16,
            deq_steps=1,
            deq_hidden=16,
            deq_features=8,
            pad_to=None,
            batch_size=4,
            epochs=50,
            eval_samples=16,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (stored in checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegConfig:
        """Rebuild from :meth:`to_dict`'s output, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
