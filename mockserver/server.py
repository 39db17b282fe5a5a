"""The fake as users start it: `create_app` (the public one, `mockserver.create_app`), the
workers' app factory of `wanmock serve --workers`, and a live fake on loopback: uvicorn
(uvloop + httptools) in a thread, like moto's ThreadedMotoServer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mockserver.errors import MockServerError
from mockserver.tls import Trusting

if TYPE_CHECKING:
    from mockserver.tls import TLS

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def open_replay(path: str) -> Any:
    """The cassette at `path` as the engine replays it (`mockserver.replay.open_replay`, loaded
    only when a fake replays one)."""
    from mockserver.replay import open_replay as open_cassette

    return open_cassette(path)


def create_app(families: Any = None, **kwargs: Any) -> Any:
    """Build the fake: `mockserver.app.create_app` (see its parameters) with the differential
    loop's cassette reader, so `replay=FILE` replays a recording. This is
    `mockserver.create_app`."""
    from mockserver.app import create_app as build

    kwargs.setdefault("open_replay", open_replay)
    return build(families, **kwargs)


def app_from_env() -> Any:
    """The app factory each worker of `wanmock serve --workers N` calls (uvicorn
    `--factory`): the options the command line was given, from `WANMOCK_APP_OPTIONS`."""
    import gc
    import json
    import os

    from mockserver.app import OPTIONS_ENV
    from mockserver.core.backend import Backend, Options

    raw = os.environ.get(OPTIONS_ENV)
    if not raw:
        raise MockServerError(f"{OPTIONS_ENV} is not set; start workers with wanmock serve")
    data = json.loads(raw)
    if isinstance(data.get("scenarios"), list):
        data["scenarios"] = tuple(data["scenarios"])
    options = Options().merged(**data)
    from mockserver import serving

    if serving.HttpToolsProtocol is not None:  # this worker's protocol (uvicorn_settings)
        serving.LimitedHttpTools.read_timeout = options.read_timeout
    app = create_app(backend=Backend(options, open_replay=open_replay))
    gc.collect()  # as `wanmock serve` does for one worker (see cli.serve)
    gc.freeze()
    gc.set_threshold(7000, 10, 10)
    return app


class ThreadedMockServer(Trusting):
    """Serve an app (default: `create_app(**options)`) on `host:port` in a background thread.

    `port=0` picks a free port; `url` is known once `start()` returns. Binds to loopback unless
    `allow_remote=True`, which also makes the control plane require a control token
    (`control_token=` option, else a new one: `server.control_token`).

        server = ThreadedMockServer(seed=1).start()
        ... server.url, server.backend ...
        server.stop()

    `tls=True` serves HTTPS with a certificate from wanmock's local CA (`mockserver.tls`; the
    default directory, or `tls="DIR"`, or a prepared `mockserver.tls.TLS`), for localhost,
    127.0.0.1, ::1, `host` and `tls_names`; then `url` is https, `ca_bundle` the file to trust
    and `env()` an environment whose clients trust it.
    """

    def __init__(
        self,
        app: Any = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_remote: bool = False,
        tls: bool | str | os.PathLike[str] | TLS | None = None,
        tls_names: Iterable[str] = (),
        **options: Any,
    ) -> None:
        if host not in LOOPBACK and not allow_remote:
            raise MockServerError(
                f"refusing to bind {host!r}: wanmock serves on loopback unless allow_remote=True"
            )
        if app is None:
            if allow_remote and options.get("control_token") is None:
                import secrets

                options["control_token"] = secrets.token_urlsafe(24)
            if tls:  # the control plane answers to every name the certificate covers
                options["allowed_hosts"] = [*options.get("allowed_hosts", ()),
                                            *_guard_hosts(tls, host, tls_names)]
            app = create_app(**options)
        elif options:
            raise MockServerError("pass either an app or options for create_app, not both")
        self.app = app
        self.host = host
        self.port = port
        self.tls = _tls(tls, host, app, tls_names)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def backend(self) -> Any:
        return self.app.state.backend

    @property
    def control_token(self) -> str | None:
        """The token the control plane requires (None: none)."""
        guard = getattr(self.app, "guard", None)
        return getattr(guard, "token", None)

    @property
    def url(self) -> str:
        if not self._ready.is_set():
            raise MockServerError("the server is not started; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def start(self, timeout: float = 15.0) -> ThreadedMockServer:
        import uvicorn

        from mockserver.serving import READ_TIMEOUT_S, uvicorn_settings

        backend = getattr(getattr(self.app, "state", None), "backend", None)
        options = getattr(backend, "options", None)
        # An app may ask for server settings of its own (`wanmock proxy`: no proxy headers).
        extra = getattr(getattr(self.app, "state", None), "uvicorn", None) or {}
        config = uvicorn.Config(self.app, host=self.host, port=self.port, **uvicorn_settings(
            getattr(options, "read_timeout", READ_TIMEOUT_S), **extra,
            **(self.tls.uvicorn() if self.tls else {})))
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]

        factory = getattr(config, "get_loop_factory", lambda: None)()

        def run() -> None:
            loop = factory() if factory is not None else asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # reported by start()
                self._error = exc
                self._ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="wanmock-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise MockServerError(f"wanmock server did not start within {timeout} s")
        if self._error is not None:
            raise MockServerError(f"wanmock server failed to start: {self._error}")
        return self

    async def _serve(self) -> None:
        server = self._server
        config = server.config
        if not config.loaded:
            config.load()
        server.lifespan = config.lifespan_class(config)
        await server.startup()
        if server.should_exit:
            raise MockServerError(f"could not bind {self.host}:{self.port}")
        sock = server.servers[0].sockets[0]
        self.port = sock.getsockname()[1]
        self._ready.set()
        await server.main_loop()
        await server.shutdown()

    def stop(self, timeout: float = 10.0) -> None:
        backend = getattr(getattr(self.app, "state", None), "backend", None)
        if backend is not None:
            # uvicorn waits for open responses before it shuts down: end the dashboard's
            # event streams first.
            from mockserver.ui import close_streams

            close_streams(backend)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> ThreadedMockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(app: Any, **config: Any) -> None:
    """Run `app` under uvicorn in this thread until SIGINT or SIGTERM, as `uvicorn.run` does
    (`config` are `uvicorn.Config` arguments), ending the dashboard's event streams first: uvicorn
    waits for open responses before it shuts down, so an open page would hold it."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, **config))
    stop = server.handle_exit

    def handle_exit(sig: int, frame: Any) -> None:
        backend = getattr(getattr(app, "state", None), "backend", None)
        if backend is not None:
            from mockserver.ui import close_streams

            close_streams(backend)
        stop(sig, frame)

    server.handle_exit = handle_exit  # type: ignore[method-assign]
    with contextlib.suppress(KeyboardInterrupt):  # re-raised after shutdown, as uvicorn.run()
        server.run()


def _guard_hosts(tls: Any, host: str, extra: Iterable[str]) -> tuple[str, ...]:
    from mockserver.tls import TLS, guard_hosts, server_names

    return guard_hosts(tls.names if isinstance(tls, TLS) else server_names(host, None, extra))


def _tls(tls: Any, host: str, app: Any, extra: Iterable[str]) -> TLS | None:
    """`ThreadedMockServer(tls=...)` as a `TLS` (None: plain HTTP)."""
    if tls is None or tls is False:
        return None
    from mockserver.tls import TLS, prepare, server_names

    if isinstance(tls, TLS):
        return tls
    options = getattr(getattr(getattr(app, "state", None), "backend", None), "options", None)
    names = server_names(host, getattr(options, "public_url", None), extra)
    return prepare(names, None if tls is True else tls)

