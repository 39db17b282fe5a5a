"""Citations users can follow (issue 24): every source named in the code, the contracts, the
fixtures and the docs is public (a URL, an SDK file at a version, a Go file at a commit), a seed
number of docs/contract-conventions.md "Sources" (each a public page), or a decision of the
contract; never a research note or audit that lives outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What a citation of a document outside the repository looks like: the research notes by name
# or path, their section marks and source keys, audit row ids, the seed files' own names.
PRIVATE = re.compile(
    r"api-facts"
    r"|/work/(?:shared|notes)|\.\./shared/|shared/reference|notes/research"
    r"|fidelity-audit|market-3|peers-round2|anchors\.md|containers-here"
    r"|\b\d{3}_[0-9a-f]{16}\b"                      # seed file names
    r"|\baudit(?:-3)?(?: rows?)? [FUN]\d\d\b"      # "audit F23"
    r"|\((?:[FUN]\d\d)(?:[,/] ?[FUN]\d\d)*\)"      # "(F10)"
    r"|`S:[a-z0-9-]+`|\bS:(?:novita|ds|newapi|jiekou|evangelist|hf|kiwi|alibaba)"
    r"|\bindex id \d+")

PLACES = ("mockserver", "contracts", "docs", "fixtures", "examples", "benchmarks")
TOP = ("README.md", "ARCHITECTURE.md", "CHANGELOG.md", "pyproject.toml", "Dockerfile",
       "compose.yaml", "mkdocs.yml")
SUFFIXES = {".py", ".yaml", ".yml", ".md", ".json", ".html", ".j2", ".js", ".css", ".txt",
            ".toml"}


def _files() -> list[Path]:
    found = [ROOT / name for name in TOP if (ROOT / name).is_file()]
    for place in PLACES:
        found += [p for p in sorted((ROOT / place).rglob("*"))
                  if p.suffix in SUFFIXES and p.is_file() and ".venv" not in p.parts]
    return found


def private_citations(text: str) -> list[str]:
    """Each citation of a non-public document in `text`, with a little context."""
    return [text[max(0, m.start() - 30):m.end() + 10].replace("\n", " ")
            for m in PRIVATE.finditer(text)]


def test_no_source_outside_the_repository_is_cited() -> None:
    offences = {
        str(path.relative_to(ROOT)): hits
        for path in _files()
        if (hits := private_citations(path.read_text(encoding="utf-8", errors="replace")))
    }
    assert offences == {}, "cite the public source (URL, SDK file, Go file at a commit) instead"


def test_the_check_sees_each_form() -> None:
    text = ("(api-facts §3.2 [A]); ../shared/reference/fidelity-audit.md; seed "
            "004_4d1e2716a0a0cbf8; usage (audit F22); UNKNOWN (F10); `S:novita-sdk`")
    assert len(private_citations(text)) == 7
    public = ("dashscope 2.0.2 aigc/video_synthesis.py [A]; "
              "https://help.aliyun.com/zh/model-studio/error-code; seed 004; RFC 9110 §7.6.1")
    assert private_citations(public) == []


def test_every_seed_number_is_a_public_page() -> None:
    """The seed numbers cited stand for public pages listed in the conventions."""
    conventions = (ROOT / "docs" / "contract-conventions.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| (00\d) \|", conventions, flags=re.M))
    assert listed == {"000", "001", "002", "003", "004"}
