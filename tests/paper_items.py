"""The numbered items of Winkler et al. 2019 and a scanner for the project's citations of them.

The registry lists every equation, table, figure and section of *Learning Likelihoods with
Conditional Normalizing Flows* (Winkler, Worrall, Hoogeboom & Welling, arXiv:1912.00042) with
its subject in a few words and a regular expression of words that a sentence citing it should
contain nearby. ``tests/test_paper_refs.py`` scans the project's ``.py``, ``.md`` and ``.ipynb``
files for "eq. (N)", "Table N", "Fig. N" / "Figure N" and "§N" and checks each citation of
the paper against it, so that numbering cannot drift.

A citation is taken to be of Winkler et al. unless another paper's author is named closer
before it (e.g. "Kingma & Dhariwal 2018, §3.2", "Dinh et al. 2017, §4.1") or it is followed
by "of <author>". A bibliographic line (one that names the paper's title or arXiv id, such as a
docstring's "References:" entry) says little about its subject itself, so there each cited item is
checked on its own against the whole passage the line belongs to: the docstring of a ``.py``
file, the section of a Markdown file (heading to heading), the notebook cell. The title and the
arXiv id are left out of that passage, since "Conditional Normalizing Flows" would otherwise
match most subjects.

References:
    Winkler, Worrall, Hoogeboom, Welling. Learning Likelihoods with Conditional Normalizing
    Flows. arXiv:1912.00042, 2019.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EQUATIONS",
    "FIGURES",
    "SECTIONS",
    "TABLES",
    "Citation",
    "Item",
    "check_citation",
    "find_citations",
    "iter_project_texts",
    "registry",
]


@dataclass(frozen=True)
class Item:
    """One numbered item of the paper.

    Attributes:
        subject: What it is, in a few words (used in error messages).
        keywords: A case-insensitive regular expression; a citation's neighbourhood must match it.
        heading: For verification against the paper's text: a string the item's caption or
            heading contains there (``None`` for equations, found by their number).
    """

    subject: str
    keywords: str
    heading: str | None = None


_FLOW = (
    r"flow|change of variables|change-of-variables|jacobian|log-?det|logabsdet|log\|det|\\det|bijecti|invertib"
    r"|density|p_y"
)
_DEQ = r"dequantiz|dequantis|quantiz|discrete|bound|jensen|lower|variational|q\(v|elbo|bits"

EQUATIONS: dict[str, Item] = {
    "1": Item("change of variables of an (unconditional) normalizing flow", _FLOW),
    "2": Item("dequantization as a latent-variable model", _DEQ + r"|latent|integral"),
    "3": Item("log-likelihood of the dequantized model", _DEQ),
    "4": Item("Jensen lower bound with a dequantizer q(v|y)", _DEQ),
    "5": Item("variational dequantization bound", _DEQ),
    "6": Item(
        "factored (conditionally independent) model",
        r"factori[sz]ed|factored|independen|per-pixel|per pixel"
        r"|product|baseline|logistic|bernoulli|cross-entropy|mse|squared|pixel",
    ),
    "7": Item(
        "likelihood of a conditional normalizing flow",
        r"condition|p\(y|p_\{?y|prior|change of variables"
        r"|likelihood|log_prob|cnf|flow|log-?det",
    ),
    "8": Item("binary dequantization with half-infinite noise", r"binary|half|softplus|sign|dequantiz|dequantis"),
    "9": Item(
        "weighted Bernoulli likelihood of segmentation",
        r"weighted|bernoulli|beta|cross-entropy|bce|class"
        r"|imbalance|vessel|normalis|normaliz|baseline",
    ),
}

TABLES: dict[str, Item] = {
    "1": Item(
        "bits/dim on ImageNet32/64, CNF vs factorized baseline",
        r"imagenet|bits|bpd|likelihood|factori[sz]ed"
        r"|baseline|cnf",
        "Table 1: Comparison of likelihood learning",
    ),
    "2": Item(
        "Set5/Set14/BSD100: bits/dim, PSNR, SSIM",
        r"set5|set14|bsd100|psnr|ssim|benchmark|bicubic|bits|bpd"
        r"|protocol|eval",
        "Table 2: CNF compared to factorized discrete baseline",
    ),
    "3": Item(
        "DRIVE results: bits/dim and F-score",
        r"drive|vessel|f-score|f score|max f|max-f|bits|bpd|uniform"
        r"|segment|human|retina|baseline|std|runs",
        "Table 3: Numerical results on the DRIVE dataset",
    ),
    "4": Item(
        "VGG-like feature extractor for vessel segmentation",
        r"vgg|feature|extractor|conditioner|g\(x\)|pool"
        r"|layer|block",
        "Table 4: Feature extractor architecture",
    ),
    "5": Item(
        "configuration of the CNF (batch, levels, sub-flows, learning rate)",
        r"configuration|config|levels"
        r"|sub-?flows|minibatch|batch|learning rate|\blr\b|adam|\bL\s*=|\bK\s*=|settings|imagenet|drive",
        "Table 5: Configuration",
    ),
    "6": Item(
        "coupling-layer network of the super-resolution CNF",
        r"coupling|conv|512|hidden|net",
        "Table 6: Architecture details for a single coupling layer in the super resolution",
    ),
    "7": Item(
        "coupling-layer network of the DRIVE CNF",
        r"coupling|instancenorm|instance norm|conv|32|net|drive"
        r"|vessel",
        "Table 7: Architecture details for a single coupling layer in the DRIVE",
    ),
    "8": Item(
        "RRDB conditioning network of the super-resolution models",
        r"rrdb|residual-in-residual|dense|growth"
        r"|conditioning network|conditioner|context|g\(x\)|feature",
        "Table 8: Architecture details for the conditioning network",
    ),
}

FIGURES: dict[str, Item] = {
    "1": Item(
        "diagram of the model in the training and sampling phases",
        r"diagram|train|sampl|generative process"
        r"|determinist|dashed|solid|direction|inverse",
        "Figure 1: Diagram of our model",
    ),
    "2": Item(
        "super-resolution samples on ImageNet64 (CNF samples, baseline mode)",
        r"imagenet|super-?resolution"
        r"|\bsr\b|\bmode\b|crisp|high-resolution|\bhr\b",
        "Figure 2: Super resolution results on the Imagenet64",
    ),
    "3": Item(
        "CNF samples at temperatures 0, 0.5, 1 and the baseline (baboon, Set14)",
        r"temperature|\\tau|τ|tau"
        r"|baboon|set14",
        "Figure 3: Conditional samples from the CNF",
    ),
    "4": Item(
        "retinal segmentations (DRIU, baseline, CNF mean of samples)",
        r"retina|vessel|segmentation|driu"
        r"|dilat|soft|mean of|width|side by side",
        "Figure 4: Example of retinal segmentations",
    ),
    "5": Item(
        "PR curves and PR-space scatter of samples",
        r"\bpr\b|precision|recall|curve|scatter|f-score|calibrat",
        "Figure 5: Here we show two visualizations",
    ),
    "6": Item(
        "the conditional coupling layer, forward and reverse",
        r"coupling|concat|affine|forward|reverse"
        r"|scale|shift|translation|condition",
        "Figure 6: The forward and reverse paths",
    ),
    "7": Item("ImageNet64 SR samples at temperature 0", r"temperature|\\tau|τ|tau|sample", "Figure 7:"),
    "8": Item("ImageNet64 SR samples at temperature 0.5", r"temperature|\\tau|τ|tau|sample", "Figure 8:"),
    "9": Item("ImageNet64 SR samples at temperature 0.8", r"temperature|\\tau|τ|tau|sample", "Figure 9:"),
}

_ANY_FLOW_TOPIC = _FLOW + r"|coupling|squeeze|split|1x1|actnorm|multi-scale|multiscale|level"
SECTIONS: dict[str, Item] = {
    "1": Item(
        "introduction",
        r"introduction|mode collapse|gan|adversarial|crf|random field|structured|design"
        r"|factor|multimodal|segmentation|baseline",
        "## 1 INTRODUCTION",
    ),
    "2": Item(
        "background", _ANY_FLOW_TOPIC + r"|" + _DEQ + r"|structured|factor|integral|background", "## 2 BACKGROUND"
    ),
    "2.1": Item(
        "normalizing flows (coupling, 1x1 conv, squeeze, split prior, dequantization)",
        _ANY_FLOW_TOPIC + r"|" + _DEQ,
        "### 2.1 NORMALIZING FLOWS",
    ),
    "2.2": Item(
        "structured prediction with factored models",
        r"structured|factor|independen|mode|blurry|loss",
        "## 2.2 STRUCTURED PREDICTION",
    ),
    "3": Item(
        "method: conditional flows and binary dequantization",
        r"condition|cnf|dequantiz|" + _ANY_FLOW_TOPIC,
        "## 3 METHOD",
    ),
    "3.1": Item(
        "conditional normalizing flows and conditional modules",
        r"condition|prior|split|coupling|g\(x\)"
        r"|h = g|concat|cnf|p\(z",
        "### 3.1 CONDITIONAL NORMALIZING FLOWS",
    ),
    "3.2": Item(
        "variational dequantization for binary variables",
        r"binary|dequantiz|dequantis|half|softplus|eq\. ?\(8",
        "### 3.2 VARIATIONAL DEQUANTIZATION FOR BINARY",
    ),
    "4": Item("related work", r"related|prior work|literature", "## 4 RELATED WORK"),
    "5": Item(
        "experiments",
        r"experiment|super-?resolution|\bsr\b|vessel|segmentation|drive|imagenet|table|coupling"
        r"|conv",
        "## 5 EXPERIMENTS",
    ),
    "5.1": Item(
        "single-image super-resolution",
        r"super-?resolution|\bsr\b|imagenet|rrdb|set5|set14|bsd100|psnr"
        r"|ssim|temperature|\\tau|τ|crop|pad|bicubic|logistic|baseline|high-resolution|\bhr\b|\blr\b|adam|iteration"
        r"|conditioning|multi-?scale|implementation|dequantiz|uniform noise|levels|validation|held out|hold-?out",
        "### 5.1 SINGLE IMAGE SUPER RESOLUTION",
    ),
    "5.1.1": Item(
        "evaluation of super-resolution",
        r"evaluat|bits|bpd|psnr|ssim|temperature|crop|τ|\\tau|colou?r noise",
        "### 5.1.1 EVALUATION",
    ),
    "5.2": Item(
        "vessel segmentation",
        r"vessel|drive|segment|retina|fundus|weighted|instance|vgg|1024|rotation"
        r"|augment|f-score|\bpr\b|precision|sample|dequantiz|additive|volume|mask|label|beta|driu|soft",
        "## 5.2 VESSEL SEGMENTATION",
    ),
    "6": Item("conclusion", r"conclu", "## 6 CONCLUSION"),
    "A": Item("appendix A: architectures", r"architect|table|coupling|configuration|appendix", "## A ARCHITECTURES"),
    "B": Item(
        "appendix B: conditional image generation samples",
        r"sample|temperature|imagenet|appendix",
        "## B CONDITIONAL IMAGE GENERATION",
    ),
}


def registry() -> dict[str, dict[str, Item]]:
    """The four kinds of items by kind: ``{"eq": ..., "table": ..., "fig": ..., "section": ...}``."""
    return {"eq": EQUATIONS, "table": TABLES, "fig": FIGURES, "section": SECTIONS}


# --- finding citations -----------------------------------------------------------------------------
_NUM = r"\(?\d+\)?"
_LIST_SEP = r"\s*(?:,|-|–|—|and|to|&)\s*"
_PATTERNS = {
    "eq": re.compile(rf"\b(?:eqs?\.|Eqs?\.|equations?|Equations?)\s*({_NUM}(?:{_LIST_SEP}{_NUM})*)"),
    "table": re.compile(rf"\bTables?\s+(\d+(?:{_LIST_SEP}\d+\b)*)"),
    "fig": re.compile(rf"\b(?:Figs?\.|Figures?)\s*(\d+(?:{_LIST_SEP}\d+\b)*)"),
    "section": re.compile(r"§\s*(\d+(?:\.\d+)*|[AB]\b)"),
}

#: Authors of the other papers the project cites with numbers of their own.
OTHER_AUTHORS = re.compile(
    r"\b(?:Kingma|Dhariwal|Dinh|Sohl-Dickstein|Ho|Salimans|Theis|Wang|Xie|Tu|Ulyanov|Staal|Papamakarios|Lim|Dong"
    r"|Zhang|Simonyan|Rezende|Mohamed|Huang|Lugmayr|Ardizzone|Maninis|Chrabaszcz|Hoogeboom|Krueger|Glow|RealNVP"
    r"|NICE|ESRGAN|EDSR|RCAN|PixelCNN\+\+|Flow\+\+|HED|Durkan|Grathwohl|Chen|Behrmann|Kobyzev|Bevilacqua|Zeyde"
    r"|Martin|Timofte|Agustsson)\b"
)
WINKLER = re.compile(r"Winkler|the paper|paper's|arXiv:1912\.00042|Learning Likelihoods")
_BIBLIOGRAPHIC = re.compile(r"Learning Likelihoods|arXiv:1912\.00042")


@dataclass(frozen=True)
class Citation:
    """One numbered citation found in a text.

    Attributes:
        kind: ``"eq"``, ``"table"``, ``"fig"`` or ``"section"``.
        number: The cited number as printed (``"9"``, ``"5.2"``, ``"A"``).
        where: ``path:line`` (for notebooks ``path:cell N:line``).
        text: The matched citation.
        context: The words around it (the citation itself blanked out).
        winkler: Whether the citation is attributed to Winkler et al.
        bibliographic: Whether it sits in a reference line; its ``context`` is then the whole
            passage (docstring, Markdown section or cell) without the paper's title, and each
            item of its group must match on its own.
        group: All numbers of the citation it belongs to (``("5", "6", "8")`` for "Tables 5, 6 and 8").
        passage: For a bibliographic line or a citation of several items, the passage it belongs
            to (docstring, Markdown section or cell, without the paper's title), blanked as ``context``.
    """

    kind: str
    number: str
    where: str
    text: str
    context: str
    winkler: bool
    bibliographic: bool
    group: tuple[str, ...] = ()
    passage: str = ""


def _numbers(kind: str, group: str) -> list[str]:
    if kind == "section":
        return [group]
    parts = re.split(r"(\s*(?:,|-|–|—|and|to|&)\s*)", group)
    values = [re.sub(r"[()]", "", p) for p in parts[0::2]]
    seps = [s.strip() for s in parts[1::2]]
    out = [values[0]]
    for sep, value in zip(seps, values[1:], strict=True):
        if sep in ("-", "–", "—", "to") and out[-1].isdigit() and value.isdigit() and int(value) > int(out[-1]):
            out += [str(n) for n in range(int(out[-1]) + 1, int(value) + 1)]
        else:
            out.append(value)
    return out


def _attributed_to_winkler(before: str, after: str) -> bool:
    if re.match(r"\W{0,3}(?:of|in)\s+" + OTHER_AUTHORS.pattern, after):
        return False
    other = [m.end() for m in OTHER_AUTHORS.finditer(before)]
    own = [m.end() for m in WINKLER.finditer(before)]
    if not other:
        return True
    return bool(own) and own[-1] > other[-1]


def _context(lines: list[str], lineno: int) -> str:
    """Three lines either side; a Markdown heading also takes the paragraph below it."""
    lo, hi = max(0, lineno - 3), min(len(lines), lineno + 4)
    if lineno < len(lines) and lines[lineno].lstrip().startswith("#") and not lines[lineno].lstrip().startswith("#:"):
        hi = min(len(lines), lineno + 10)
    return "\n".join(lines[lo:hi])


_TITLE = re.compile(r"Learning Likelihoods with Conditional Normali[sz]ing Flows|arXiv:\s*1912\.00042", re.IGNORECASE)


def _passage(text: str, lines: list[str], lineno: int, pos: int, where: str) -> str:
    """The passage a bibliographic line belongs to, without the paper's title.

    A ``.py`` file: the docstring around ``pos`` (or three lines either side outside one). A
    Markdown file: the lines from the heading above to the next heading. A notebook cell: the cell.
    """
    if where.endswith(".py"):
        quotes = [m.start() for m in re.finditer(r'"""', text)]
        before = [q for q in quotes if q < pos]
        if len(before) % 2 == 1:  # inside a docstring
            after = [q for q in quotes if q > pos]
            passage = text[before[-1] : after[0] if after else len(text)]
        else:
            passage = _context(lines, lineno)
    elif where.endswith(".md"):
        heads = [i for i, line in enumerate(lines) if line.startswith("#")]
        lo = max([i for i in heads if i <= lineno], default=0)
        hi = min([i for i in heads if i > lineno], default=len(lines))
        passage = "\n".join(lines[lo:hi])
    else:
        passage = text
    return _TITLE.sub(" ", passage)


def find_citations(text: str, where: str, line_offset: int = 0) -> Iterator[Citation]:
    """Every numbered citation in ``text`` with its attribution and neighbourhood.

    A citation of several items ("Tables 5, 6 and 8") yields one :class:`Citation` per item,
    all with the same ``text``.

    Args:
        text: The text to scan (a file, or one notebook cell).
        where: Its name in messages (``path`` or ``path:cell N``).
        line_offset: Added to line numbers.
    """
    lines = text.splitlines()
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    for kind, pattern in _PATTERNS.items():
        for m in pattern.finditer(text):
            lineno = max(i for i, s in enumerate(starts) if s <= m.start())
            nearby = "\n".join(lines[max(0, lineno - 1) : lineno + 1])
            bibliographic = bool(_BIBLIOGRAPHIC.search(nearby))
            numbers = _numbers(kind, m.group(1))
            wide = bibliographic or len(numbers) > 1
            passage = _passage(text, lines, lineno, m.start(), where).replace(m.group(0), " ") if wide else ""
            context = passage if bibliographic else _context(lines, lineno).replace(m.group(0), " ")
            before = text[max(0, m.start() - 200) : m.start()]
            after = text[m.end() : m.end() + 40]
            for number in numbers:
                yield Citation(
                    kind=kind,
                    number=number,
                    where=f"{where}:{lineno + 1 + line_offset}",
                    text=m.group(0),
                    context=context,
                    winkler=_attributed_to_winkler(before, after),
                    bibliographic=bibliographic,
                    group=tuple(numbers),
                    passage=passage,
                )


def check_citation(c: Citation) -> str | None:
    """``None`` when a citation of Winkler et al. names an existing item with a matching subject, else why not.

    A single item must match its neighbourhood (three lines either side). A citation of several
    items in running text ("Tables 5, 6 and 8") must match the subject of at least one of them
    nearby, and each item must match its own subject nearby or in the passage the citation
    belongs to. In a bibliographic line, which names no subject itself, each item must match the
    passage.
    """
    if not c.winkler:
        return None
    items = registry()[c.kind]
    if c.number not in items:
        return f"{c.where}: {c.text!r} cites {c.kind} {c.number}, which the paper does not have"
    item = items[c.number]
    group = [items[n] for n in c.group if n in items] or [item]
    if c.bibliographic:
        ok = bool(re.search(item.keywords, c.context, re.IGNORECASE))
    elif len(c.group) > 1:
        ok = any(re.search(i.keywords, c.context, re.IGNORECASE) for i in group) and any(
            re.search(item.keywords, text, re.IGNORECASE) for text in (c.context, c.passage)
        )
    else:
        ok = bool(re.search(item.keywords, c.context, re.IGNORECASE))
    if ok:
        return None
    return (
        f"{c.where}: {c.text!r} cites {c.kind} {c.number} of the paper ({item.subject}), but nothing nearby is "
        f"about that: {' '.join(c.context.split())[:160]!r}"
    )


# --- the project's texts --------------------------------------------------------------------------
_SKIP_DIRS = {".git", ".venv", "site", "build", "dist", "node_modules", "__pycache__", ".ipynb_checkpoints"}
_SKIP_FILES = {"tests/paper_items.py", "tests/test_paper_refs.py"}


def iter_project_texts(root: Path) -> Iterator[tuple[str, str, int]]:
    """``(where, text, line_offset)`` for every ``.py``, ``.md`` and notebook cell of the project.

    Skips virtual environments, build outputs, the generated student notebooks and this
    registry with its test (which quote wrong citations on purpose).
    """
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        if rel.as_posix() in _SKIP_FILES or rel.parts[:2] == ("tutorials", "student") or not path.is_file():
            continue
        if path.suffix in (".py", ".md"):
            yield rel.as_posix(), path.read_text(encoding="utf-8"), 0
        elif path.suffix == ".ipynb":
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
            for i, cell in enumerate(cells):
                source = cell.get("source", "")
                yield f"{rel.as_posix()}:cell {i}", "".join(source) if isinstance(source, list) else source, 0
