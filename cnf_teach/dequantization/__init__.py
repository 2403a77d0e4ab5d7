"""Dequantization: continuous flows as lower bounds on the likelihood of discrete data.

A flow has a density $p(v)$ over $\\mathbb{R}^D$; images and masks are discrete. Give
each discrete value $y$ a region $\\mathcal{V}(y)$ of $\\mathbb{R}^D$ (regions disjoint),
define $P(y) = \\int_{\\mathcal{V}(y)} p(v)\\,dv$, and draw noise $v \\sim q(v \\mid y)$ with
support in $\\mathcal{V}(y)$. Then, by Jensen's inequality (eqs. (2)-(5) of Winkler et
al. 2019),

$$\\log P(y) = \\log \\mathbb{E}_{q(v \\mid y)}\\left[\\frac{p(v)}{q(v \\mid y)}\\right]
\\ge \\mathbb{E}_{q(v \\mid y)}\\left[\\log p(v) - \\log q(v \\mid y)\\right],$$

with equality when $q(v \\mid y) = p(v) / P(y)$ on $\\mathcal{V}(y)$. Three choices of $q$:

- :class:`UniformDequantization` (Theis et al. 2016): bin $k$ of $K$ is
  $[k/K, (k+1)/K)$ and $q$ is uniform on it, $\\log q = D \\log K$.
- :class:`VariationalDequantization` (Ho et al. 2019, Flow++): $q$ is a conditional flow
  on the same bins, $v = (y + \\sigma(w)) / K$ with $w$ from a flow of Gaussian noise.
- :class:`BinaryDequantization`, the paper's own (§3.2, eq. (8)): for $y \\in \\{0, 1\\}$
  the regions are the half-lines $v < 1/2$ and $v > 1/2$, and
  $v = 1/2 + \\mathrm{sign}(y - 1/2)\\,\\mathrm{softplus}(w)$ with $w$ from a single-scale
  conditional flow of Gaussian noise.

Every dequantizer answers ``v, log_q = deq(y, h)``: ``v`` a sample shaped like ``y``,
``log_q`` ``[B]`` its log-density $\\log q(v \\mid y)$ in nats with every rescaling
included, so that ``log p_model(v) - log_q`` is a one-sample (unbiased) estimate of a
lower bound on $\\log P(y)$.
:func:`dequantized_log_likelihood` averages such bounds, or forms the tighter
importance-weighted bound (Burda et al. 2016; Hoogeboom et al. 2020) from $S > 1$ samples.

Precision and validation: noise, samples and log-densities are computed in (at least)
float32 under any autocast (only the networks may run in bf16; a bin of 8-bit data is
narrower than bf16 resolves). The input checks (:func:`check_discrete`,
:func:`check_binary`) cost one host sync each and are skipped inside ``torch.compile``;
validate the data on the loader's side there.

The package, one concept a module (each imports only the ones listed before it):

- :mod:`cnf_teach.dequantization.checks`: the input checks and the guard that keeps a sample in its bin;
- :mod:`cnf_teach.dequantization.bijections`: the conditional noise flow and the maps into a value's region;
- :mod:`cnf_teach.dequantization.uniform`: :class:`UniformDequantization`;
- :mod:`cnf_teach.dequantization.learned`: :class:`VariationalDequantization` and
  :class:`BinaryDequantization`, on one shared flow body;
- :mod:`cnf_teach.dequantization.bound`: :func:`dequantized_log_likelihood`.

Every name is importable from ``cnf_teach.dequantization`` itself.

References:
    Winkler, Worrall, Hoogeboom, Welling. Learning Likelihoods with Conditional
    Normalizing Flows. arXiv:1912.00042, 2019, §2.1 (eqs. 2-5) and §3.2 (eq. 8).
    Theis, van den Oord, Bethge. A note on the evaluation of generative models. ICLR 2016.
    Ho, Chen, Srinivas, Duan, Abbeel. Flow++. ICML 2019, §3.1.
    Burda, Grosse, Salakhutdinov. Importance Weighted Autoencoders. ICLR 2016.
    Hoogeboom, Cohen, Tomczak. Learning Discrete Distributions by Dequantization. 2020.
"""

from __future__ import annotations

# The private helpers stay importable from here too, as they were before this module became a package.
from .bijections import ConditionalAffine, ConditionalNoiseFlow, HalfLineSoftplus, SigmoidToBin
from .bound import dequantized_log_likelihood
from .checks import _keep_in_bin as _keep_in_bin
from .checks import check_binary, check_discrete
from .learned import BinaryDequantization, VariationalDequantization
from .learned import _FlowDequantizer as _FlowDequantizer
from .uniform import UniformDequantization

__all__ = [
    "BinaryDequantization",
    "ConditionalAffine",
    "ConditionalNoiseFlow",
    "HalfLineSoftplus",
    "SigmoidToBin",
    "UniformDequantization",
    "VariationalDequantization",
    "check_binary",
    "check_discrete",
    "dequantized_log_likelihood",
]
