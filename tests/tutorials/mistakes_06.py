"""Typical wrong answers to the exercises of ``tutorials/06_super_resolution.ipynb``, and correct variants.

Each mistake must fail exactly the test cells listed in ``fails``; each entry of
``CORRECT_VARIANTS`` must pass every test cell (see ``test_grading.py``).
"""

from harness import Mistake, Variant

PSNR = """def psnr_y_channel(sr, hr, border):
    def luma(img):
        img = {cast}
        return {luma}

    y_sr, y_hr = luma(sr), luma(hr)
    if border > 0:
        y_sr, y_hr = {crop}
    mse = np.mean((y_sr - y_hr) ** 2)
    return float({psnr})
"""
CAST_OK = "img.astype(np.float64)"
LUMA_OK = "16.0 + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.0"
CROP_OK = "y_sr[border:-border, border:-border], y_hr[border:-border, border:-border]"
PSNR_OK = "10.0 * np.log10(255.0**2 / mse)"

LOGISTIC = """def disc_logistic_log_prob(y, mean, log_scale, num_bins=256):
    inv_s = {inv_s}
    upper = torch.sigmoid(({hi} - mean) * inv_s)
    lower = torch.sigmoid(({lo} - mean) * inv_s)
    {edges}
    return torch.log(upper - lower)
"""
EDGES_OK = """upper = torch.where(y == num_bins - 1, torch.ones_like(upper), upper)
    lower = torch.where(y == 0, torch.zeros_like(lower), lower)"""
HI_OK, LO_OK = "(y + 1) / num_bins", "y / num_bins"

TEMP = """def tempered_prior_sample(mean, log_std, eps, temperature):
    return {ret}
"""

SRLL = """def sr_log_likelihood(model, y, x, u):
    hs = model.features(x)
    v = {v}
    log_p = model.flow.log_prob({z}, {hs})
    return {ret}
"""
V_OK, Z_OK, HS_OK = "(y.float() + u) / 256", "v - 0.5", "hs[: model.config.levels]"
RET_OK = "log_p - y[0].numel() * math.log(256)"
SRLL_FAILS = ["sr-log-likelihood-check"]

MISTAKES = [
    # --- Exercise 1: PSNR on Y
    Mistake(
        "psnr-y",
        PSNR.format(
            cast="img",
            luma="16.0 + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.0",
            crop=CROP_OK,
            psnr=PSNR_OK,
        ).replace("mse = np.mean((y_sr - y_hr) ** 2)", "mse = np.mean(((sr - hr)[..., 1]).astype(np.float64) ** 2)"),
        fails=["psnr-y-offset", "psnr-y-library"],
        why="uint8 arithmetic: the difference wraps around",
    ),
    Mistake(
        "psnr-y",
        PSNR.format(cast=CAST_OK, luma="img.mean(axis=-1)", crop=CROP_OK, psnr=PSNR_OK),
        fails=["psnr-y-offset", "psnr-y-library"],
        why="PSNR of the RGB mean instead of the luminance Y",
    ),
    Mistake(
        "psnr-y",
        PSNR.format(
            cast=CAST_OK,
            luma="0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]",
            crop=CROP_OK,
            psnr=PSNR_OK,
        ),
        fails=["psnr-y-offset", "psnr-y-library"],
        why="full-range luma (JPEG) instead of BT.601's studio-range Y",
    ),
    Mistake(
        "psnr-y",
        PSNR.format(cast=CAST_OK, luma=LUMA_OK, crop="y_sr, y_hr", psnr=PSNR_OK),
        fails=["psnr-y-library"],
        why="border not cropped",
    ),
    Mistake(
        "psnr-y",
        PSNR.format(cast=CAST_OK, luma=LUMA_OK, crop="y_sr[border:-border], y_hr[border:-border]", psnr=PSNR_OK),
        fails=["psnr-y-library"],
        why="border cropped on the rows only",
    ),
    Mistake(
        "psnr-y",
        PSNR.format(cast=CAST_OK, luma=LUMA_OK, crop=CROP_OK, psnr="10.0 * np.log10(1.0 / mse)"),
        fails=["psnr-y-offset", "psnr-y-library"],
        why="peak value 1 for 8-bit data",
    ),
    Mistake(
        "psnr-y",
        PSNR.format(cast=CAST_OK, luma=LUMA_OK, crop=CROP_OK, psnr="10.0 * np.log(255.0**2 / mse)"),
        fails=["psnr-y-offset", "psnr-y-library"],
        why="natural log instead of log10",
    ),
    Mistake(
        "psnr-y",
        PSNR.format(cast=CAST_OK, luma=f"np.round({LUMA_OK})", crop=CROP_OK, psnr=PSNR_OK),
        fails=["psnr-y-offset", "psnr-y-library"],
        why="Y rounded to integers before the comparison",
    ),
    # --- Exercise 2: the discretized logistic of one pixel
    Mistake(
        "disc-logistic",
        LOGISTIC.format(inv_s="torch.exp(-log_scale)", hi=HI_OK, lo=LO_OK, edges="pass"),
        fails=["disc-logistic-normalised", "disc-logistic-library"],
        why="edge bins not opened to -inf / +inf: the probabilities do not sum to one",
    ),
    Mistake(
        "disc-logistic",
        LOGISTIC.format(
            inv_s="torch.exp(-log_scale)", hi="(y + 0.5) / num_bins", lo="(y - 0.5) / num_bins", edges=EDGES_OK
        ),
        fails=["disc-logistic-normalised", "disc-logistic-library"],
        why="bins centred on k/K instead of spanning [k/K, (k+1)/K)",
    ),
    Mistake(
        "disc-logistic",
        LOGISTIC.format(inv_s="torch.exp(log_scale)", hi=HI_OK, lo=LO_OK, edges=EDGES_OK),
        fails=["disc-logistic-normalised", "disc-logistic-library"],
        why="multiplied by the scale instead of dividing",
    ),
    Mistake(
        "disc-logistic",
        """def disc_logistic_log_prob(y, mean, log_scale, num_bins=256):
    t = ((y + 0.5) / num_bins - mean) * torch.exp(-log_scale)
    return F.logsigmoid(t) + F.logsigmoid(-t) - log_scale - math.log(num_bins)
""",
        fails=["disc-logistic-normalised", "disc-logistic-library"],
        why="density at the bin centre times the bin width instead of the CDF difference",
    ),
    # --- Exercise 3: the temperature-scaled prior sample
    Mistake(
        "temperature",
        TEMP.format(ret="temperature * (mean + torch.exp(log_std) * eps)"),
        fails=["temperature-check"],
        why="temperature applied to the mean as well",
    ),
    Mistake(
        "temperature",
        TEMP.format(ret="mean + temperature**2 * torch.exp(log_std) * eps"),
        fails=["temperature-check"],
        why="temperature scales the variance instead of the standard deviation",
    ),
    Mistake(
        "temperature",
        TEMP.format(ret="mean + torch.exp(temperature * log_std) * eps"),
        fails=["temperature-check"],
        why="temperature multiplies log sigma",
    ),
    Mistake(
        "temperature",
        TEMP.format(ret="mean + temperature * log_std * eps"),
        fails=["temperature-check"],
        why="log sigma used as sigma",
    ),
    Mistake(
        "psnr-y",
        PSNR.format(cast=CAST_OK, luma=LUMA_OK, crop="y_sr[border:-border, border:-border], y_hr", psnr=PSNR_OK),
        fails=["psnr-y-library"],
        why="border cropped from one image only",
    ),
    Mistake(
        "psnr-y",
        "def psnr_y_channel(sr, hr, border):\n    return psnr_y(torch.from_numpy(sr).permute(2, 0, 1), "
        "torch.from_numpy(hr).permute(2, 0, 1), border=border)\n",
        fails=["psnr-y-offset", "psnr-y-library"],
        why="calls the library's psnr_y",
    ),
    Mistake(
        "psnr-y",
        PSNR.format(
            cast=CAST_OK,
            luma=LUMA_OK,
            crop="y_sr[border:-border, border:-border], y_hr[border:-border, border:-border]",
            psnr=PSNR_OK,
        ).replace("    if border > 0:", "    if True:"),
        fails=["psnr-y-offset", "psnr-y-library"],
        why="no guard for border 0 (an empty slice [0:-0])",
    ),
    Mistake(
        "disc-logistic",
        LOGISTIC.format(
            inv_s="torch.exp(-log_scale)",
            hi="(y + 1) / 256",
            lo="y / 256",
            edges=EDGES_OK.replace("num_bins - 1", "255"),
        ),
        fails=["disc-logistic-normalised"],
        why="bin width hard-coded to 1/256",
    ),
    Mistake(
        "disc-logistic",
        LOGISTIC.format(inv_s="torch.exp(-log_scale)", hi=HI_OK, lo=LO_OK, edges=EDGES_OK).replace(
            "return torch.log(upper - lower)", "return torch.log(upper - lower).detach()"
        ),
        fails=["disc-logistic-library"],
        why="result detached: no gradient reaches mean and log_scale",
    ),
    Mistake(
        "disc-logistic",
        LOGISTIC.format(inv_s="torch.exp(-log_scale)", hi=HI_OK, lo=LO_OK, edges=EDGES_OK).replace(
            "return torch.log(upper - lower)", "return torch.tensor(np.log((upper - lower).detach().numpy()))"
        ),
        fails=["disc-logistic-library"],
        why="log taken in NumPy: right values, gradient cut",
    ),
    Mistake(
        "disc-logistic",
        LOGISTIC.format(
            inv_s="torch.exp(-log_scale)",
            hi=HI_OK,
            lo=LO_OK,
            edges="lower = torch.where(y == 0, torch.zeros_like(lower), lower)",
        ),
        fails=["disc-logistic-normalised", "disc-logistic-library"],
        why="only the first bin opened; the last bin stops at 1",
    ),
    Mistake(
        "disc-logistic",
        "def disc_logistic_log_prob(y, mean, log_scale, num_bins=256):\n"
        "    return discretized_logistic_log_prob_per_dim(y[None], mean[None], log_scale[None], num_bins)[0]\n",
        fails=["disc-logistic-normalised", "disc-logistic-library"],
        why="calls the library's discretized logistic",
    ),
    Mistake(
        "temperature",
        TEMP.format(ret="mean + temperature * torch.exp(log_std) * torch.randn_like(mean)"),
        fails=["temperature-check"],
        why="draws its own noise instead of using eps",
    ),
    Mistake(
        "temperature",
        "def tempered_prior_sample(mean, log_std, eps, temperature):\n    eps *= temperature * torch.exp(log_std)\n"
        "    return mean + eps\n",
        fails=["temperature-check"],
        why="scales eps in place, changing the caller's tensor",
    ),
    # --- Exercise 3: the CNF's likelihood of an SR pair
    Mistake(
        "sr-log-likelihood",
        SRLL.format(v=V_OK, z=Z_OK, hs=HS_OK, ret="log_p"),
        fails=SRLL_FAILS,
        why="forgot the dequantizer's log-density (D log 256)",
    ),
    Mistake(
        "sr-log-likelihood",
        SRLL.format(v=V_OK, z=Z_OK, hs=HS_OK, ret="log_p + y[0].numel() * math.log(256)"),
        fails=SRLL_FAILS,
        why="added log q instead of subtracting it",
    ),
    Mistake(
        "sr-log-likelihood",
        SRLL.format(v=V_OK, z=Z_OK, hs=HS_OK, ret="log_p - y.numel() * math.log(256)"),
        fails=SRLL_FAILS,
        why="D counted over the whole batch instead of one image",
    ),
    Mistake(
        "sr-log-likelihood",
        SRLL.format(v=V_OK, z="v", hs=HS_OK, ret=RET_OK),
        fails=SRLL_FAILS,
        why="fed v to the flow without the shift by 1/2",
    ),
    Mistake(
        "sr-log-likelihood",
        SRLL.format(v="(y.float() + u) / 255", z=Z_OK, hs=HS_OK, ret=RET_OK),
        fails=SRLL_FAILS,
        why="bins of width 1/255",
    ),
    Mistake(
        "sr-log-likelihood",
        SRLL.format(v="y.float() / 256 + u", z=Z_OK, hs=HS_OK, ret=RET_OK),
        fails=SRLL_FAILS,
        why="noise not scaled into the bin",
    ),
    Mistake(
        "sr-log-likelihood",
        SRLL.format(v=V_OK, z=Z_OK, hs=HS_OK, ret="(log_p - y[0].numel() * math.log(256)) / math.log(2)"),
        fails=SRLL_FAILS,
        why="returned bits instead of nats",
    ),
    Mistake(
        "sr-log-likelihood",
        SRLL.format(v="(y.float() + torch.rand_like(u)) / 256", z=Z_OK, hs=HS_OK, ret=RET_OK),
        fails=SRLL_FAILS,
        why="draws its own noise instead of using u",
    ),
    Mistake(
        "sr-log-likelihood",
        "def sr_log_likelihood(model, y, x, u):\n    return model.log_prob(y, x)\n",
        fails=SRLL_FAILS,
        why="calls the model's own log_prob",
    ),
    Mistake(
        "sr-log-likelihood",
        SRLL.format(v=V_OK, z=Z_OK, hs=HS_OK, ret="(log_p - y[0].numel() * math.log(256)).detach()"),
        fails=SRLL_FAILS,
        why="result detached from the model's parameters",
    ),
    Mistake(
        "disc-logistic",
        """def disc_logistic_log_prob(y, mean, log_scale, num_bins=256):
    inv_s = torch.exp(-log_scale)
    hi = torch.where(y == num_bins - 1, torch.full_like(y, math.inf), (y + 1) / num_bins)
    lo = torch.where(y == 0, torch.full_like(y, -math.inf), y / num_bins)
    return torch.log(torch.sigmoid((hi - mean) * inv_s) - torch.sigmoid((lo - mean) * inv_s))
""",
        fails=["disc-logistic-library"],
        why="edge bins opened with infinite edges: right values, but the gradient for log_scale is nan there",
    ),
    Mistake(
        "sr-log-likelihood",
        SRLL.format(v=V_OK, z=Z_OK, hs=HS_OK, ret=RET_OK).replace(
            "    hs = model.features(x)\n", "    with torch.no_grad():\n        hs = model.features(x)\n"
        ),
        fails=SRLL_FAILS,
        why="g(x) computed under torch.no_grad(): the conditioning network would never train",
    ),
]

CORRECT_VARIANTS = [
    Variant(
        "psnr-y",
        PSNR.format(cast="img.astype(np.float32)", luma=LUMA_OK, crop=CROP_OK, psnr=PSNR_OK),
        why="luminance in float32",
    ),
    Variant(
        "psnr-y",
        """def psnr_y_channel(sr, hr, border):
    w = np.array([65.481, 128.553, 24.966]) / 255.0
    y_sr, y_hr = 16.0 + sr.astype(float) @ w, 16.0 + hr.astype(float) @ w
    h, wd = y_sr.shape
    y_sr, y_hr = y_sr[border : h - border, border : wd - border], y_hr[border : h - border, border : wd - border]
    return 20 * math.log10(255.0) - 10 * math.log10(((y_sr - y_hr) ** 2).mean())
""",
        why="matrix product for Y, explicit slice ends, PSNR as 20 log10(255) - 10 log10(MSE)",
    ),
    Variant(
        "psnr-y",
        """def psnr_y_channel(sr, hr, border):
    def luma(img):
        t = torch.from_numpy(img).double()
        return 16 + (65.481 * t[..., 0] + 128.553 * t[..., 1] + 24.966 * t[..., 2]) / 255
    d = luma(sr) - luma(hr)
    if border:
        d = d[border:-border, border:-border]
    return (10 * torch.log10(255**2 / (d**2).mean())).item()
""",
        why="computed in torch, returned with .item()",
    ),
    Variant(
        "disc-logistic",
        """def disc_logistic_log_prob(y, mean, log_scale, num_bins=256):
    s = log_scale.exp()
    cdf = lambda t: torch.sigmoid((t - mean) / s)  # noqa: E731
    upper = torch.where(y >= num_bins - 1, torch.ones_like(mean), cdf((y + 1) / num_bins))
    lower = torch.where(y <= 0, torch.zeros_like(mean), cdf(y / num_bins))
    return (upper - lower).log()
""",
        why="divides by s, a CDF helper, comparisons with >= / <=",
    ),
    Variant(
        "disc-logistic",
        LOGISTIC.format(inv_s="torch.exp(-log_scale)", hi=HI_OK, lo=LO_OK, edges=EDGES_OK).replace(
            "def disc_logistic_log_prob(y, mean, log_scale, num_bins=256):",
            "def disc_logistic_log_prob(y, mean, log_scale, num_bins=256):\n"
            "    y, mean, log_scale = y.float(), mean.float(), log_scale.float()",
        ),
        why="computed in float32 whatever the input dtype",
    ),
    Variant(
        "temperature",
        TEMP.format(ret="torch.addcmul(mean, temperature * log_std.exp(), eps)"),
        why="torch.addcmul",
    ),
    Variant(
        "temperature",
        TEMP.format(ret="mean + eps * (log_std.exp() * temperature)"),
        why="factors in another order",
    ),
    Variant(
        "sr-log-likelihood",
        SRLL.format(v="(y.double() + u.double()) / 256", z="(v - 0.5).float()", hs="hs", ret=RET_OK),
        why="dequantized in float64 then cast; passes all feature maps (uniform dequantization has one per level)",
    ),
    Variant(
        "sr-log-likelihood",
        SRLL.format(v=V_OK, z=Z_OK, hs=HS_OK, ret="log_p - y.shape[1] * y.shape[2] * y.shape[3] * math.log(256.0)"),
        why="D from the shape",
    ),
    Variant(
        "sr-log-likelihood",
        SRLL.format(v="y.float() / 256 + u / 256", z=Z_OK, hs=HS_OK, ret="log_p + y[0].numel() * math.log(1 / 256)"),
        why="v written as y/256 + u/256 and log q as -D log(1/256)",
    ),
    Variant(
        "disc-logistic",
        """def disc_logistic_log_prob(y, mean, log_scale, num_bins=256):
    hi = torch.where(y == num_bins - 1, torch.full_like(y, 1e4), (y + 1) / num_bins)
    lo = torch.where(y == 0, torch.full_like(y, -1e4), y / num_bins)
    s = torch.exp(log_scale)
    return torch.log(torch.sigmoid((hi - mean) / s) - torch.sigmoid((lo - mean) / s))
""",
        why="edge bins opened with far-away finite edges (the CDF is 0 or 1 there, gradients stay finite)",
    ),
    Variant(
        "sr-log-likelihood",
        """def sr_log_likelihood(model, y, x, u):
    features = model.features(x)[: model.config.levels]
    d = y.shape[1:].numel()
    return model.flow.log_prob((y + u) / 256.0 - 0.5, features) - d * math.log(256.0)
""",
        why="uint8 y promoted by the addition, D from torch.Size.numel",
    ),
]
