"""The README's two commands are the ones the project really runs, the README stays a front page,
and every relative link in the documentation (README.md, docs/, dr/RUNBOOK.md) reaches a file and heading."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from ops.templates import ROOT

README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    block = re.search(r"## Two commands\n.*?```sh\n(.*?)```", README, re.S)
    assert block, "README has no 'Two commands' block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_names_exactly_two_commands() -> None:
    assert readme_commands() == ["make up", "make test"]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci == [readme_commands()[1]]


def test_the_makefile_targets_exist_and_bootstrap_the_venv() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^up: \$\(STAMP\)$", makefile, re.M)
    # the suite installs what it needs itself: its virtual environments, and the browser for the report
    assert re.search(r"^test: \$\(STAMP\) \$\(CHECKOV_STAMP\) \$\(SAM_STAMP\) \$\(CHROMIUM_STAMP\)$", makefile,
                     re.M)
    assert "apt-get install" in makefile and "chromium" in makefile
    assert all(f"-r {r}" in makefile for r in ("requirements-dev.txt", "requirements-checkov.txt",
                                               "requirements-sam.txt"))


# ---- the documentation's links -------------------------------------------------------------------

README_MAX_LINES = 200
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "dr" / "RUNBOOK.md"]
# [text](target) or [text](target "title"); an image's ![alt](target) matches too.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def prose(text: str) -> str:
    """The Markdown without its fenced code blocks and inline code, where a [x](y) is not a link."""
    text = FENCE.sub("", text)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", text, flags=re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped but hyphens, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2... for repeated headings."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(prose(path.read_text()))
            if not re.match(r"(?i)(https?:|mailto:|#)", target)]


def broken_links(path: Path) -> list[str]:
    broken: list[str] = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / unquote(file_part)).resolve()
        if not resolved.is_relative_to(ROOT.resolve()) or not resolved.exists():
            broken.append(f"{target}: not a file in the repository")
        elif anchor and resolved.suffix == ".md" and unquote(anchor).lower() not in anchors(resolved):
            broken.append(f"{target}: {resolved.relative_to(ROOT.resolve())} has no heading #{anchor}")
    return broken


def test_the_link_checker_sees_links_and_anchors() -> None:
    assert slug("`GET /metrics/summary`") == "get-metricssummary"
    assert slug("E-mail addresses and thresholds") == "e-mail-addresses-and-thresholds"
    assert slug("0. Set up your shell") == "0-set-up-your-shell"
    assert relative_links(ROOT / "README.md"), "the README links to no documentation"


def test_every_relative_link_in_the_docs_resolves() -> None:
    broken = {str(path.relative_to(ROOT)): links for path in DOCS if (links := broken_links(path))}
    assert broken == {}


def test_the_readme_links_every_doc() -> None:
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in relative_links(ROOT / "README.md")}
    assert {p.resolve() for p in DOCS} - linked - {(ROOT / "README.md").resolve()} == set()


def test_the_readme_is_a_front_page() -> None:
    assert len(README.splitlines()) <= README_MAX_LINES
