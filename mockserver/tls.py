"""HTTPS for the fake: a local certificate authority kept in a directory, the server
certificates it issues, and the environment variables that make clients trust it.

Some SDKs hard-code `https://` (one builds `https://{HOST}/` from a variable that names only
the host; another turns only https: output URLs into files), so the fake must speak TLS
with a certificate those clients verify. The CA is made once by `trustme` and kept, with its
key, in a directory (default `~/.cache/wanmock/tls`, mode 0700), so a client told to trust it
keeps trusting it across restarts; each start reuses or issues a server certificate for the
names it serves. Files in the directory:

- `ca.pem`: the CA alone (for `NODE_EXTRA_CA_CERTS`, which adds to Node's own roots);
- `bundle.pem`: certifi's roots followed by the CA (for the variables that *replace* a client's
  roots, `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`: a process told to trust it can
  still reach real hosts, as it did with certifi, httpx's and requests' default);
- `ca-key.pem` (0600): the CA's key, a secret: whoever holds it can pass for any host to a
  process that trusts the bundle;
- `server-<digest>.pem` (0600): a server key and certificate per set of names, reused while
  valid, so concurrent servers and `--workers` processes read one consistent file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import os
import ssl
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mockserver.errors import MockServerError

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
BUNDLE_FILE = "bundle.pem"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# A server certificate lives 397 days (what Chrome and Apple accept of any certificate) and is
# issued again when less than 30 are left.
LEAF_DAYS = 397
RENEW_DAYS = 30
# The variables clients read, and which file each takes: the bundle where a variable replaces
# the client's roots, the CA alone where it adds to them (Node).
BUNDLE_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
CA_VARIABLES = ("NODE_EXTRA_CA_CERTS",)


def default_dir() -> Path:
    """`$XDG_CACHE_HOME/wanmock/tls`, else `~/.cache/wanmock/tls`."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "wanmock" / "tls"


@dataclass(frozen=True)
class TLS:
    """What a server needs to serve HTTPS and what its clients need to trust it.

    `certfile`/`keyfile` go to uvicorn (`ssl_certfile`/`ssl_keyfile`; the key may sit in the
    certificate file). `ca_file` and `bundle` are None for a certificate the user brought: its
    issuer is theirs to trust.
    """

    certfile: str
    keyfile: str | None = None
    ca_file: str | None = None
    bundle: str | None = None
    names: tuple[str, ...] = ()
    directory: str | None = None

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment whose clients trust this server: `base` (default `os.environ`) plus
        SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE (the bundle) and NODE_EXTRA_CA_CERTS
        (the CA). `env({})` gives the variables alone."""
        out = dict(os.environ if base is None else base)
        out.update(self.variables())
        return out

    def variables(self) -> dict[str, str]:
        """The trust variables alone (empty for a certificate the user brought)."""
        if self.ca_file is None or self.bundle is None:
            return {}
        return trust_variables(self.bundle, self.ca_file)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server (and, through the bundle, real hosts):
        `httpx.Client(verify=tls.ssl_context())`."""
        return ssl.create_default_context(cafile=self.bundle or self.ca_file)

    @property
    def ca_bundle(self) -> str:
        """The file a client trusts to verify this server: the bundle (certifi's roots and the
        CA), else the CA file given with a certificate the user brought."""
        found = self.bundle or self.ca_file
        if found is None:
            raise MockServerError("a certificate you brought: its issuer is yours to trust "
                                  "(no CA bundle of wanmock's)")
        return found

    def uvicorn(self) -> dict[str, Any]:
        """The `uvicorn.Config` arguments."""
        return {"ssl_certfile": self.certfile, "ssl_keyfile": self.keyfile}


class Trusting:
    """`ca_bundle`, `env()` and `ssl_context()` for whatever holds a `tls` attribute (a
    `ThreadedMockServer`, a fixture's handle): a MockServerError when it speaks plain HTTP."""

    tls: TLS | None

    @property
    def ca_bundle(self) -> str:
        """The file a client trusts to verify this server (certifi's roots and the CA)."""
        return self._tls_only().ca_bundle

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment for a subprocess whose clients trust this server: `base` (default
        `os.environ`) plus SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and
        NODE_EXTRA_CA_CERTS."""
        return self._tls_only().env(base)

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context that trusts this server (`httpx.Client(verify=...)`)."""
        return self._tls_only().ssl_context()

    def _tls_only(self) -> TLS:
        if self.tls is None:
            raise MockServerError("this server speaks plain HTTP; serve it with tls=True "
                                  "(the wanmock_tls_server fixture, wanmock serve --tls)")
        return self.tls


def trust_variables(bundle: str, ca_file: str) -> dict[str, str]:
    """Each variable with the file it takes: the bundle where a variable replaces a client's
    roots, the CA alone where it adds to them."""
    return {**{name: bundle for name in BUNDLE_VARIABLES},
            **{name: ca_file for name in CA_VARIABLES}}


def server_names(host: str | None = None, public_url: str | None = None,
                 extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The names a server certificate covers: localhost, 127.0.0.1 and ::1, the bound host (the
    machine's name when bound to every address), the public URL's host and `extra`."""
    from urllib.parse import urlsplit

    names = list(LOOPBACK_NAMES)
    if host in ("0.0.0.0", "::", ""):
        import socket

        names.append(socket.gethostname())
    elif host:
        names.append(host)
    if public_url:
        public = urlsplit(public_url).hostname
        if public:
            names.append(public)
    names.extend(extra)
    return tuple(dict.fromkeys(check_name(n) for n in names))


def guard_hosts(names: Iterable[str]) -> tuple[str, ...]:
    """The `allowed_hosts` entries (the control plane's Host check) for certificate names: a
    server answers to every name its certificate covers. IP addresses and localhost pass that
    check anyway; `*.example.com` becomes `.example.com`."""
    out = []
    for name in names:
        text = check_name(name)
        if text == "localhost" or _is_ip(text):
            continue
        out.append("." + text[2:] if text.startswith("*.") else text)
    return tuple(dict.fromkeys(out))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_name(name: str) -> str:
    """A name a certificate can cover (a host name, `*.example.com`, an IP address), lowercased;
    anything else is a MockServerError."""
    text = str(name).strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        pass
    labels = text.removeprefix("*.").split(".")
    if not text or len(text) > 253 or any(
            not label or len(label) > 63 or label.startswith("-") or label.endswith("-")
            or not all(c.isalnum() or c in "-_" for c in label) for label in labels):
        raise MockServerError(
            f"--tls-name {name!r} is not a host name, *.wildcard or IP address")
    return text


class Authority:
    """The local CA in `directory` (made on first use; see the module doc)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory else default_dir()
        self.ca_file = self.directory / CA_FILE
        self.key_file = self.directory / CA_KEY_FILE
        self.bundle = self.directory / BUNDLE_FILE
        self._ca: Any = None

    def exists(self) -> bool:
        return self.ca_file.is_file() and self.key_file.is_file()

    def open(self) -> Authority:
        """Load the CA, or make it (and the directory, 0700) if there is none; write the
        bundle again (certifi may have moved on). Safe against concurrent starts."""
        with self._locked():
            if self.exists():
                self._ca = self._load()
            else:
                self._ca = self._create()
            bundle = _certifi_roots() + b"\n# wanmock local CA\n" + self.ca_pem()
            if not self.bundle.is_file() or self.bundle.read_bytes() != bundle:
                _write(self.bundle, bundle, 0o644)
        return self

    def ca_pem(self) -> bytes:
        return self.ca_file.read_bytes() if self._ca is None else self._ca.cert_pem.bytes()

    def fingerprint(self) -> str:
        """The CA certificate's SHA-256 fingerprint (AB:CD:...)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        cert = x509.load_pem_x509_certificate(self.ca_pem())
        return cert.fingerprint(hashes.SHA256()).hex(":").upper()

    def issue(self, names: Iterable[str]) -> Path:
        """The path of a server key + certificate for `names`, reused while it has more than
        RENEW_DAYS left, else issued (and the expired ones of other names removed)."""
        if self._ca is None:
            self.open()
        names = tuple(dict.fromkeys(check_name(n) for n in names))
        if not names:
            raise MockServerError("a server certificate needs at least one name")
        digest = hashlib.sha256(
            (self.fingerprint() + "\n" + "\n".join(sorted(names))).encode()).hexdigest()[:16]
        path = self.directory / f"server-{digest}.pem"
        with self._locked():
            if _days_left(path) > RENEW_DAYS:
                return path
            now = dt.datetime.now(dt.UTC)
            try:
                leaf = self._ca.issue_cert(
                    *names, common_name=names[0], organization_name="wanmock",
                    not_before=now - dt.timedelta(days=1),
                    not_after=now + dt.timedelta(days=LEAF_DAYS))
            except ValueError as exc:
                raise MockServerError(f"cannot issue a certificate for {names}: {exc}") from None
            _write(path, leaf.private_key_and_cert_chain_pem.bytes(), 0o600)
            for old in self.directory.glob("server-*.pem"):
                if old != path and _days_left(old) <= 0:
                    old.unlink(missing_ok=True)
        return path

    def tls(self, names: Iterable[str]) -> TLS:
        """Everything a server on `names` needs."""
        names = tuple(names)
        certfile = str(self.issue(names))
        return TLS(certfile=certfile, ca_file=str(self.ca_file), bundle=str(self.bundle),
                   names=tuple(dict.fromkeys(check_name(n) for n in names)),
                   directory=str(self.directory))

    def _create(self) -> Any:
        import getpass
        import socket

        import trustme

        try:
            who = f"{getpass.getuser()}@{socket.gethostname()}"
        except Exception:  # getpass fails without a user name (some containers)
            who = socket.gethostname()
        today = dt.date.today().isoformat()
        ca = trustme.CA(organization_name="wanmock",
                        organization_unit_name=f"wanmock local CA ({who}, {today})")
        _write(self.key_file, ca.private_key_pem.bytes(), 0o600)
        _write(self.ca_file, ca.cert_pem.bytes(), 0o644)
        return ca

    def _load(self) -> Any:
        import trustme

        _check_private(self.key_file)
        try:
            return trustme.CA.from_pem(self.ca_file.read_bytes(), self.key_file.read_bytes())
        except (ValueError, TypeError, OSError) as exc:
            raise MockServerError(
                f"the CA in {self.directory} cannot be read ({_one_line(exc)}); remove "
                f"{self.ca_file.name} and {self.key_file.name} to make a new one") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise MockServerError(
                f"cannot create the TLS directory {self.directory}: {_one_line(exc)} "
                "(choose another with --tls-dir)") from None
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; concurrent first starts may race
            yield
            return
        try:
            handle = open(self.directory / ".lock", "a")  # noqa: SIM115 - held below
        except OSError as exc:
            raise MockServerError(
                f"cannot write in the TLS directory {self.directory}: {_one_line(exc)}") from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def prepare(names: Iterable[str], directory: str | os.PathLike[str] | None = None) -> TLS:
    """A server certificate for `names` from the CA in `directory` (made if need be)."""
    return Authority(directory).open().tls(names)


def user_certificate(certfile: str, keyfile: str | None = None) -> TLS:
    """A certificate the user brought (`--tls-cert`, `--tls-key`), checked now so a bad path
    or a key that does not match is one line at start, not a traceback in a worker."""
    for flag, path in (("--tls-cert", certfile), ("--tls-key", keyfile)):
        if path is not None and not os.path.isfile(path):
            raise MockServerError(f"{flag} {path}: no such file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # An empty password: an encrypted key fails here instead of prompting on the terminal.
        context.load_cert_chain(certfile, keyfile, password=b"")
    except (OSError, ssl.SSLError) as exc:
        which = f"{certfile} and {keyfile}" if keyfile else certfile
        raise MockServerError(
            f"--tls-cert/--tls-key: cannot load {which} as a PEM certificate and its "
            f"unencrypted key ({_one_line(exc)})") from None
    return TLS(certfile=os.path.abspath(certfile),
               keyfile=os.path.abspath(keyfile) if keyfile else None,
               names=_certificate_names(certfile))


def _certificate_names(path: str) -> tuple[str, ...]:
    """The DNS names and IP addresses the first certificate in a PEM file covers."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return ()
    names = [*san.get_values_for_type(x509.DNSName),
             *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]
    return tuple(dict.fromkeys(n.lower() for n in names))


def _certifi_roots() -> bytes:
    """certifi's roots: what httpx and requests trust when no variable says otherwise."""
    import certifi

    return Path(certifi.where()).read_bytes()


def _days_left(path: Path) -> float:
    """Days until the certificate in `path` expires (-1 when there is none to read)."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return -1
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return left.total_seconds() / 86400


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write `data` whole or not at all (a temporary file renamed), created with `mode`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)  # whatever the umask
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise MockServerError(f"cannot write {path}: {_one_line(exc)}") from None


def _check_private(key_file: Path) -> None:
    """Refuse a CA key other users can read or that belongs to someone else: with it they could
    pass for any host to this user's processes that trust the bundle."""
    if sys.platform == "win32":
        return
    info = key_file.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise MockServerError(
            f"{key_file} is readable by other users or not yours; chmod 600 it (and chown it), "
            "or remove the directory to make a new CA")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
