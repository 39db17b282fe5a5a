"""Running the site's pages (docs/*.md) and the README with Sybil, as a reader would.

Each page runs top to bottom in one namespace, like a reader's session:

- ```python blocks that define `test_...` functions are test files: they run with pytester
  (the installed plugin, as `pytest` would run them) and must pass, with at least one test.
- Other ```python blocks run in this process. A `print(...)  # WORDS` line states what it
  prints: when every `print` of a block carries such a comment, the block's output lines must
  be, in order, the first words of those comments (`# PENDING at first` is met by `PENDING`).
- ```bash blocks run line by line: `wanmock serve ...` starts the page's server (in a thread,
  built from the command's own parser; `--timing instant` unless the line sets a timing, so
  pages do not wait for videos), any other `wanmock ...` runs `mockserver.cli.main` and must
  exit 0, `curl ...` runs curl and must get a 2xx (`--fail`), and `pip install ...` is taken as
  done (the README's set-up commands are what CI runs). Any other command fails the example:
  teach it here, or put `<!-- skip: next -->` (Sybil's) before a block that cannot run here
  (a container, a real provider).
- Servers are shared between pages: a page that starts the same `wanmock serve` command line as
  an earlier page gets that server back, reset (`POST /_wanmock/reset`'s effect).
- A python block that names `127.0.0.1:8000` (or `localhost:8000`) before any `wanmock serve`
  gets a default `wanmock serve` started for it; the documented port always means the page's
  server, wherever it really listens.

Nothing leaves loopback: a lookup of, or a connection to, any other host fails the example.
docs/loop.md has its own harness (tests/docs_harness.py, the loop's stand-in provider).
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import socket
import subprocess
import warnings
from pathlib import Path
from typing import Any

from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
OWN_HARNESS = {"loop.md"}  # pages another harness runs
DOCUMENTED_PORT = 8000
_ADDRESS = re.compile(r"\b(?:127\.0\.0\.1|localhost):(\d+)\b")
_TEST = re.compile(r"^(?:async )?def test_\w+\(", re.M)
_PRINT = re.compile(r"^\s*print\(.*\)(?:\s+#\s*(?P<said>.+))?$")


class DocsError(AssertionError):
    """A documented command or snippet did not do what the page says."""


def pages() -> list[Path]:
    """Every page the site builds from docs/, and the README."""
    found = sorted(p for p in DOCS.rglob("*.md") if p.name not in OWN_HARNESS
                   and "hooks" not in p.relative_to(DOCS).parts)
    return [ROOT / "README.md", *found]


def named_examples() -> dict[str, str]:
    """Python blocks that follow an `<!-- example: NAME -->` line, in any page (for tests that
    run one page's snippet against a server of their own)."""
    found: dict[str, str] = {}
    for path in [*pages(), *(DOCS / name for name in OWN_HARNESS)]:
        text = path.read_text(encoding="utf-8")
        found.update(re.findall(r"<!-- example: ([\w-]+) -->\n```python\n(.*?)```", text, re.S))
    return found


def _loopback(host: Any) -> bool:
    text = host.decode() if isinstance(host, bytes) else str(host)
    return text in ("localhost", "::1") or text.startswith("127.")


class Page:
    """One page's run: its server, its namespace, the pytester that runs its tests."""

    def __init__(self, pytester: Any, servers: dict[tuple[str, ...], Any]) -> None:
        self.pytester = pytester
        self.servers = servers  # started servers by command line, shared by the pages
        self.server: Any = None
        self.port = DOCUMENTED_PORT
        self.tests = 0
        self._saved: tuple[Any, Any] | None = None
        self._restore: list[tuple[Any, str, Any]] = []

    # -- the page's server -----------------------------------------------------------------
    def serve(self, argv: list[str]) -> None:
        from mockserver.cli import build_parser, option_values
        from mockserver.server import ThreadedMockServer

        args = build_parser().parse_args(["serve", *argv])
        self.port = args.port
        key = tuple(argv)
        if key in self.servers:  # the same command on an earlier page: the same, emptied server
            self.server = self.servers[key]
            self.server.backend.reset()
            return
        options = option_values(args)
        options.setdefault("timing", "instant")
        self.server = self.servers[key] = ThreadedMockServer(**options).start()

    def address(self, text: str) -> str:
        """The documented port -> the port the page's server really has."""
        if self.server is None:
            return text
        real = self.server.port

        def swap(found: re.Match[str]) -> str:
            return f"127.0.0.1:{real}" if int(found[1]) == self.port else found[0]

        return _ADDRESS.sub(swap, text)

    # -- the sentinel ----------------------------------------------------------------------
    def __enter__(self) -> Page:
        import dashscope

        self._restore.append((dashscope, "base_http_api_url", dashscope.base_http_api_url))
        saved = self._saved = (socket.getaddrinfo, socket.socket.connect)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host is not None and not _loopback(host):
                raise DocsError(f"the page tried to reach {host} (only 127.0.0.1 is allowed)")
            return saved[0](host, *args, **kwargs)

        def connect(sock: socket.socket, address: Any) -> Any:
            if isinstance(address, tuple) and not _loopback(address[0]):
                raise DocsError(f"the page tried to connect to {address[0]}")
            return saved[1](sock, address)

        socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *_: Any) -> None:
        if self._saved is not None:
            socket.getaddrinfo, socket.socket.connect = self._saved  # type: ignore[method-assign]
        for owner, name, value in self._restore:
            setattr(owner, name, value)

    # -- evaluators ------------------------------------------------------------------------
    def python(self, example: Example) -> None:
        source = example.parsed
        if _TEST.search(source):
            self.pytest_file(example)
            return
        if self.server is None and _ADDRESS.search(source):
            self.serve([])
        code = compile(self.address(source), str(example.path), "exec")
        out = io.StringIO()
        # A reader's script warns and goes on (the suite turns warnings into errors).
        with contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.simplefilter("ignore", DeprecationWarning)
            exec(code, example.namespace)  # noqa: S102 - the page's own snippet
        said = [m["said"] for m in map(_PRINT.match, source.splitlines()) if m]
        if said and all(said):
            printed = out.getvalue().splitlines()
            if len(printed) != len(said) or any(
                    line.split() != words.split()[:len(line.split())] or not line.split()
                    for line, words in zip(printed, said, strict=False)):
                raise DocsError(f"the page says it prints {said}, it printed {printed}")

    def pytest_file(self, example: Example) -> None:
        self.tests += 1
        name = f"test_docs_{Path(example.path).stem.replace('-', '_')}_{example.line}"
        self.pytester.makepyfile(**{name: self.address(example.parsed)})
        result = self.pytester.runpytest_inprocess(f"{name}.py", "-p", "no:cacheprovider",
                                                   "-p", "no:randomly", "-q")
        outcomes = result.parseoutcomes()
        if outcomes.get("passed", 0) < 1 or set(outcomes) - {"passed", "warnings"}:
            raise DocsError(f"the page's test did not pass: {outcomes}\n"
                            + "\n".join(result.outlines[-40:]))

    def bash(self, example: Example) -> None:
        for line in re.sub(r"\\\n\s*", " ", example.parsed).splitlines():
            for command in line.split("&&"):
                tokens = shlex.split(command, comments=True)
                if tokens and tokens[-1] == "&":
                    tokens = tokens[:-1]
                if tokens:
                    self.command(tokens)

    def command(self, tokens: list[str]) -> None:
        name, args = tokens[0], tokens[1:]
        if name == "pip" and args[:1] == ["install"]:
            return  # installed already: CI runs the README's set-up commands themselves
        if name == "wanmock" and args[:1] == ["serve"]:
            self.serve(args[1:])
        elif name == "wanmock":
            from mockserver.cli import main

            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                code = main([self.address(a) for a in args])
            if code != 0:
                raise DocsError(f"`wanmock {' '.join(args)}` exited {code}:\n{out.getvalue()}")
        elif name == "curl":
            if self.server is None:
                self.serve([])
            argv = ["curl", "--fail", "--show-error", "--silent", "--noproxy", "*",
                    "--max-time", "20", *(self.address(a) for a in args)]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
            if done.returncode != 0:
                raise DocsError(f"`curl {' '.join(args)}` failed ({done.returncode}): "
                                f"{done.stderr or done.stdout}")
        else:
            raise DocsError(f"the docs runner does not know `{name}` (tests/docs_pages.py); "
                            "teach it, or put <!-- skip: next --> before the block")


def parse(path: Path) -> Any:
    """The page as Sybil reads it: python and bash blocks, and skip directives."""
    def run(kind: str):  # noqa: ANN202 - Sybil's evaluator signature
        return lambda example: getattr(example.namespace["page"], kind)(example)

    sybil = Sybil(parsers=[CodeBlockParser("python", run("python")),
                           CodeBlockParser("bash", run("bash")), SkipParser()],
                  path=str(path.parent), patterns=[path.name])
    return sybil.parse(path)
