"""Typical wrong answers to the capstone ``tutorials/08_capstone_colourisation.ipynb``, and correct variants.

Each wrong answer must fail exactly the test cells listed in ``fails``; each variant must pass every
test cell (see ``test_grading.py``). The answers are the solution's cells with one edit each, so that
a change to the solution that makes an edit miss its target fails loudly here.
"""

from pathlib import Path

import nbformat
from harness import TUTORIALS, Mistake, Variant

NOTEBOOK = TUTORIALS / "08_capstone_colourisation.ipynb"


def _solutions(path: Path) -> dict[str, str]:
    nb = nbformat.read(path, as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            out[meta["grade_id"]] = cell.source
    return out


SOLUTIONS = _solutions(NOTEBOOK)


def edit(answer_id: str, *pairs: tuple[str, str]) -> str:
    """The solution of ``answer_id`` with each ``(old, new)`` replaced once; ``old`` must occur."""
    source = SOLUTIONS[answer_id]
    for old, new in pairs:
        if source.count(old) != 1:
            raise ValueError(f"{answer_id}: the text to replace occurs {source.count(old)} times: {old!r}")
        source = source.replace(old, new)
    return source


BPD, MODEL, TRAIN = "chroma-bpd", "colouriser", "train"
NOISE = "noise = torch.rand(chroma.shape, generator=generator)"
V = "v = (chroma + noise) / 256"
LOG_P = "log_p = model.log_prob(v, luma) - num_dims * math.log(256)"
RET = "return -log_p / (num_dims * math.log(2))"
HELDOUT = ["train-runs", "heldout-bpd"]
SPY = ["train-spy"]  # the spy model sees the (v, luma) pairs, the noise and the steps

MISTAKES = [
    # --- Exercise 1: dequantized bits per dimension -------------------------------------------------
    Mistake(BPD, edit(BPD, (V, "v = chroma / 256")), ["chroma-bpd-noise"], "no dequantization noise"),
    Mistake(BPD, edit(BPD, (V, "v = (chroma + 0.5) / 256")), ["chroma-bpd-noise"], "the bin centre, no noise"),
    Mistake(BPD, edit(BPD, (V, "v = (chroma + noise - 0.5) / 256")), ["chroma-bpd-noise"], "noise centred on c"),
    Mistake(BPD, edit(BPD, (V, "v = chroma / 255 + noise / 256")), ["chroma-bpd-noise"], "scaled by 255"),
    Mistake(BPD, edit(BPD, (NOISE, "noise = torch.rand(chroma.shape)")), ["chroma-bpd-noise"], "ignores generator"),
    Mistake(BPD, edit(BPD, (LOG_P, "log_p = model.log_prob(v, luma)")), ["chroma-bpd-value"], "no bin width"),
    Mistake(BPD, edit(BPD, (RET, "return -log_p / num_dims")), ["chroma-bpd-value"], "nats, not bits"),
    Mistake(
        BPD,
        edit(BPD, ("num_dims = chroma[0].numel()", "num_dims = chroma.shape[2] * chroma.shape[3]")),
        ["chroma-bpd-value"],
        "counts the pixels, not both chroma channels of each",
    ),
    Mistake(
        BPD,
        edit(BPD, (RET, "return (-log_p / (num_dims * math.log(2))).mean()")),
        ["chroma-bpd-value"],
        "one number for the batch",
    ),
    Mistake(
        BPD,
        edit(BPD, (RET, "return torch.tensor((-log_p / (num_dims * math.log(2))).tolist())")),
        ["chroma-bpd-value", *HELDOUT],
        "the value through a Python list: no gradient, training cannot start",
    ),
    Mistake(
        BPD,
        edit(BPD, (LOG_P, "log_p = model.log_prob(v, torch.zeros_like(luma)) - num_dims * math.log(256)")),
        ["chroma-bpd-noise"],  # the held-out threshold alone would not catch it: a flow that ignores the luma passes it
        "the luma is not passed on (zeros instead)",
    ),
    # --- Exercise 2: the colouriser ------------------------------------------------------------------
    Mistake(
        MODEL,
        edit(
            MODEL,
            (
                "return self.flow.inverse_transform(latents, hs) + 0.5",
                "return self.flow.inverse_transform(latents, hs)",
            ),
        ),
        ["colouriser-invertible"],
        "decode forgets to undo the centring",
    ),
    Mistake(
        MODEL,
        edit(MODEL, ("logdet = logdet - sum_except_batch(log_std)", "")),
        ["colouriser-logdet"],
        "the top prior's standardisation is missing from the log-det",
    ),
    Mistake(
        MODEL,
        edit(MODEL, ("logdet = logdet - sum_except_batch(log_std)", "logdet = logdet + sum_except_batch(log_std)")),
        ["colouriser-logdet"],
        "the top prior's log-det with the wrong sign",
    ),
    Mistake(
        MODEL,
        edit(
            MODEL,
            (
                "latents[-1] = mean + torch.exp(log_std) * latents[-1]",
                "latents[-1] = (latents[-1] - mean) * torch.exp(-log_std)",
            ),
        ),
        ["colouriser-invertible"],
        "decode standardises again instead of undoing the standardisation",
    ),
    Mistake(
        MODEL,
        edit(
            MODEL,
            (
                "parts = torch.split(z, [math.prod(s) for s in shapes], dim=1)",
                "parts = torch.split(z, [math.prod(s) for s in shapes][::-1], dim=1)[::-1]",
            ),
        ),
        ["colouriser-invertible"],
        "decode reads the latents from the wrong end of z",
    ),
    Mistake(
        MODEL,
        edit(
            MODEL,
            (
                "hs = self.flow.features(luma)\n        latents, logdet",
                "hs = self.flow.features(torch.zeros_like(luma))\n        latents, logdet",
            ),
            (
                "hs = self.flow.features(luma)\n        shapes",
                "hs = self.flow.features(torch.zeros_like(luma))\n        shapes",
            ),
        ),
        ["colouriser-conditional"],
        "the luma never reaches the flow (the budget's threshold alone passes it)",
    ),
    Mistake(
        MODEL,
        edit(MODEL, ("return z, logdet", "return z.detach(), logdet.detach()")),
        ["colouriser-logdet", "colouriser-conditional", *HELDOUT],
        "encode detaches its outputs",
    ),
    # --- Exercise 3: training ------------------------------------------------------------------------
    Mistake(
        TRAIN,
        edit(
            TRAIN,
            (
                "loss = chroma_bits_per_dim(model, c, x, generator).mean()",
                "loss = -chroma_bits_per_dim(model, c, x, generator).mean()",
            ),
        ),
        HELDOUT,
        "maximises the bits/dim",
    ),
    Mistake(TRAIN, edit(TRAIN, ("        opt.step()\n", "")), HELDOUT, "never steps the optimiser"),
    Mistake(
        TRAIN,
        edit(TRAIN, ("losses.append(loss.item())", "losses.append(loss)")),
        ["train-runs"],
        "losses kept as tensors",
    ),
    Mistake(TRAIN, edit(TRAIN, ("lr: float = 2e-3", "lr: float = 2.0")), HELDOUT, "a learning rate 1000x too big"),
    Mistake(
        BPD,
        edit(BPD, (NOISE, "noise = torch.rand(chroma.shape[0], 1, *chroma.shape[2:], generator=generator)")),
        ["chroma-bpd-noise"],
        "one noise value shared by the two chroma channels of a pixel",
    ),
    Mistake(
        BPD,
        edit(BPD, (NOISE, "noise = torch.rand(chroma.shape[1:], generator=generator)")),
        ["chroma-bpd-noise"],
        "the same noise for every crop of the batch",
    ),
    Mistake(
        BPD,
        edit(BPD, (NOISE, "noise = torch.rand(*chroma.shape[:2], 1, 1, generator=generator)")),
        ["chroma-bpd-noise"],
        "one noise value per channel of a crop, shared by its pixels",
    ),
    Mistake(
        BPD,
        edit(BPD, (NOISE, "noise = torch.rand(chroma.shape, generator=generator, dtype=torch.float64)")),
        ["chroma-bpd-noise", *HELDOUT],
        "v in float64: the float32 colouriser of Exercise 3 cannot take it",
    ),
    Mistake(TRAIN, edit(TRAIN, ("for _ in range(steps):", "for _ in range(STEPS):")), SPY, "ignores `steps`"),
    Mistake(
        TRAIN,
        edit(TRAIN, ("c, x = chroma[idx], luma[idx]", "c, x = chroma[idx], luma[idx.flip(0)]")),
        SPY,
        "each chroma paired with another crop's luma",
    ),
    Mistake(
        TRAIN,
        edit(
            TRAIN,
            (
                "c, x = chroma[idx], luma[idx]",
                "c, x = chroma[idx], luma[torch.randint(len(luma), (batch_size,), generator=generator)]",
            ),
        ),
        SPY,
        "chroma and luma drawn with separate random indices",
    ),
    Mistake(TRAIN, edit(TRAIN, ("c, x = c.flip(3), x.flip(3)", "c = c.flip(3)")), SPY, "flips the chroma only"),
    Mistake(
        TRAIN,
        edit(
            TRAIN,
            (
                "loss = chroma_bits_per_dim(model, c, x, generator).mean()",
                "loss = (8 - model.log_prob(c.float() / 256, x) / (c[0].numel() * math.log(2))).mean()",
            ),
        ),
        SPY,
        "trains on the chroma without dequantization noise",
    ),
    Mistake(
        TRAIN,
        edit(
            TRAIN,
            ("idx = torch.randint(len(chroma), (batch_size,), generator=generator)", "idx = torch.arange(batch_size)"),
        ),
        [*SPY, "heldout-bpd"],  # 60 steps on 32 crops overfit them in fast mode
        "the same first crops in every batch",
    ),
]

CORRECT_VARIANTS = [
    Variant(BPD, edit(BPD, (V, "v = ((chroma.double() + noise.double()) / 256).float()")), "v computed in float64"),
    Variant(
        BPD,
        edit(
            BPD,
            (LOG_P, "log_p = model.log_prob(v, luma)"),
            (RET, "return (-log_p / num_dims + math.log(256)) / math.log(2)"),
        ),
        "the bin width added in bits after the division",
    ),
    Variant(
        TRAIN,
        edit(
            TRAIN,
            ("sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)", "sched = None"),
            ("        sched.step()\n", ""),
            ("        nn.utils.clip_grad_norm_(model.parameters(), 10.0)\n", ""),
        ),
        "no learning-rate schedule, no clipping",
    ),
    Variant(
        BPD,
        edit(BPD, (NOISE, "noise = torch.empty(chroma.shape).uniform_(generator=generator)")),
        "noise drawn with Tensor.uniform_",
    ),
    Variant(
        TRAIN,
        """def train_colouriser(model, chroma, luma, steps, batch_size=64, lr=2e-3, generator=None):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order, losses = torch.randperm(len(chroma), generator=generator), []
    for step in range(steps):
        start = (step * batch_size) % len(chroma)
        idx = order[start : start + batch_size]  # shuffled epochs; the last batch of an epoch may be smaller
        flip = torch.rand(len(idx), 1, 1, 1, generator=generator) < 0.5  # a flip per crop, the same for both
        c = torch.where(flip, chroma[idx].flip(-1), chroma[idx])
        x = torch.where(flip, luma[idx].flip(-1), luma[idx])
        v = (c + torch.rand(c.shape, generator=generator)) / 256
        loss = (8 - model.log_prob(v, x) / (c[0].numel() * math.log(2))).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses
""",
        "shuffled epochs, a flip per crop, the dequantized bits/dim written inline",
    ),
    Variant(
        TRAIN,
        edit(TRAIN, ("c, x = c.flip(3), x.flip(3)", "c, x = c.flip(2), x.flip(2)")),
        "flips up-down instead of left-right (both tensors)",
    ),
]
