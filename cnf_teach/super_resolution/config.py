"""Settings of the super-resolution models: :class:`SRConfig` and its presets.

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.1 and
    Tables 5 (levels, sub-flows, batch, learning rate), 6 (coupling network) and 8 (RRDB).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

__all__ = ["NUM_BINS", "SRConfig", "SR_PRESETS"]

NUM_BINS = 256  # 8-bit images


@dataclass
class SRConfig:
    """Architecture and training settings of the SR models (Tables 5, 6 and 8 of the paper).

    Attributes:
        name: Preset name.
        scale: Upscaling factor $s$ (the paper: 2).
        channels: Image channels.
        levels: $L$, levels of the multi-scale flow.
        steps: $K$, flow steps per level.
        hidden: Hidden channels of the coupling networks (Table 6: 512).
        prior_hidden: Hidden channels of the split and top prior networks.
        rrdb_features: RRDB feature (= context) channels (128).
        rrdb_blocks: Number of RRDBs (16).
        rrdb_growth: Growth channels of the CNF's RRDB (32).
        baseline_growth: Growth channels of the baseline's RRDB (55: matches the parameter counts).
        dequantization: ``"uniform"`` (the paper) or ``"variational"``.
        deq_steps: Coupling steps of the variational dequantizer's noise flow.
        deq_hidden: Hidden channels of the variational dequantizer.
        patch: Side of the HR training images or crops (32 for ImageNet32, 64 for ImageNet64).
        batch_size: Batch size (Table 5: 64).
        lr: Adam learning rate (Table 5: 1e-4).
        train_steps: Training iterations (§5.1 and Appendix A: 200k).
        warmup_steps: Linear learning-rate warm-up.
        grad_clip: Maximum gradient norm.

    Examples:
        >>> from cnf_teach.super_resolution import SRConfig
        >>> config = SRConfig.tiny()
        >>> config.scale, config.levels, config.steps, config.hidden, config.patch
        (2, 2, 4, 48, 32)
        >>> SRConfig.preset("paper-imagenet32").hidden  # Table 6
        512
        >>> SRConfig.from_dict(config.to_dict()) == config
        True
        >>> SRConfig(scale=3)
        Traceback (most recent call last):
        ...
        ValueError: scale must be a power of two >= 2 (the flow halves the resolution), got 3
    """

    name: str = "custom"
    scale: int = 2
    channels: int = 3
    levels: int = 2
    steps: int = 8
    hidden: int = 512
    prior_hidden: int = 128
    rrdb_features: int = 128
    rrdb_blocks: int = 16
    rrdb_growth: int = 32
    baseline_growth: int = 55
    dequantization: Literal["uniform", "variational"] = "uniform"
    deq_steps: int = 4
    deq_hidden: int = 64
    patch: int = 64
    batch_size: int = 64
    lr: float = 1e-4
    train_steps: int = 200_000
    warmup_steps: int = 0
    grad_clip: float = 100.0

    def __post_init__(self) -> None:
        if self.scale < 2 or self.scale & (self.scale - 1):
            raise ValueError(f"scale must be a power of two >= 2 (the flow halves the resolution), got {self.scale}")
        if self.dequantization not in ("uniform", "variational"):
            raise ValueError(f"dequantization must be 'uniform' or 'variational', got {self.dequantization!r}")
        if self.patch % (2**self.levels) or self.patch % self.scale:
            raise ValueError(f"patch {self.patch} must be a multiple of 2**levels={2**self.levels} and of the scale")

    @classmethod
    def paper_imagenet32(cls) -> SRConfig:
        """2x SR on ImageNet32 (16x16 -> 32x32): flow, coupling nets, RRDB: Tables 5, 6, 8 of Winkler et al. 2019."""
        return cls(name="paper-imagenet32", patch=32)

    @classmethod
    def paper_imagenet64(cls) -> SRConfig:
        """2x SR on ImageNet64 (32x32 -> 64x64): flow, coupling nets, RRDB: Tables 5, 6, 8 of Winkler et al. 2019."""
        return cls(name="paper-imagenet64", patch=64)

    @classmethod
    def tiny(cls) -> SRConfig:
        """A CPU-sized model (minutes of training) with the same structure; baseline parameter-matched."""
        return cls(
            name="tiny",
            steps=4,
            hidden=48,
            prior_hidden=16,
            rrdb_features=16,
            rrdb_blocks=2,
            rrdb_growth=8,
            baseline_growth=20,
            deq_steps=2,
            deq_hidden=16,
            patch=32,
            batch_size=16,
            lr=1e-3,
            train_steps=2000,
            warmup_steps=50,
            grad_clip=50.0,
        )

    @classmethod
    def small(cls) -> SRConfig:
        """The shipped pretrained models' size (:mod:`cnf_teach.pretrained`): about 0.5 M parameters.

        Wider than :meth:`tiny` (coupling nets of 64 channels, RRDB of 24 features, growth 12)
        and trained longer; the baseline's growth 25 matches the CNF's parameter count within 3 %.
        """
        return cls(
            name="small",
            steps=4,
            hidden=64,
            prior_hidden=32,
            rrdb_features=24,
            rrdb_blocks=2,
            rrdb_growth=12,
            baseline_growth=25,
            deq_steps=2,
            deq_hidden=16,
            patch=32,
            batch_size=16,
            lr=1e-3,
            train_steps=9000,
            warmup_steps=200,
            grad_clip=50.0,
        )

    @classmethod
    def preset(cls, name: str) -> SRConfig:
        """One of ``"tiny"``, ``"small"``, ``"paper-imagenet32"``, ``"paper-imagenet64"``."""
        if name not in SR_PRESETS:
            raise ValueError(f"unknown SR config {name!r}; choose one of {', '.join(SR_PRESETS)}")
        return SR_PRESETS[name]()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SRConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


SR_PRESETS = {
    "tiny": SRConfig.tiny,
    "small": SRConfig.small,
    "paper-imagenet32": SRConfig.paper_imagenet32,
    "paper-imagenet64": SRConfig.paper_imagenet64,
}
