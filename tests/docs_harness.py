"""Running the loop's documentation (docs/loop.md) with Sybil, against a sentinel upstream.

The page's snippets run in order, as a reader would run them, in a scratch directory:

- ```bash blocks go through `Shell`, one command line at a time, as the page writes them:
  `wanmock proxy ... &` and `wanmock serve ... &` start in the background (in process, built
  by the commands' own code: `cli_loop.make_proxy`, `cli.serve_app`) on a free port standing
  in for the documented one, and `kill %1` stops them (the proxy writes its exit report);
  other `wanmock ...` lines run `mockserver.cli.main` and must exit 0; `python FILE`,
  `python -m pytest` and `pytest` run in a subprocess with the variables the page set;
  `export`, `VAR=value command`, `$VAR`, `&&`, `mkdir -p` and `sleep` work as in a shell. A
  command the runner does not know fails the example: teach it here, never skip the line.
- ```python title="NAME" blocks are files the page asks the reader to write; they are written
  into the scratch directory. Plain ```python blocks run in this process.

Addresses: a documented port (`127.0.0.1:8010`) means whatever the page started on it, so it
becomes that server's real port wherever it appears; a `--target` or `--wanmock-upstream` URL
(the real provider) becomes the stand-in provider, a wanmock fake on 127.0.0.1. Nothing else
is rewritten: a snippet that names the real provider anywhere else, or a client that ignores
the variable the page sets, goes for the real host.

The sentinel fails the example if anything escapes: a name lookup of, or a connection to, any
host but loopback (in this process, and in every subprocess through a sitecustomize.py on its
PYTHONPATH), or an API request that reached the stand-in without a proxy (a wanmock proxy sets
X-Forwarded-Host; result downloads stand for the provider's storage and may go direct).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sybil import Example, Region
from sybil.parsers.markdown.codeblock import CodeBlockParser
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

SITECUSTOMIZE = '''\
"""wanmock docs sentinel: this interpreter may reach loopback only (tests/docs_harness.py)."""
import os
import socket

_LOG = os.environ.get("WANMOCK_SENTINEL_LOG", "")


def _loopback(host):
    host = host.decode() if isinstance(host, bytes) else str(host)
    return host in ("localhost", "::1") or host.startswith("127.")


def _escape(what):
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(what + "\\n")
    return OSError(f"wanmock docs sentinel: {what} (only the proxy is reachable)")


_getaddrinfo = socket.getaddrinfo
_connect = socket.socket.connect


def getaddrinfo(host, *args, **kwargs):
    if host is not None and not _loopback(host):
        raise _escape(f"a lookup of {host}")
    return _getaddrinfo(host, *args, **kwargs)


def connect(self, address):
    if isinstance(address, tuple) and not _loopback(address[0]):
        raise _escape(f"a connection to {address[0]}")
    return _connect(self, address)


if _LOG:
    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect
'''
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_FILE_BLOCK = re.compile(r'python title="(?P<name>[^"]+)"')


class DocsError(AssertionError):
    """A documented command did not do what the page says."""


def _loopback(host: Any) -> bool:
    text = host.decode() if isinstance(host, bytes) else str(host)
    return text in ("localhost", "::1") or text.startswith("127.")


class Sentinel:
    """Everything that tried to leave loopback, in this process and in subprocesses."""

    def __init__(self, workdir: Path) -> None:
        self.escapes: list[str] = []
        self.site = workdir / ".sentinel"
        self.site.mkdir(parents=True, exist_ok=True)
        (self.site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        self.log = self.site / "escapes.log"
        self.log.write_text("", encoding="utf-8")
        self._read = 0
        self._saved: tuple[Any, Any] | None = None

    def install(self) -> None:
        saved = self._saved = (socket.getaddrinfo, socket.socket.connect)
        escapes = self.escapes

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host is not None and not _loopback(host):
                escapes.append(f"a lookup of {host}")
                raise OSError(f"wanmock docs sentinel: {host} is not the proxy")
            return saved[0](host, *args, **kwargs)

        def connect(sock: socket.socket, address: Any) -> Any:
            if isinstance(address, tuple) and not _loopback(address[0]):
                escapes.append(f"a connection to {address[0]}")
                raise OSError(f"wanmock docs sentinel: {address[0]} is not the proxy")
            return saved[1](sock, address)

        socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
        socket.socket.connect = connect  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._saved is not None:
            socket.getaddrinfo, socket.socket.connect = self._saved  # type: ignore[method-assign]
            self._saved = None

    def environment(self) -> dict[str, str]:
        """What a subprocess needs to run under the sentinel."""
        path = os.pathsep.join(p for p in (str(self.site), os.environ.get("PYTHONPATH")) if p)
        return {"PYTHONPATH": path, "WANMOCK_SENTINEL_LOG": str(self.log)}

    def take(self) -> list[str]:
        """The escapes since the last call."""
        lines = self.log.read_text(encoding="utf-8").splitlines()
        found = [*self.escapes, *(f"{line} (in a subprocess)" for line in lines[self._read:])]
        self._read = len(lines)
        self.escapes.clear()
        return found


class StandIn:
    """The real provider, played by a wanmock fake on 127.0.0.1 (all families, tasks done at
    once); an API request that did not come through a proxy is an escape."""

    def __init__(self, sentinel: Sentinel, video_dir: Path) -> None:
        from mockserver.app import create_app
        from mockserver.server import ThreadedMockServer

        self.sentinel = sentinel
        self.fake = create_app(timing="instant", seed=19, video_dir=str(video_dir))
        self.server = ThreadedMockServer(app=self).start()
        self.url = self.server.url

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_wanmock/videos/"):
            forwarded = dict(scope["headers"]).get(b"x-forwarded-host", b"")
            if not forwarded or not _loopback(forwarded.split(b":")[0]):
                self.sentinel.escapes.append(
                    f"{scope['method']} {scope['path']} reached the provider without the proxy")
        await self.fake(scope, receive, send)

    def requests(self) -> int:
        """API requests the provider has seen (its journal)."""
        return len(self.fake.state.backend.journal.entries())

    def stop(self) -> None:
        self.server.stop()


class Job:
    """A server the page started in the background (`... &`)."""

    def __init__(self, command: str, server: Any, port: int, proxy: Any = None) -> None:
        self.command = command
        self.server = server
        self.port = port  # the documented port it stands in for
        self.proxy = proxy

    def stop(self) -> None:
        self.server.stop()
        if self.proxy is not None:
            self.proxy.close()  # (the lifespan closed it already; close() runs once)


class Shell:
    """The page's shell lines, run as the module docstring says."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.env: dict[str, str] = {}
        self.jobs: list[Job] = []

    # -- addresses -----------------------------------------------------------------------------
    def ports(self) -> dict[int, int]:
        return {job.port: int(job.server.port) for job in self.jobs}

    def map_text(self, text: str) -> str:
        """Documented loopback ports -> the ports their servers really got."""
        for documented, real in self.ports().items():
            text = re.sub(rf"\b(127\.0\.0\.1|localhost):{documented}\b", f"127.0.0.1:{real}",
                          text)
        return text

    def _expand(self, text: str) -> str:
        return _VARIABLE.sub(lambda m: self.env.get(m[1] or m[2], os.environ.get(
            m[1] or m[2], "")), text)

    # -- running -------------------------------------------------------------------------------
    def run(self, script: str) -> None:
        for line in re.sub(r"\\\n\s*", " ", script).splitlines():
            tokens = shlex.split(self._expand(line), comments=True)
            background = bool(tokens) and tokens[-1] == "&"
            if background:
                tokens = tokens[:-1]
            while tokens:
                if "&&" in tokens:
                    cut = tokens.index("&&")
                    self.command(tokens[:cut], False)
                    tokens = tokens[cut + 1:]
                else:
                    self.command(tokens, background)
                    tokens = []

    def command(self, tokens: list[str], background: bool) -> None:
        env: dict[str, str] = {}
        while tokens and re.fullmatch(r"\w+=.*", tokens[0]):
            name, _, value = tokens.pop(0).partition("=")
            env[name] = value
        if not tokens:
            self.env.update(env)
            return
        name, args = tokens[0], tokens[1:]
        if name == "export":
            self.env.update(a.partition("=")[::2] for a in args)  # type: ignore[misc]
        elif name == "mkdir":
            for folder in (a for a in args if not a.startswith("-")):
                Path(folder).mkdir(parents=True, exist_ok=True)
        elif name in ("sleep", "wait"):
            pass  # a background server is up when `&` returns; nothing to wait for
        elif name == "kill":
            self.kill(args)
        elif name == "wanmock":
            self.wanmock(args, background)
        elif name in ("python", "python3", "pytest"):
            argv = ["-m", "pytest", *args] if name == "pytest" else args
            self.subprocess([sys.executable, *argv], env)
        else:
            raise DocsError(f"the docs runner does not know `{name}` (tests/docs_harness.py)")

    def kill(self, args: list[str]) -> None:
        jobs = [a for a in args if a.startswith("%")]
        if not self.jobs:
            raise DocsError("`kill`: no background job is running")
        index = int(jobs[0][1:]) - 1 if jobs else len(self.jobs) - 1
        job = self.jobs.pop(index)
        job.stop()

    def wanmock(self, args: list[str], background: bool) -> None:
        from mockserver.cli import build_parser, main

        if args and args[0] in ("proxy", "serve"):
            if not background:
                raise DocsError(f"`wanmock {args[0]}` runs until stopped: start it with `&`")
            parsed = build_parser().parse_args(self._targets(args))
            self.jobs.append(self.harness.start(parsed, " ".join(["wanmock", *args])))
            return
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main([self.map_text(a) for a in args])
        if code != 0:
            raise DocsError(f"`wanmock {' '.join(args)}` exited {code}:\n{out.getvalue()}")

    def _targets(self, args: list[str]) -> list[str]:
        """`--target [FAMILY=]URL` and `--wanmock-upstream FAMILY=URL`: the stand-in."""
        out = []
        for before, arg in zip(["", *args], args, strict=False):
            if before in ("--target", "--wanmock-upstream") or arg.startswith(
                    ("--target=", "--wanmock-upstream=")):
                flag, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
                family, sep, _url = value.partition("=")
                if not sep or "://" in family:
                    family, sep = "", ""
                mapped = f"{family}={self.harness.stand_in.url}" if sep else \
                    self.harness.stand_in.url
                arg = f"{flag}={mapped}" if eq and flag else mapped
            out.append(arg)
        return out

    def subprocess(self, argv: list[str], env: dict[str, str]) -> None:
        argv = [argv[0], *(self.map_text(a) for a in self._targets(argv[1:]))]
        variables = {**os.environ, **{k: self.map_text(v) for k, v in {**self.env,
                                                                       **env}.items()}}
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
            variables.pop(name, None)
        variables.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
                         **self.harness.sentinel.environment())
        done = subprocess.run(argv, cwd=self.harness.workdir, env=variables, text=True,
                              capture_output=True, timeout=180, check=False)
        if done.returncode != 0:
            shown = " ".join(argv[1:])
            raise DocsError(f"`{shown}` exited {done.returncode}:\n{done.stdout[-3000:]}\n"
                            f"{done.stderr[-3000:]}")

    def stop(self) -> None:
        while self.jobs:
            self.jobs.pop().stop()


class Harness:
    """One document's run: scratch directory, sentinel, stand-in provider, shell."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.sentinel = Sentinel(workdir)
        self.stand_in = StandIn(self.sentinel, workdir / ".provider-videos")
        self.shell = Shell(self)
        self._cwd = os.getcwd()
        self._restore: list[Callable[[], None]] = []

    def __enter__(self) -> Harness:
        os.chdir(self.workdir)
        self.sentinel.install()
        return self

    def close(self) -> None:
        self.shell.stop()
        self.sentinel.uninstall()
        self.stand_in.stop()
        for undo in reversed(self._restore):
            undo()
        os.chdir(self._cwd)

    def remember(self, module: str, attribute: str) -> None:
        """Put `module.attribute` back after the document (a snippet may set it)."""
        import importlib

        found = importlib.import_module(module)
        value = getattr(found, attribute)
        self._restore.append(lambda: setattr(found, attribute, value))

    def environ(self, **values: str) -> None:
        """Variables the reader has in their environment (the providers' keys), in this
        process and the page's subprocesses, until the document ends."""
        for name, value in values.items():
            before = os.environ.get(name)
            os.environ[name] = value
            self._restore.append(lambda name=name, before=before: (
                os.environ.pop(name, None) if before is None else
                os.environ.__setitem__(name, before)))

    def start(self, args: Any, command: str) -> Job:
        from mockserver.server import ThreadedMockServer

        if args.command == "proxy":
            from mockserver.cli_loop import make_proxy

            proxy, _ = make_proxy(args)
            return Job(command, ThreadedMockServer(app=proxy.app()).start(), args.port, proxy)
        from mockserver.cli import serve_app

        return Job(command, ThreadedMockServer(app=serve_app(args)).start(), args.port)

    # -- evaluators ----------------------------------------------------------------------------
    def checked(self, run: Callable[[], None]) -> str | None:
        """Run one example; a failure or an escape is the example's failure text."""
        try:
            run()
        except Exception as exc:  # a failed command, or the snippet's own exception
            import traceback

            escaped = self.sentinel.take()
            text = str(exc) if isinstance(exc, DocsError) else "".join(
                traceback.format_exception(exc, limit=-3))
            return ((f"traffic escaped the proxy: {'; '.join(dict.fromkeys(escaped))}\n"
                     if escaped else "") + text)
        escaped = self.sentinel.take()
        if escaped:
            return "traffic escaped the proxy: " + "; ".join(dict.fromkeys(escaped))
        return None

    def bash(self, example: Example) -> str | None:
        return self.checked(lambda: self.shell.run(example.parsed))

    def python(self, example: Example) -> str | None:
        source = self.shell.map_text(example.parsed)
        code = compile(source, example.path, "exec")

        def run() -> None:
            exec(code, example.namespace)  # noqa: S102 - the page's own snippet

        return self.checked(run)

    def write(self, name: str, example: Example) -> None:
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(example.parsed, encoding="utf-8")


# -- Sybil -----------------------------------------------------------------------------------
def _harness(example: Example) -> Harness:
    """The document's harness, made for its first example (pytest fixtures such as
    `tmp_path_factory` reach the namespace only then)."""
    namespace = example.namespace
    if "harness" not in namespace:
        factory = namespace["tmp_path_factory"]
        harness = Harness(factory.mktemp("docs")).__enter__()
        harness.remember("dashscope", "base_http_api_url")
        # The keys a reader has in their environment (the stand-in takes any).
        harness.environ(DASHSCOPE_API_KEY="sk-docs-dashscope-0123456789",
                        NOVITA_API_KEY="sk-docs-novita-0123456789",
                        NEWAPI_API_KEY="sk-docs-newapi-0123456789")
        namespace["harness"] = harness
    return namespace["harness"]  # type: ignore[no-any-return]


class FileBlockParser:
    """```python title="NAME"``` blocks: files the reader writes (MkDocs shows the name)."""

    def __init__(self) -> None:
        self.lexer = FencedCodeBlockLexer(language=r'python title="[^"]+"',
                                          mapping={"language": "arguments", "source": "source"})

    def __call__(self, document: Any) -> Iterable[Region]:
        for region in self.lexer(document):
            found = _FILE_BLOCK.fullmatch(str(region.lexemes["arguments"]))
            if found is None:
                continue
            name = found["name"]
            region.parsed = region.lexemes["source"]
            region.evaluator = lambda example, name=name: _harness(example).write(name, example)
            yield region


def parsers() -> list[Any]:
    return [
        CodeBlockParser("bash", lambda example: _harness(example).bash(example)),
        CodeBlockParser("python", lambda example: _harness(example).python(example)),
        FileBlockParser(),
    ]


def teardown(namespace: dict[str, Any]) -> None:
    harness = namespace.get("harness")
    if harness is not None:
        harness.close()
