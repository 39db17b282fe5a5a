"""Podman for the container tests, as docs/containers.md's recipe runs it on machines without a
registry or systemd: runc and cgroupfs, no default ulimits, netavark (service names resolve on
compose networks), base images made from Debian packages with mmdebstrap.

Images are tagged by what they are built from (the recipe for a base, the build context and
base for wanmock's image), so one run builds each once, whatever number of tests or xdist
workers ask for it (a file lock keeps them from building it twice at once).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ("apt-get install podman runc mmdebstrap uidmap slirp4netns fuse-overlayfs netavark "
           "aardvark-dns; pip install -e '.[containers]'")
# The recipe's containers.conf (runc, cgroupfs, no default ulimits, netavark), as CI uses it.
CONTAINERS_CONF = ROOT / ".ci" / "containers.conf"
# What the Python base holds: Debian's Python 3.11 (python3 on PATH, as the Dockerfile wants).
PYTHON_PACKAGES = ("python3", "python3-venv", "ca-certificates")
REDIS_PACKAGES = ("redis-server",)
OFFICIAL_REDIS = "docker.io/library/redis:7"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# The build context (.dockerignore lets only these in) and the files that shape the image.
CONTEXT = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "ARCHITECTURE.md",
           "contracts", "mockserver")
TIMINGS: dict[str, float] = {}  # what each build took in this process (seconds), for reports


def podman(*args: str, check: bool = True, timeout: float = 600,
           capture: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `podman ARGS` (its systemd warnings about healthcheck timers are left on stderr)."""
    proc = subprocess.run(["podman", *args], capture_output=capture, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def compose(project: str, files: Sequence[Path], *args: str, env: dict[str, str],
            timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run podman-compose (the PyPI provider) on the compose files."""
    command = [sys.executable, "-m", "podman_compose", "-p", project]
    for file in files:
        command += ["-f", str(file)]
    proc = subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env}, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman-compose {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def configure() -> None:
    """Point podman at the recipe's containers.conf unless the environment already does."""
    if not os.environ.get("CONTAINERS_CONF"):
        os.environ["CONTAINERS_CONF"] = str(CONTAINERS_CONF)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def build_lock(name: str) -> Iterator[None]:
    """One builder at a time for one image (xdist workers, parallel runs)."""
    path = Path(tempfile.gettempdir()) / f"wanmock-{name}.lock"
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def exists(image: str) -> bool:
    return podman("image", "exists", image, check=False).returncode == 0


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (deb822 or one-line sources)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        found = re.search(r"^URIs:\s*(\S+)", sources.read_text(), re.MULTILINE)
        if found:
            return found.group(1)
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        found = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\b", legacy.read_text(),
                          re.MULTILINE)
        if found:
            return found.group(1)
    return "http://deb.debian.org/debian"


def debian_image(name: str, packages: Sequence[str], changes: Sequence[str] = ()) -> str:
    """An image of Debian bookworm with `packages` (mmdebstrap, as the recipe does), built
    once: its tag names the recipe."""
    recipe = json.dumps([packages, list(changes), debian_mirror()]).encode()
    image = f"localhost/wanmock-test-{name}:bookworm-{hashlib.sha256(recipe).hexdigest()[:12]}"
    with build_lock(image.rpartition("/")[2]):
        if exists(image):
            return image
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as work:
            tar = Path(work) / "base.tar"
            proc = subprocess.run(
                ["mmdebstrap", "--variant=apt", "--include=" + ",".join(packages), "bookworm",
                 str(tar), debian_mirror()], capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise AssertionError(f"mmdebstrap failed:\n{proc.stderr[-4000:]}")
            flags = [arg for change in changes for arg in ("--change", change)]
            podman("import", *flags, str(tar), image)
        TIMINGS[f"{name} base (mmdebstrap + import)"] = time.monotonic() - started
    return image


def context_digest(base: str) -> str:
    """What wanmock's image is built from: the build context's files and the base image."""
    digest = hashlib.sha256(podman("image", "inspect", "--format", "{{.Id}}", base)
                            .stdout.strip().encode())
    for name in CONTEXT:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def wanmock_image(base: str) -> str:
    """The repository's Dockerfile built with `BASE=base` as its only build argument, as the
    recipe builds it here (host network and the host's CA bundle, so pip reaches the index
    through this machine's proxy)."""
    image = f"localhost/wanmock:test-{context_digest(base)}"
    with build_lock("wanmock-image"):
        if exists(image):
            return image
        started = time.monotonic()
        mount = [f"--volume={CA_BUNDLE}:{CA_BUNDLE}:ro"] if Path(CA_BUNDLE).is_file() else []
        podman("build", "--format", "docker", "--network=host", "--isolation=chroot", *mount,
               "--build-arg", f"BASE={base}", "--tag", image, str(ROOT), timeout=900)
        TIMINGS["wanmock image (podman build)"] = time.monotonic() - started
    return image


def redis_image() -> str:
    """The official Redis image when it can be pulled, else one made the same way from
    Debian's redis-server package."""
    if exists(OFFICIAL_REDIS) or podman("pull", "--quiet", OFFICIAL_REDIS, check=False,
                                        timeout=60).returncode == 0:
        return OFFICIAL_REDIS
    return debian_image("redis", REDIS_PACKAGES, ["EXPOSE 6379", 'CMD ["redis-server"]'])


def needs(program: str) -> str:
    """A program the container tests drive (skip locally, fail under CI=true)."""
    from tests.helpers import require_program

    return require_program(program, INSTALL)


def networking_ready() -> None:
    """Compose networks need netavark with aardvark-dns (service names resolve)."""

    info = podman("info", "--format", "{{.Host.NetworkBackend}}", check=False)
    aardvark = any(Path(p).is_file() for p in ("/usr/lib/podman/aardvark-dns",
                                               "/usr/libexec/podman/aardvark-dns"))
    if info.stdout.strip() != "netavark" or not aardvark:
        message = (f"podman's network backend is {info.stdout.strip() or 'unknown'!r}"
                   f"{'' if aardvark else ' and aardvark-dns is missing'}: compose service names "
                   f"need netavark + aardvark-dns ({INSTALL})")
        from tests.helpers import missing

        missing(message)


def wait_healthy(url: str, seconds: float, container: str) -> dict[str, object]:
    """Poll `url/_wanmock/health` from the host until it answers ok; the body."""
    import httpx

    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url + "/_wanmock/health", timeout=2)
            if response.status_code == 200:
                return dict(response.json())
            last = response.text
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    logs = podman("logs", container, check=False)
    raise AssertionError(f"{container} not healthy within {seconds} s ({last}):\n"
                         f"{logs.stdout[-3000:]}\n{logs.stderr[-3000:]}")


def prebuild() -> int:
    """Build every image the container tests use (Redis in parallel with the Python base and
    wanmock's image on it), as .ci/run does while the CPU-bound suite runs (the builds mostly
    wait on downloads). The tests find them by their tags; a failure here shows again there."""
    import threading

    configure()
    redis: list[str] = []
    thread = threading.Thread(target=lambda: redis.append(redis_image()), daemon=True)
    thread.start()
    image = wanmock_image(debian_image("python", PYTHON_PACKAGES))
    thread.join()
    print(f"images: {image}, {redis[0] if redis else 'redis: failed'}")
    for name, seconds in TIMINGS.items():
        print(f"  {name}: {seconds:.1f} s")
    return 0 if redis else 1


if __name__ == "__main__":
    sys.exit(prebuild())
