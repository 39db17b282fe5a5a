"""The documentation site's structure, checked without building it (.ci/run builds it with
`mkdocs build --strict`): every page is in the navigation, the generated reference pages list
every flag there is, and the changelog is the top-level CHANGELOG.md."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _generated():
    spec = importlib.util.spec_from_file_location("docs_generated", DOCS / "hooks/generated.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nav_pages(entries) -> list[str]:
    found = []
    for entry in entries:
        if isinstance(entry, str):
            found.append(entry)
        elif isinstance(entry, dict):
            for value in entry.values():
                found += _nav_pages(value) if isinstance(value, list) else [value]
    return found


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = _nav_pages(config["nav"])
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")
             if "hooks" not in p.relative_to(DOCS).parts}
    missing = sorted(pages - set(listed))
    assert not missing, f"pages not in mkdocs.yml nav (add them there): {missing}"
    assert not set(listed) - pages, f"nav entries with no page: {sorted(set(listed) - pages)}"
    assert len(listed) == len(set(listed)), "a page is listed twice in nav"
    # A page left out of nav, or a broken link or anchor, fails the strict build.
    assert config["strict"] is True
    assert config["validation"]["nav"]["omitted_files"] == "warn"
    assert config["validation"]["links"]["anchors"] == "warn"


def test_every_relative_link_in_the_docs_leads_to_a_page_of_the_site():
    # MkDocs resolves a relative link among the documentation files only: a link out of docs/
    # (../examples/...) is a warning, which the strict build turns into a failure. The build
    # runs in .ci/run; this finds the same mistake in the suite, in a fraction of a second.
    escaping = []
    for page in DOCS.rglob("*.md"):
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\((?!https?://|mailto:|#)([^)#\s]+)", text):
            resolved = (page.parent / target).resolve()
            if DOCS not in resolved.parents or not resolved.exists():
                escaping.append(f"{page.relative_to(DOCS)}: {target}")
    assert not escaping, f"links that are no page of the site (write them as code): {escaping}"


def test_the_options_page_lists_every_flag_of_every_command():
    generated = _generated()
    page = generated.render((DOCS / "options.md").read_text(encoding="utf-8"))
    assert "<!-- generated:" not in page
    flags = list(generated.flags())
    assert len(flags) > 60
    for command, flag in flags:
        assert re.search(rf"`[^`\n]*{re.escape(flag)}(?![\w-])[^`\n]*`", page), \
            f"wanmock {command} {flag}"


def test_every_serve_option_has_its_variable_and_its_python_name_on_the_page():
    from mockserver.cli import build_parser
    from mockserver.envconfig import variables
    from mockserver.families import option_table

    page = _generated().serve_options()
    for variable, flag, _ in variables(build_parser()):
        assert re.search(rf"^\| `{re.escape(flag)}[ `].*\| `{variable}` \|", page, re.M), flag
    for name, option in option_table().items():
        if option.cli_flag is not None:
            assert f"| `{name}` |" in page, name


def test_the_options_page_is_generated_not_copied():
    text = (DOCS / "options.md").read_text(encoding="utf-8")
    assert "<!-- generated: serve-options -->" in text
    assert not re.search(r"^\| `--", text, re.M), "a hand-written flag table in options.md"


def test_the_pytest_page_lists_every_plugin_option_and_ini_key():
    from mockserver import pytest_plugin

    generated = _generated()
    page = generated.render((DOCS / "pytest-plugin.md").read_text(encoding="utf-8"))
    recorder = generated._Recorder()
    pytest_plugin.pytest_addoption(recorder)
    assert recorder.options and recorder.ini
    for names, _ in recorder.options:
        assert f"`{names[0]} " in page or f"`{names[0]}`" in page, names
    for name, _, _ in recorder.ini:
        assert f"| `{name}` |" in page, name


def test_an_unknown_generated_table_is_an_error_not_an_empty_page():
    import pytest

    with pytest.raises(ValueError, match="unknown generated table 'serve-optoins'"):
        _generated().render("<!-- generated: serve-optoins -->")


def test_the_changelog_page_is_the_top_level_changelog():
    assert (DOCS / "changelog.md").read_text(encoding="utf-8").strip() == '--8<-- "CHANGELOG.md"'
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert changelog.startswith("# Changelog")
    # Its links would break inside the site (it is included from docs/): none but absolute ones.
    assert not re.search(r"\]\((?!https?://)", changelog)


def test_the_scenarios_page_lists_every_job_scenario_and_fault_kind():
    from mockserver.core import faults
    from mockserver.core.scenarios import JOB

    page = _generated().render((DOCS / "scenarios.md").read_text(encoding="utf-8"))
    for name in [*JOB, *faults.descriptions()]:
        assert f"| `{name}` |" in page, name


def test_the_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) < 250
    # Exactly two set-up commands, each the line two after its marker (.ci/run reads the test
    # command so; tests/docs_pages.py runs the serve command's `wanmock serve`).
    commands = {}
    for marker in ("<!-- serve-command -->", "<!-- test-command -->"):
        assert lines.count(marker) == 1, marker
        at = lines.index(marker)
        assert lines[at + 1].startswith("```") and lines[at + 3] == "```"
        commands[marker] = lines[at + 2]
    assert commands["<!-- serve-command -->"].endswith("&& wanmock serve")
    assert commands["<!-- test-command -->"].endswith("python -m pytest -n 2")
    assert commands["<!-- test-command -->"].startswith('pip install -e ".[test]"')
    # The test command is not run by the docs runner (it would run the suite inside itself).
    assert lines[lines.index("<!-- test-command -->") - 1] == "<!-- skip: next -->"
    # Every relative link leads to a file of the repository.
    targets = re.findall(r"\]\((?!https?://|#)([^)#]+)", text)
    assert targets
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, missing
