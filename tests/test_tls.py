"""HTTPS serving: the local CA (made once, kept in its directory), the server certificates it
issues, a certificate the user brings, and a ThreadedMockServer over real TLS on 127.0.0.1."""

from __future__ import annotations

import ssl
import stat
import subprocess
from pathlib import Path

import certifi
import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mockserver import tls as tlsmod
from mockserver.cli import main
from mockserver.errors import MockServerError
from mockserver.server import ThreadedMockServer
from mockserver.tls import Authority, prepare, server_names, user_certificate
from mockserver.tls_cli import export_lines

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
HEADERS = {"Authorization": "Bearer sk-tls-test", "X-DashScope-Async": "enable"}
BODY = {"model": "wan2.6-t2v", "input": {"prompt": "a lighthouse"},
        "parameters": {"size": "1280*720", "duration": 2}}


def _names(path: str) -> list[str]:
    """The subject alternative names of the first certificate in a PEM file."""
    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(getattr(name, "value", name)) for name in san]


def test_names_cover_loopback_the_host_the_public_url_and_extras() -> None:
    names = server_names("127.0.0.1", "https://Wanmock.Example:8443/prefix",
                         ["queue.fal.run", "*.fal.run", "[::1]", "10.0.0.7"])
    assert names == ("localhost", "127.0.0.1", "::1", "wanmock.example", "queue.fal.run",
                     "*.fal.run", "10.0.0.7")
    import socket

    assert socket.gethostname().lower() in server_names("0.0.0.0")
    for bad in ("bad name", "host:443", "https://x", "-x.com", "a..b", ""):
        with pytest.raises(MockServerError, match="is not a host name"):
            server_names(extra=[bad])


def test_certificate_names_are_hosts_the_control_plane_answers_to() -> None:
    assert tlsmod.guard_hosts(["localhost", "127.0.0.1", "::1", "queue.fal.run", "*.fal.run",
                               "Wanmock.Internal."]) == (
        "queue.fal.run", ".fal.run", "wanmock.internal")


def test_the_ca_is_made_once_kept_private_and_reused(tmp_path: Path) -> None:
    directory = tmp_path / "nested" / "tls"
    first = Authority(directory).open()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(first.key_file.stat().st_mode) == 0o600
    again = Authority(directory).open()
    assert again.fingerprint() == first.fingerprint()
    # The bundle is certifi's roots followed by the CA: the CA verifies, and so would real hosts.
    bundle = first.bundle.read_bytes()
    assert bundle.startswith(Path(certifi.where()).read_bytes())
    assert bundle.rstrip().endswith(first.ca_file.read_bytes().rstrip())

    leaf = again.issue(["localhost", "127.0.0.1"])
    assert stat.S_IMODE(leaf.stat().st_mode) == 0o600
    assert again.issue(["127.0.0.1", "localhost"]) == leaf  # same names, same file, reused
    assert leaf.read_bytes() == Authority(directory).open().issue(["localhost", "127.0.0.1"]) \
        .read_bytes()
    other = again.issue(["localhost", "queue.fal.run"])
    assert other != leaf and _names(str(other)) == ["localhost", "queue.fal.run"]
    # The server certificate is valid for 397 days from yesterday, and chains to the CA.
    cert = x509.load_pem_x509_certificate(leaf.read_bytes())
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert days == tlsmod.LEAF_DAYS + 1
    ca = x509.load_pem_x509_certificate(first.ca_file.read_bytes())
    cert.verify_directly_issued_by(ca)


def test_a_certificate_near_its_end_is_issued_again(tmp_path: Path, monkeypatch) -> None:
    authority = Authority(tmp_path).open()
    leaf = authority.issue(["localhost"])
    before = leaf.read_bytes()
    monkeypatch.setattr(tlsmod, "RENEW_DAYS", tlsmod.LEAF_DAYS + 1)  # every one is "near"
    assert authority.issue(["localhost"]) == leaf
    assert leaf.read_bytes() != before


def test_a_ca_key_others_can_read_or_a_broken_ca_is_refused(tmp_path: Path) -> None:
    authority = Authority(tmp_path).open()
    authority.key_file.chmod(0o644)
    with pytest.raises(MockServerError, match="readable by other users"):
        Authority(tmp_path).open()
    authority.key_file.chmod(0o600)
    authority.ca_file.write_text("not a certificate")
    with pytest.raises(MockServerError, match="remove ca.pem and ca-key.pem"):
        Authority(tmp_path).open()


def test_a_tls_dir_that_cannot_be_made_is_one_toolkit_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(MockServerError, match="cannot create the TLS directory"):
        prepare(["localhost"], blocker / "tls")


def _user_pair(tmp_path: Path) -> tuple[trustme.LeafCert, Path, Path]:
    leaf = trustme.CA().issue_cert("localhost")
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    cert.write_bytes(leaf.cert_chain_pems[0].bytes())
    key.write_bytes(leaf.private_key_pem.bytes())
    return leaf, cert, key


def test_a_brought_certificate_is_checked_at_start(tmp_path: Path) -> None:
    leaf, cert, key = _user_pair(tmp_path)
    brought = user_certificate(str(cert), str(key))
    assert brought.uvicorn() == {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    assert brought.variables() == {}  # its issuer is the user's to trust
    with pytest.raises(MockServerError, match="its issuer is yours to trust"):
        assert brought.ca_bundle
    combined = tmp_path / "both.pem"
    combined.write_bytes(leaf.private_key_and_cert_chain_pem.bytes())
    assert user_certificate(str(combined)).keyfile is None

    other_key = tmp_path / "other.pem"
    other_key.write_bytes(trustme.CA().issue_cert("x").private_key_pem.bytes())
    encrypted = tmp_path / "encrypted.pem"
    private = serialization.load_pem_private_key(key.read_bytes(), None)
    encrypted.write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    for args, message in [((str(tmp_path / "nope.pem"), None), "--tls-cert .*: no such file"),
                          ((str(cert), str(tmp_path / "nope"),), "--tls-key .*: no such file"),
                          ((str(key), None), "cannot load"),
                          ((str(cert), str(other_key)), "cannot load"),
                          ((str(cert), str(encrypted)), "unencrypted key")]:
        with pytest.raises(MockServerError, match=message) as caught:
            user_certificate(*args)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("argv, message", [
    (["--tls-cert", "/nonexistent/cert.pem"], "--tls-cert /nonexistent/cert.pem: no such file"),
    (["--tls-key", "/tmp/key.pem"], "--tls-key needs --tls-cert"),
    (["--tls-name", "queue.fal.run"], "--tls-name and --tls-dir need --tls"),
    (["--tls", "--tls-name", "not a name"], "'not a name' is not a host name"),
])
def test_bad_tls_flags_are_one_line_and_exit_2(capsys, argv, message) -> None:
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wanmock: ") and message in err and err.count("\n") == 1, err


def test_the_tls_flags_read_the_environment(monkeypatch) -> None:
    from mockserver.cli import build_parser

    monkeypatch.setenv("WANMOCK_TLS", "true")
    monkeypatch.setenv("WANMOCK_TLS_NAME", "queue.fal.run, *.fal.run")
    monkeypatch.setenv("WANMOCK_TLS_DIR", "/srv/tls")
    args = build_parser().parse_args(["serve"])
    assert (args.tls, args.tls_names, args.tls_dir) == (True, ["queue.fal.run", "*.fal.run"],
                                                        "/srv/tls")
    assert build_parser().parse_args(["tls", "env"]).tls_dir == "/srv/tls"
    assert build_parser().parse_args(["serve", "--tls-dir", "/x"]).tls_dir == "/x"


def test_tls_env_prints_lines_a_shell_evaluates(tmp_path: Path, capsys) -> None:
    directory = tmp_path / "a dir with 'quotes'"
    assert main(["tls", "env", "--tls-dir", str(directory)]) == 0
    captured = capsys.readouterr()
    assert "made a new local CA" in captured.err
    script = captured.out
    probe = 'printf "%s|%s|%s|%s" "$SSL_CERT_FILE" "$REQUESTS_CA_BUNDLE" "$CURL_CA_BUNDLE" ' \
            '"$NODE_EXTRA_CA_CERTS"'
    shown = subprocess.run(["sh", "-c", f'eval "$1"; {probe}', "sh", script],
                           capture_output=True, text=True, check=True).stdout.split("|")
    bundle, ca = str(directory / "bundle.pem"), str(directory / "ca.pem")
    assert shown == [bundle, bundle, bundle, ca]
    assert main(["tls", "env", "--tls-dir", str(directory)]) == 0
    assert capsys.readouterr().err == ""  # the CA was kept
    assert export_lines({"A": "/x y/'z'"}, "fish") == "set -gx A '/x y/'\"'\"'z'\"'\"''"
    assert export_lines({"A": "/x/'z'"}, "powershell") == "$env:A = '/x/''z'''"
    assert export_lines({"A": "/x"}, "dotenv") == "A=/x"


def test_tls_info_lists_the_ca_and_the_certificates(tmp_path: Path, capsys) -> None:
    assert main(["tls", "info", "--tls-dir", str(tmp_path)]) == 1
    assert "no CA in" in capsys.readouterr().out
    authority = Authority(tmp_path).open()
    authority.issue(["localhost", "queue.fal.run"])
    assert main(["tls", "info", "--tls-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert authority.fingerprint() in out
    assert "localhost, queue.fal.run" in out and "NODE_EXTRA_CA_CERTS" in out


def _job(client: httpx.Client) -> dict:
    task_id = client.post(CREATE, json=BODY, headers=HEADERS).json()["output"]["task_id"]
    return client.get(f"/api/v1/tasks/{task_id}", headers=HEADERS).json()["output"]


def test_a_threaded_server_over_real_tls(tls_dir: Path, tmp_path: Path) -> None:
    with ThreadedMockServer(seed=1, timing="instant", tls=tls_dir, video_dir=str(tmp_path),
                            families=["dashscope"]) as server:
        assert server.url.startswith("https://127.0.0.1:")
        assert server.ca_bundle == str(tls_dir / "bundle.pem")
        assert server.env({})["NODE_EXTRA_CA_CERTS"] == str(tls_dir / "ca.pem")
        with httpx.Client(base_url=server.url, verify=server.ssl_context(), timeout=30) as c:
            output = _job(c)
            assert output["task_status"] == "SUCCEEDED"
            # Self-links follow the scheme the client used.
            assert output["video_url"].startswith(server.url + "/_wanmock/videos/")
            video = c.get(output["video_url"])
            assert video.status_code == 200 and video.content[4:8] == b"ftyp"
        # It is real TLS: a client that does not trust the CA refuses the server...
        certifi_only = ssl.create_default_context(cafile=certifi.where())
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(server.url + "/_wanmock/clock", verify=certifi_only)
        # ...and plain HTTP on the port gets no answer.
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url.replace("https:", "http:") + "/_wanmock/clock", timeout=5)


def test_the_ca_persists_across_restarts(tls_dir: Path) -> None:
    trusted_before = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
    pem_before = (tls_dir / "ca.pem").read_bytes()
    for _ in range(2):  # a fresh server each time, on the same directory
        with ThreadedMockServer(timing="instant", tls=str(tls_dir), families=["dashscope"],
                                tls_names=["queue.fal.run", "*.fal.run"]) as server:
            r = httpx.get(server.url + "/_wanmock/clock", verify=trusted_before)
            assert r.status_code == 200
            assert "queue.fal.run" in _names(server.tls.certfile)
            # The control plane answers to the names the certificate covers, and only those.
            for host, allowed in [("queue.fal.run", True), ("rest.fal.run", True),
                                  ("rest.fal.ai", False)]:
                r = httpx.get(server.url + "/_wanmock/clock", verify=trusted_before,
                              headers={"Host": host})
                assert (r.status_code == 200) is allowed, (host, r.status_code, r.text)
    assert (tls_dir / "ca.pem").read_bytes() == pem_before


def test_plain_servers_have_no_trust_to_give() -> None:
    server = ThreadedMockServer(families=["dashscope"])
    assert server.tls is None
    with pytest.raises(MockServerError, match="plain HTTP"):
        server.env()


def test_a_server_serves_a_brought_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    path = tmp_path / "mine.pem"
    path.write_bytes(ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.bytes())
    with ThreadedMockServer(families=["dashscope"], tls=user_certificate(str(path))) as server:
        assert server.url.startswith("https://")
        context = ssl.create_default_context()
        ca.configure_trust(context)
        assert httpx.get(server.url + "/_wanmock/clock", verify=context).status_code == 200


def test_the_tls_server_fixture(pytester) -> None:
    pytester.makeini("[pytest]\nwanmock_tls_names = queue.fal.run\n")
    pytester.makepyfile(f'''
        import subprocess, sys

        import httpx
        import pytest

        CREATE = "{CREATE}"
        HEADERS = {HEADERS!r}
        BODY = {BODY!r}

        def test_https_and_trust(wanmock_tls_server, tmp_path_factory):
            server = wanmock_tls_server
            assert server.url.startswith("https://127.0.0.1:")
            # A CA of this session, not the user's ~/.cache one.
            assert server.ca_bundle.startswith(str(tmp_path_factory.getbasetemp()))
            assert "queue.fal.run" in server.tls.names
            env = server.env()
            assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == server.ca_bundle
            code = "import httpx, sys; print(httpx.get(sys.argv[1]).status_code)"
            out = subprocess.run([sys.executable, "-c", code, server.url + "/_wanmock/clock"],
                                 env=env, capture_output=True, text=True, check=True).stdout
            assert out.strip() == "200"
            with httpx.Client(base_url=server.url, verify=server.ssl_context()) as c:
                c.post(CREATE, json=BODY, headers=HEADERS).raise_for_status()
            assert len(server.tasks()) == 1

        @pytest.mark.wanmock(timing="instant")
        def test_marker_options_apply_and_the_state_is_fresh(wanmock_tls_server):
            server = wanmock_tls_server
            assert server.tasks() == []
            with httpx.Client(base_url=server.url, verify=server.ssl_context()) as c:
                task_id = c.post(CREATE, json=BODY, headers=HEADERS).json()["output"]["task_id"]
                out = c.get("/api/v1/tasks/" + task_id, headers=HEADERS).json()["output"]
            assert out["task_status"] == "SUCCEEDED"
            assert out["video_url"].startswith(server.url + "/_wanmock/videos/")

        def test_in_process_fakes_have_no_certificate(wanmock):
            with pytest.raises(Exception, match="plain HTTP"):
                wanmock.env()
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
