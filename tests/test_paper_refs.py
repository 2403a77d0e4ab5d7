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
        ("Adam, batch 64, L = 2 levels and K = 8 sub-flows (Tables 5 and 8).", "table 8"),
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
        "The SR flow: its likelihood in bits/dim, its configuration and the RRDB conditioner.\n\nReferences:\n"
        "    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.1, Tables 1, 5 and 8.",
        "actnorm (Kingma & Dhariwal 2018, §3.1) with data-dependent initialisation",
        "a Gaussian prior makes sense (Dinh et al. 2017, §4.1).",
        "The bound of eqs. (2)-(5) with uniform dequantization.",
        "Tables 1-3 give the paper's numbers: bits/dim on ImageNet, PSNR and SSIM on Set5, F-score on DRIVE.",
    ],
)
def test_right_citations_pass(text: str) -> None:
    problems = [p for c in find_citations(text, "example") if (p := check_citation(c))]
    assert not problems, problems


# The references of cnf_teach/flows/multiscale.py's docstring before issue 26: Fig. 2 is the
# ImageNet64 samples, not the architecture, and the line names the paper's title.
_OLD_MULTISCALE_DOCSTRING = '''"""The multi-scale conditional flow of Winkler et al. 2019 (Glow's, conditioned).

$L$ levels; each level squeezes, runs $K$ flow steps (actnorm -> 1x1 conv -> conditional coupling),
then factors out half of its channels through the conditional split prior.

References:
    Kingma, Dhariwal. Glow. NeurIPS 2018.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §3, Fig. 2.
"""
'''


def test_bibliographic_lines_are_checked_against_their_passage() -> None:
    """A reference line names no subject itself: each item it cites must be the subject of its docstring."""
    wrong = [p for c in find_citations(_OLD_MULTISCALE_DOCSTRING, "flows/multiscale.py") if (p := check_citation(c))]
    assert len(wrong) == 1 and "'Fig. 2' cites fig 2" in wrong[0], wrong
    fixed = _OLD_MULTISCALE_DOCSTRING.replace("§3, Fig. 2.", "§3.1 and §5.1.")
    assert not [p for c in find_citations(fixed, "flows/multiscale.py") if (p := check_citation(c))]
    # The title's own words ("Conditional Normalizing Flows") do not count as a subject.
    bare = "References:\n    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, eq. (7)."
    assert [p for c in find_citations(f'"""{bare}\n"""\n', "x.py") if (p := check_citation(c))]
    # In a Markdown file the passage is the section: a citation in another section does not help.
    page = "## Samples\n\nTemperatures of the samples.\n\n## Papers\n\nWinkler et al., arXiv:1912.00042, Fig. 3.\n"
    assert [p for c in find_citations(page, "page.md") if (p := check_citation(c))]
    assert not [p for c in find_citations(page.replace("## Papers\n", ""), "page.md") if (p := check_citation(c))]


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
