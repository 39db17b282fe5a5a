"""Images the container tests share, each built once per run (see podman.py): the Python base
from Debian packages, wanmock's image from the repository's Dockerfile on it, and Redis (the
official image when it can be pulled, else one from Debian's redis-server package, built in
the background while wanmock's image builds)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.containers import podman


@pytest.fixture(scope="session")
def podman_ready() -> None:
    """podman, runc and mmdebstrap present (skip locally, fail under CI=true), and podman
    configured as the recipe says."""
    for program in ("podman", "runc", "mmdebstrap"):
        podman.needs(program)
    podman.configure()


class _Background:
    """A build in a thread; `result()` waits for it (and re-raises its failure)."""

    def __init__(self, build: Any) -> None:
        self.value: str | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(build,), daemon=True)
        self.thread.start()

    def _run(self, build: Any) -> None:
        try:
            self.value = build()
        except BaseException as exc:  # handed to the test that needs it
            self.error = exc

    def result(self) -> str:
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


@pytest.fixture(scope="session")
def redis_build(podman_ready: None) -> _Background:
    return _Background(podman.redis_image)


@pytest.fixture(scope="session")
def python_base(podman_ready: None, request: pytest.FixtureRequest) -> str:
    if any("test_compose" in item.nodeid for item in request.session.items):
        request.getfixturevalue("redis_build")  # starts now, in parallel with the builds below
    return podman.debian_image("python", podman.PYTHON_PACKAGES)


@pytest.fixture(scope="session")
def image(python_base: str) -> str:
    """wanmock's image: the repository's Dockerfile, only `BASE` given."""
    return podman.wanmock_image(python_base)


@pytest.fixture(scope="session")
def redis_image(redis_build: _Background) -> str:
    return redis_build.result()


@pytest.fixture(scope="session", autouse=True)
def report_build_times(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if podman.TIMINGS:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("container builds: " + ", ".join(
                f"{name} {seconds:.1f} s" for name, seconds in podman.TIMINGS.items()))
