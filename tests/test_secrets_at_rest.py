"""Secrets at rest (issue 20, point 7): a shared store keeps the digest of each API key (what
per-key scoping needs), never the key, and a key sent in a header, as `?api_key=` or in a body
field is in no record: not in a SQLite file, not in a Redis dump."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from mockserver.server import ThreadedMockServer
from tests.conftest import RedisServer

HEADER_KEY = "sk-header-secret-0001"
QUERY_KEY = "query-secret-0002"
BODY_KEY = "body-secret-0003"
SECRETS = (HEADER_KEY, QUERY_KEY, BODY_KEY)
SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"


def drive(store: str) -> None:
    """Submit, poll (with the key every way), list, and read the journal through the fake."""
    auth = {"Authorization": f"Bearer {HEADER_KEY}", "X-DashScope-Async": "enable"}
    with ThreadedMockServer(store=store, clock="manual", seed=4) as fake, \
            httpx.Client(base_url=fake.url, trust_env=False) as c:
        r = c.post(SUBMIT + f"?api_key={QUERY_KEY}", headers=auth, json={
            "model": "wan2.6-t2v", "input": {"prompt": "a cat"}, "api_key": BODY_KEY,
            "parameters": {"token": BODY_KEY}})
        assert r.status_code == 200, r.text
        task = r.json()["output"]["task_id"]
        assert c.get(f"/api/v1/tasks/{task}", headers=auth,
                     params={"api_key": QUERY_KEY}).status_code == 200
        other = c.get(f"/api/v1/tasks/{task}", headers={"Authorization": "Bearer sk-other"})
        assert other.json()["output"]["task_status"] == "UNKNOWN"  # scoping still works
        assert c.get("/api/v1/tasks", headers=auth).json()["total"] == 1
        shown = [c.get(path).text for path in (
            "/_wanmock/journal", "/_wanmock/tasks", f"/_wanmock/ui/tasks/{task}",
            "/_wanmock/ui/journal", f"/_wanmock/ui/tasks/{task}/request.json")]
        fake.backend.state.flush()
    for text in shown:
        assert not [s for s in SECRETS if s in text]


def test_no_raw_key_in_a_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    drive(f"sqlite:///{db}")
    files = [p for p in tmp_path.iterdir() if p.name.startswith("state.db")]
    held = b"".join(p.read_bytes() for p in files)
    assert b"sha256:" in held  # the digest is kept
    for secret in SECRETS:
        assert secret.encode() not in held, secret


def test_no_raw_key_in_a_redis_dump(redis_server: RedisServer) -> None:
    import redis

    drive(redis_server.url(prefix="secrets"))
    client = redis.Redis(port=redis_server.port)
    try:  # every key and value under the prefix, read whole (DUMP would compress them)
        dump = b""
        for key in client.scan_iter(match="secrets:*"):
            kind = client.type(key)
            value = {b"string": lambda k: [client.get(k)],
                     b"hash": lambda k: [b"%s=%s" % kv for kv in client.hgetall(k).items()],
                     b"list": lambda k: client.lrange(k, 0, -1),
                     b"set": lambda k: list(client.smembers(k)),
                     b"zset": lambda k: [m for m, _ in client.zrange(k, 0, -1, withscores=True)],
                     }[kind](key)
            dump += key + b"\n" + b"\n".join(v or b"" for v in value) + b"\n"
    finally:
        client.close()
    assert b"sha256:" in dump and len(dump) > 1000
    for secret in SECRETS:
        assert secret.encode() not in dump, secret


@pytest.mark.parametrize("query", [f"api_key={QUERY_KEY}", f"key={QUERY_KEY}&x=1",
                                   f"x=1&access_token={QUERY_KEY}"])
def test_keys_in_queries_are_redacted_in_the_journal(query: str) -> None:
    from mockserver.core.journal import Journal

    journal = Journal(10)
    entry = journal.record(time=0.0, method="GET", path="/v1/tasks/x", query=query,
                           headers=[], body=b'{"api_key": "' + BODY_KEY.encode() + b'"}')
    assert QUERY_KEY not in entry.query and "[redacted]" in entry.query
    assert BODY_KEY not in (entry.request_body or "")
