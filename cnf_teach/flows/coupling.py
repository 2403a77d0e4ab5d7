"""Affine and additive coupling layers, optionally conditional.

Split the input along dimension 1 into $y_a$ (passed through) and $y_b$
(transformed):

$$z_a = y_a, \\qquad z_b = s(y_a, h) \\odot y_b + t(y_a, h).$$

The Jacobian is triangular, so $\\log|\\det| = \\sum \\log s$, and the inverse
$y_b = (z_b - t)/s$ needs $s$ and $t$ only at $z_a = y_a$, never the inverse of the
network. Conditioning (Winkler et al. 2019, §3.1 and Fig. 6) enters by
concatenating the feature map $h = g(x)$ to $y_a$ before the network. With
$s \\equiv 1$ the layer is *additive* (volume preserving, $\\log|\\det| = 0$; NICE),
as used for the vessel-segmentation model (§5.2).

Precision: under autocast the network may run in bf16; its output is cast to (at least)
float32 before the scale, the shift and the log-determinant are applied, so the coupling
stays an exact bijection with an exact log-determinant (the inverse recomputes the same
network output from the same $y_a$).

References:
    Dinh, Krueger, Bengio. NICE: Non-linear Independent Components Estimation. 2015.
    Dinh, Sohl-Dickstein, Bengio. Density estimation using Real NVP. ICLR 2017.
    Kingma, Dhariwal. Glow. NeurIPS 2018 (the sigmoid scale).
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §3.1, Fig. 6.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ..nets.coupling_nets import MLP, CouplingConvNet, NetFactory
from ..utils import high_precision, to_high_precision
from .base import Bijection, check_condition, sum_except_batch, zero_logdet

__all__ = ["AffineCoupling", "AdditiveCoupling", "ScaleFunction"]

ScaleFunction = Literal["sigmoid", "exp_tanh"]


def _default_factory(kind: Literal["conv", "mlp"], hidden: int) -> NetFactory:
    if kind == "conv":
        return lambda i, o: CouplingConvNet(i, o, hidden=hidden)
    if kind == "mlp":
        return lambda i, o: MLP(i, o, hidden=hidden)
    raise ValueError(f"net must be 'conv' (images) or 'mlp' (vectors), got {kind!r}")


class _Coupling(Bijection):
    """Shared plumbing: the split, the conditioning concat and the shape checks."""

    #: Outputs of the network per transformed feature (2 = scale and shift).
    params_per_feature = 2

    def __init__(
        self,
        num_features: int,
        cond_channels: int = 0,
        hidden: int = 512,
        net: Literal["conv", "mlp"] = "conv",
        net_factory: NetFactory | None = None,
    ) -> None:
        super().__init__()
        if num_features < 2:
            raise ValueError(f"coupling needs at least 2 features to split, got num_features={num_features}")
        self.num_features = num_features
        self.cond_channels = cond_channels
        self.split = num_features // 2  # y_a: the first `split` features pass through
        factory = net_factory or _default_factory(net, hidden)
        self.net = factory(self.split + cond_channels, self.params_per_feature * (num_features - self.split))

    def _halves(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """``(y[:, :split], y[:, split:])`` as one split, whose backward is one concatenation."""
        return y.split([self.split, self.num_features - self.split], dim=1)  # type: ignore[return-value]

    def _net_input(self, y_a: Tensor, h: Tensor | None) -> Tensor:
        return y_a if h is None else torch.cat([y_a, h.to(y_a.dtype)], dim=1)  # [B, split + C_h, ...]

    def _net(self, y_a: Tensor, h: Tensor | None) -> Tensor:
        """The network's output in the bijection's precision (float32 even when the network ran in bf16)."""
        return self.net(self._net_input(y_a, h)).to(high_precision(y_a.dtype))

    def _check(self, y: Tensor, h: Tensor | None) -> None:
        if y.dim() < 2 or y.shape[1] != self.num_features:
            got = y.shape[1] if y.dim() > 1 else "?"
            raise ValueError(
                f"{type(self).__name__} was built for {self.num_features} features/channels in dim 1 "
                f"but got input of shape {tuple(y.shape)}; build it with num_features={got}"
            )
        check_condition(self, y, h, self.cond_channels)


class AffineCoupling(_Coupling):
    """Affine coupling $z_b = s(y_a, h) \\odot y_b + t(y_a, h)$, $\\log|\\det| = \\sum\\log s$.

    The scale must stay positive and should not explode. Two parametrisations:

    - ``"sigmoid"`` (default, after Glow, Kingma & Dhariwal 2018): $s = \\sigma(r + 2)$. Bounded
      in $(0, 1)$, so the forward direction can only contract and the inverse never
      divides by a tiny number by surprise; the $+2$ starts $s$ near $0.88$, close
      to the identity. $\\log s = \\log\\sigma(r+2)$ is computed by ``logsigmoid``.
    - ``"exp_tanh"``: $s = \\exp(c\\tanh(r / c))$ with $c = 2$, a soft clamp of
      $\\log s$ to $(-2, 2)$: starts exactly at the identity and can expand as well as
      contract, handy for low-dimensional toy densities.

    Winkler et al. 2019 give no scale function; the sigmoid is the project's choice, credited to
    Glow (see "The scale function of the affine coupling" on the "Readings and deviations" page).

    Args:
        num_features: Features (vectors ``[B, D]``) or channels (images ``[B, C, H, W]``).
        cond_channels: Channels of the conditioning features ``h`` (0 = unconditional).
        hidden: Hidden width of the default network.
        net: ``"conv"`` for images, ``"mlp"`` for vectors.
        net_factory: Builds the network ``(in, out) -> nn.Module`` instead of the default.
        scale: ``"sigmoid"`` or ``"exp_tanh"``, see above.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import AffineCoupling
        >>> _ = torch.manual_seed(0)
        >>> coupling = AffineCoupling(4, cond_channels=3, hidden=8)
        >>> y, h = torch.randn(2, 4, 8, 8), torch.randn(2, 3, 8, 8)
        >>> z, logdet = coupling(y, h)
        >>> z.shape, logdet.shape
        (torch.Size([2, 4, 8, 8]), torch.Size([2]))
        >>> torch.equal(z[:, :2], y[:, :2])  # y_a passes through unchanged
        True
        >>> torch.allclose(coupling.inverse(z, h), y, atol=1e-5)
        True
    """

    def __init__(
        self,
        num_features: int,
        cond_channels: int = 0,
        hidden: int = 512,
        net: Literal["conv", "mlp"] = "conv",
        net_factory: NetFactory | None = None,
        scale: ScaleFunction = "sigmoid",
    ) -> None:
        super().__init__(num_features, cond_channels, hidden, net, net_factory)
        if scale not in ("sigmoid", "exp_tanh"):
            raise ValueError(f"scale must be 'sigmoid' or 'exp_tanh', got {scale!r}")
        self.scale = scale

    def _scale_shift(self, y_a: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
        out = self._net(y_a, h)  # [B, 2 * (D - split), ...]
        raw, shift = out.unflatten(1, (-1, 2)).unbind(2)  # out[:, 0::2], out[:, 1::2]: one view, one backward
        if self.scale == "sigmoid":
            log_s = F.logsigmoid(raw + 2.0)
        else:
            log_s = 2.0 * torch.tanh(raw / 2.0)
        return log_s, shift

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(y, h)
        y = to_high_precision(y)
        y_a, y_b = self._halves(y)
        log_s, t = self._scale_shift(y_a, h)
        z_b = y_b * torch.exp(log_s) + t
        return torch.cat([y_a, z_b], dim=1), sum_except_batch(log_s)

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        self._check(z, h)
        z = to_high_precision(z)
        z_a, z_b = self._halves(z)
        log_s, t = self._scale_shift(z_a, h)
        y_b = (z_b - t) * torch.exp(-log_s)
        return torch.cat([z_a, y_b], dim=1)


class AdditiveCoupling(_Coupling):
    """Additive (volume-preserving) coupling $z_b = y_b + t(y_a, h)$, $\\log|\\det| = 0$.

    The NICE layer; the vessel-segmentation model of Winkler et al. 2019 (§5.2) uses it.
    Same arguments as :class:`AffineCoupling` minus ``scale``.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import AdditiveCoupling
        >>> _ = torch.manual_seed(0)
        >>> coupling = AdditiveCoupling(4, cond_channels=2, hidden=8, net="mlp")
        >>> y, h = torch.randn(2, 4), torch.randn(2, 2)
        >>> z, logdet = coupling(y, h)
        >>> z.shape, logdet.tolist()  # volume preserving
        (torch.Size([2, 4]), [0.0, 0.0])
        >>> torch.allclose(coupling.inverse(z, h), y, atol=1e-6)
        True
    """

    params_per_feature = 1

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(y, h)
        y = to_high_precision(y)
        y_a, y_b = self._halves(y)
        z_b = y_b + self._net(y_a, h)
        return torch.cat([y_a, z_b], dim=1), zero_logdet(y)

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        self._check(z, h)
        z = to_high_precision(z)
        z_a, z_b = self._halves(z)
        y_b = z_b - self._net(z_a, h)
        return torch.cat([z_a, y_b], dim=1)
