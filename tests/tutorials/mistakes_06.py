"""Typical wrong answers to the exercises of ``tutorials/06_super_resolution.ipynb``.

Each must fail exactly the test cells listed in ``fails`` (see ``test_grading.py``).
"""

from harness import Mistake

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
        fails=["disc-logistic-library"],
        why="bins centred on k/K instead of spanning [k/K, (k+1)/K)",
    ),
    Mistake(
        "disc-logistic",
        LOGISTIC.format(inv_s="torch.exp(log_scale)", hi=HI_OK, lo=LO_OK, edges=EDGES_OK),
        fails=["disc-logistic-library"],
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
]
