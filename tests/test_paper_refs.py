"""Every "eq. (N)", "Table N", "Fig. N" and "§N" the project cites names an item of the paper, on its subject.

The registry of the paper's items is ``tests/paper_items.py``. When the paper's text is available
(``../shared/paper/`` next to the repository, or ``CNF_TEACH_PAPER``), the registry itself is
checked against it; otherwise that one test skips with the reason.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from paper_items import (
    EQUATIONS,
    FIGURES,
    SECTIONS,
    TABLES,
    check_citation,
    find_citations,
    iter_project_texts,
)

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO.parent / "shared" / "paper" / "winkler2019-learning-likelihoods-with-cnfs.md"


def test_every_citation_of_the_paper_exists_and_is_on_subject() -> None:
    problems, seen = [], 0
    for where, text, offset in iter_project_texts(REPO):
        for citation in find_citations(text, where, offset):
            seen += 1
            problem = check_citation(citation)
            if problem:
                problems.append(problem)
    assert seen > 100, f"found only {seen} citations; is the scanner looking at the project?"
    assert not problems, f"{len(problems)} citations of Winkler et al. 2019 are wrong:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The RRDB conditioning network (Winkler et al. 2019, Table 5) has 16 blocks.", "table 5"),
        ("Samples at temperatures 0, 0.5 and 1 (Fig. 4 of the paper).", "fig 4"),
        ("The multi-scale flow of RealNVP and Glow (the paper's Fig. 2): L levels of K steps.", "fig 2"),
        ("See eq. (10) of Winkler et al.", "does not have"),
        ("Winkler et al. 2019, Table 9.", "does not have"),
        ("The weighted Bernoulli of eq. (8).", "eq 8"),
    ],
)
def test_wrong_citations_are_caught(text: str, expected: str) -> None:
    problems = [p for c in find_citations(text, "example") if (p := check_citation(c))]
    assert (
        problems
        and expected.replace(" ", "") in problems[0].replace(" ", "").replace("cites", "").lower()
        or (expected in problems[0])
    ), problems


@pytest.mark.parametrize(
    "text",
    [
        "The RRDB conditioning network of Table 8 (16 blocks, growth 32).",
        "Adam, batch 64, L = 2 levels and K = 8 sub-flows (Table 5).",
        "Samples at temperatures 0, 0.5 and 1 (Fig. 3).",
        "Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.1, Tables 1, 2, 5, 6 and 8.",
        "actnorm (Kingma & Dhariwal 2018, §3.1) with data-dependent initialisation",
        "a Gaussian prior makes sense (Dinh et al. 2017, §4.1).",
        "The bound of eqs. (2)-(5) with uniform dequantization.",
        "Tables 1-3 give the paper's numbers: bits/dim on ImageNet, PSNR and SSIM on Set5, F-score on DRIVE.",
    ],
)
def test_right_citations_pass(text: str) -> None:
    problems = [p for c in find_citations(text, "example") if (p := check_citation(c))]
    assert not problems, problems


def test_lists_and_ranges_are_expanded() -> None:
    numbers = [(c.kind, c.number) for c in find_citations("eqs. (2)-(5), Tables 5, 6 and 8, Figs. 4 and 5", "x")]
    assert numbers == [
        ("eq", "2"),
        ("eq", "3"),
        ("eq", "4"),
        ("eq", "5"),
        ("table", "5"),
        ("table", "6"),
        ("table", "8"),
        ("fig", "4"),
        ("fig", "5"),
    ]


def test_registry_matches_the_paper_text() -> None:
    path = Path(os.environ.get("CNF_TEACH_PAPER", PAPER))
    if not path.is_file():
        pytest.skip(f"the paper's text is not at {path} (set CNF_TEACH_PAPER to check the registry against it)")
    paper = path.read_text(encoding="utf-8")
    for number in EQUATIONS:
        assert re.search(rf"\\quad \({number}\)\$\$", paper), f"eq. ({number}) is not in the paper"
    assert not re.search(rf"\\quad \({len(EQUATIONS) + 1}\)\$\$", paper), "the paper has more equations"
    for kind, items in (("Table", TABLES), ("Figure", FIGURES)):
        for number, item in items.items():
            assert item.heading and item.heading in paper, f"{kind} {number}: {item.heading!r} is not in the paper"
        assert f"{kind} {len(items) + 1}:" not in paper, f"the paper has more than {len(items)} {kind.lower()}s"
    for number, item in SECTIONS.items():
        assert item.heading and re.search(rf"^{re.escape(item.heading)}", paper, re.MULTILINE), (
            f"§{number}: heading {item.heading!r} is not in the paper"
        )
