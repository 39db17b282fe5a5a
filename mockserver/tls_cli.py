"""The command line's HTTPS parts: `wanmock serve --tls ...` and `wanmock tls env|info`."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Mapping
from typing import Any

from mockserver.errors import MockServerError

# What each variable is read by (checked against each client's source: docs/tls.md).
READERS = {
    "SSL_CERT_FILE": "Python ssl default contexts, httpx, aiohttp, urllib, OpenSSL, Go",
    "REQUESTS_CA_BUNDLE": "requests",
    "CURL_CA_BUNDLE": "curl, requests",
    "NODE_EXTRA_CA_CERTS": "Node (fetch, https), Bun",
}
SHELLS = ("sh", "fish", "powershell", "dotenv")


def add_serve_flags(serve: argparse.ArgumentParser) -> None:
    """`--tls`, `--tls-dir`, `--tls-name`, `--tls-cert`, `--tls-key` on `wanmock serve`."""
    group = serve.add_argument_group("HTTPS")
    group.add_argument("--tls", action="store_true",
                       help="serve HTTPS with a certificate from wanmock's local CA (made once, "
                            "kept in --tls-dir); prints the variables that make clients trust it")
    group.add_argument("--tls-dir", default=None, metavar="DIR",
                       help="where the local CA lives (default ~/.cache/wanmock/tls, or "
                            "$XDG_CACHE_HOME/wanmock/tls)")
    group.add_argument("--tls-name", action="append", dest="tls_names", default=[],
                       metavar="NAME",
                       help="another name the certificate covers besides localhost, 127.0.0.1, "
                            "::1, --host and the --public-url host (repeatable; e.g. a host "
                            "an SDK hard-codes, mapped to 127.0.0.1 in /etc/hosts)")
    group.add_argument("--tls-cert", default=None, metavar="FILE",
                       help="serve this PEM certificate (chain) instead of one from the local "
                            "CA; implies --tls")
    group.add_argument("--tls-key", default=None, metavar="FILE",
                       help="the unencrypted PEM key of --tls-cert (if not in that file)")


def add_command(sub: Any) -> None:
    """`wanmock tls env|info`."""
    tls = sub.add_parser(
        "tls", env_prefix="WANMOCK_",
        help="the local CA behind `wanmock serve --tls`: trust variables and details",
        description="env: the variables that make clients trust `wanmock serve --tls`, as "
                    "lines for a shell (eval \"$(wanmock tls env)\"); makes the CA if there is "
                    "none yet. info: the CA, its files and the server certificates issued.")
    tls.add_argument("action", nargs="?", choices=["env", "info"], default="env")
    tls.add_argument("--tls-dir", default=None, metavar="DIR",
                     help="the CA's directory (default ~/.cache/wanmock/tls; or "
                          "$WANMOCK_TLS_DIR, as `wanmock serve` reads it)")
    tls.add_argument("--shell", default="sh", choices=SHELLS,
                     help="env: the syntax of the lines (default sh)")


def check(args: argparse.Namespace) -> Any:
    """The flags' combinations, and the certificate the user brought (`--tls-cert`) loaded:
    checked before the app is built, so a mistake is one line at once. Returns that
    certificate's `TLS`, or None."""
    from mockserver.tls import check_name, user_certificate

    for name in args.tls_names:
        check_name(name)
    if args.tls_key and not args.tls_cert:
        raise MockServerError("--tls-key needs --tls-cert")
    if args.tls_cert:
        if args.tls_names:
            raise MockServerError("--tls-name names what wanmock's CA issues; with --tls-cert "
                                  "the certificate you bring decides its names")
        return user_certificate(args.tls_cert, args.tls_key)
    if not args.tls and (args.tls_names or args.tls_dir):
        raise MockServerError("--tls-name and --tls-dir need --tls")
    return None


def guard_hosts(args: argparse.Namespace, brought: Any) -> tuple[str, ...]:
    """The hosts the control plane must answer to because the certificate covers them (the
    `--tls-name`s, the machine's name when bound to every address, a brought certificate's
    names): the `allowed_hosts` additions."""
    from mockserver.tls import guard_hosts, server_names

    if brought is not None:
        return guard_hosts(brought.names)
    return guard_hosts(server_names(args.host, None, args.tls_names)) if args.tls else ()


def from_local_ca(args: argparse.Namespace, public_url: str | None = None) -> Any:
    """Under `--tls`: a server certificate from the local CA for the names this server answers
    to (None without `--tls`)."""
    from mockserver.tls import prepare, server_names

    if not args.tls:
        return None
    if public_url and public_url.startswith("http://"):
        print(f"wanmock: warning: --public-url {public_url} is http:// while the server speaks "
              "HTTPS; result URLs and self-links will say http://", file=sys.stderr)
    return prepare(server_names(args.host, public_url, args.tls_names), args.tls_dir)


def banner(tls: Any) -> list[str]:
    """The lines `wanmock serve --tls` prints under its URLs."""
    if tls.ca_file is None:
        return [f"  https      certificate {tls.certfile} (yours: clients must trust its issuer)"]
    lines = [f"  https      certificate for {', '.join(tls.names)}",
             f"             from wanmock's CA in {tls.directory}",
             f"  CA bundle  {tls.bundle}  (certifi's roots + the CA; the CA alone: "
             f"{tls.ca_file})",
             "  trust it   (set in the client's environment before it starts)"]
    for name, value in tls.variables().items():
        lines.append(f"             {name}={value}   # {READERS[name]}")
    dir_flag = f" --tls-dir {_quote(tls.directory)}" if tls.directory != _default() else ""
    lines.append(f"             or in a shell: eval \"$(wanmock tls env{dir_flag})\"")
    return lines


def command(args: argparse.Namespace) -> int:
    """`wanmock tls env|info`."""
    from mockserver.tls import Authority, trust_variables

    authority = Authority(args.tls_dir)
    if args.action == "env":
        if not authority.exists():
            print(f"wanmock: made a new local CA in {authority.directory}", file=sys.stderr)
        authority.open()
        variables = trust_variables(str(authority.bundle), str(authority.ca_file))
        print(export_lines(variables, args.shell))
        return 0
    if not authority.exists():
        print(f"no CA in {authority.directory} yet (`wanmock serve --tls` or `wanmock tls env` "
              "makes one)")
        return 1
    authority.open()
    for line in info_lines(authority):
        print(line)
    return 0


def info_lines(authority: Any) -> list[str]:
    """What `wanmock tls info` prints: the CA and each server certificate issued."""
    from cryptography import x509

    ca = x509.load_pem_x509_certificate(authority.ca_pem())
    lines = [f"directory    {authority.directory}",
             f"CA           {ca.subject.rfc4514_string()}",
             f"SHA-256      {authority.fingerprint()}",
             f"valid until  {ca.not_valid_after_utc:%Y-%m-%d}",
             f"CA file      {authority.ca_file}   (NODE_EXTRA_CA_CERTS)",
             f"bundle       {authority.bundle}   (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, "
             "CURL_CA_BUNDLE)",
             f"CA key       {authority.key_file}   (secret: mode 0600)"]
    for path in sorted(authority.directory.glob("server-*.pem")):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = ", ".join(str(getattr(n, "value", n)) for n in san)
        except x509.ExtensionNotFound:
            names = "(no names)"
        lines.append(f"server       {path.name}  until {cert.not_valid_after_utc:%Y-%m-%d}: "
                     f"{names}")
    return lines


def export_lines(variables: Mapping[str, str], shell: str = "sh") -> str:
    """`variables` as lines a shell evaluates (`eval "$(wanmock tls env)"`)."""
    if shell not in SHELLS:
        raise MockServerError(f"shell must be one of {', '.join(SHELLS)}")
    lines = []
    for name, value in variables.items():
        if shell == "fish":
            lines.append(f"set -gx {name} {shlex.quote(value)}")
        elif shell == "powershell":
            quoted = value.replace("'", "''")
            lines.append(f"$env:{name} = '{quoted}'")
        elif shell == "dotenv":
            lines.append(f"{name}={value}")
        else:
            lines.append(f"export {name}={shlex.quote(value)}")
    return "\n".join(lines)


def _default() -> str:
    from mockserver.tls import default_dir

    return str(default_dir())


def _quote(path: str | None) -> str:
    return shlex.quote(path or "")
