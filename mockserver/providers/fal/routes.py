"""fal.ai over HTTP (contracts/fal.yaml): the queue (`POST /{endpoint}`, then
`/{owner}/{alias}/requests/{id}[/status[/stream]|/cancel]`), the run host (`/fal.run/...`),
the storage upload (`/rest.fal.ai/storage/auth/token`, `/fal.media/files/...`) and the JWKS
webhooks are signed with. Bodies are `render.py`'s; wording and judgement `policy.py`'s."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response, StreamingResponse

from mockserver.contracts import Operation
from mockserver.core.tasks import Failure, State, Task
from mockserver.core.webhooks import Webhook
from mockserver.errors import ProviderError, Violation
from mockserver.jsonwire import ascii_int
from mockserver.providers.base import Family
from mockserver.providers.exchange import Exchange
from mockserver.providers.fal import render, signing
from mockserver.providers.fal.policy import FalPolicy
from mockserver.providers.hotpath import JSONBytes, json_body, json_response

_RANDOM_SEED_MAX = 2**31 - 1
_RUN_WAIT_S = 600.0  # the longest a synchronous run is held before its 504
_STREAM_TICK_S = 0.05  # how often the status stream looks at its request
_PING_S = 10.0  # the stream's `: ping` comment, in wall seconds
_CDN_HOST = "v3b.fal.media"  # where the real CDN's access URLs live
_FILES = "fal-files"  # the Backend memo that keeps uploads (decision uploaded-files)


def _truthy(value: str | None) -> bool:
    """`?logs=1` (@fal-ai/client) or `?logs=true` (fal-client) (decision status-words)."""
    return (value or "").strip().lower() in ("1", "true", "yes")


class Fal(Family):
    """fal's queue, run host, storage and webhook keys."""

    policy_class = FalPolicy
    policy: FalPolicy

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        backend.webhook_signers[self.name] = self._sign_webhook

    def unrouted_response(self, request: Any, status: int,
                          headers: dict[str, str]) -> tuple[Response, str]:
        """An app the fake does not serve: 404 "Application '<alias>' not found" (decision
        unknown-app); FastAPI's words on the REST and CDN hosts and for 405."""
        err = self.policy.unrouted_error(status, request.method, request.url.path, "")
        err.headers = {**headers, **err.headers}
        return self.error_response(err), err.code

    # -- where links point -----------------------------------------------------------------------
    def _mounted(self) -> dict[str, str]:
        """The family's mounted hosts (x-wanmock-mounts): a request with one of them as its
        Host came to fal's real hosts in process."""
        return self.backend.contracts.mounts([self.name])

    def _media_base(self, ex: Exchange) -> str:
        """The CDN's base: the real CDN host when the request came to a real host in process,
        else the fake's own `/fal.media/` mount."""
        host = ex.headers.get("host", "").partition(":")[0].lower()
        if host in self._mounted() and self.backend.options.public_url is None:
            return f"https://{_CDN_HOST}/"
        return self.base_url(ex) + "fal.media/"

    # -- submit ----------------------------------------------------------------------------------
    @classmethod
    def handler_of(cls, op: Operation) -> str:
        """Every queue submit (one operation per endpoint in contracts/fal.yaml) is answered
        by `queue_submit`: an endpoint is added in the contract and the catalogue alone."""
        return "queue_submit" if op.role == "submit" else super().handler_of(op)

    async def queue_submit(self, ex: Exchange) -> Response:
        spec, late = self.settle(ex)
        op = ex.operation
        root = render.request_root(op.path)
        request = ex.request
        query: Mapping[str, str] = request.query_params if request.scope.get("query_string") else {}
        limit = ascii_int((query.get("fal_max_queue_length") or "").strip())
        if limit is not None and self._queued(ex.api_key, root) >= limit:
            raise ProviderError(429, "queue_full", "Queue is full", envelope="request",
                                headers={"X-Fal-Error-Type": "queue_full"})
        task = self._create(ex, op, ex.body, spec, late, root)
        base = self.base_url(ex)
        hook = (query.get("fal_webhook") or "").strip()
        if hook:
            self.schedule_webhook(task, hook, args=(base, root),
                                  policy=self.policy.webhook_policy())
        return _answer(json_body(render.submitted(task, base, root)), 200, task.id)

    def _queued(self, key: str | None, root: str) -> int:
        """The caller's requests of one app still waiting (for fal_max_queue_length)."""
        count = 0
        for task in self.backend.tasks(self.name):
            if (task.extra.get("root") == root and self.backend.owns(task, key)
                    and self.backend.view(task).state is State.QUEUED):
                count += 1
        return count

    def _create(self, ex: Exchange, op: Operation, body: Any, spec: Any, late: Any,
                root: str) -> Task:
        ids = self.backend.ids
        seed = spec.seed if spec.seed is not None else int(ids.fraction() * _RANDOM_SEED_MAX)
        extra: dict[str, Any] = {"seed": seed, "root": root}
        if late is not None:
            extra["fal_error"] = {"code": late.code, **self.policy.failure_body(late, op)}
        timeout = _seconds(ex.headers.get("x-fal-request-timeout"))
        if timeout is not None:
            extra["fal_start_timeout"] = timeout
        task = self.submit(ex, spec, late, task_id=ids.uuid(), extra=extra,
                           body=body if ex.operation is not op else None)
        if timeout is not None and task.plan.queue_s > timeout:
            # Still waiting when the start deadline passes: 504 request_timeout (decision
            # start-timeout); the request never runs.
            task.plan.queue_s, task.plan.run_s, task.plan.fail_at = timeout, 0.0, 0.0
            task.plan.failure = Failure("request_timeout", "Request timed out", "timeout")
        return task

    # -- the synchronous run host ----------------------------------------------------------------
    async def _run(self, ex: Exchange) -> Response:
        """fal.run: the endpoint's queue submit judges the input; the answer waits for the
        run (decision sync-run). An endpoint the fake does not serve is an unknown app."""
        endpoint = "/" + "/".join(ex.path_params.values())
        submit = self._submits().get(endpoint)
        if submit is None:
            raise self.policy.unrouted_error(404, "POST", endpoint, "")
        body = self.read_body(ex)
        policy = self.policy
        spec, violations = policy.judge(submit, body, ex.headers, assume=self.input_facts(ex))
        spec, late = policy.settle(submit, spec, _now(violations))
        task = self._create(ex, submit, body, spec, late, render.request_root(endpoint))
        snap = await self._finished(task)
        if snap is None:
            raise ProviderError(504, "request_timeout", "Request timed out", envelope="request",
                                headers={"X-Fal-Error-Type": "request_timeout",
                                         "x-fal-request-id": task.id})
        return await self._result_answer(ex, task, snap)

    def _submits(self) -> dict[str, Operation]:
        """The queue's submit operations by path: the endpoints fal.run serves too."""
        found: dict[str, Operation] | None = getattr(self, "_by_path", None)
        if found is None:
            found = self._by_path = {op.path: op for op in self.contract.by_role("submit")}
        return found

    async def _finished(self, task: Task) -> Any:
        """Hold the run until its request ends on the fake's clock (decision sync-run); a
        clock that does not move (manual) ends it now as planned. None past `_RUN_WAIT_S`."""
        backend = self.backend
        deadline = time.monotonic() + _RUN_WAIT_S
        while True:
            snap = backend.view(task)
            if snap.state.terminal:
                return snap
            before = backend.now()
            await asyncio.sleep(min(max(snap.eta, 0.001), 0.05))
            if backend.now() == before or backend.options.mode == "polls":
                # a clock that does not move, or states counted in polls: ends as planned
                failed = task.plan.failure is not None
                backend.force(task, State.FAILED if failed else State.SUCCEEDED)
                return backend.view(task)
            if time.monotonic() > deadline:
                return None

    # -- queue: status, stream, result, cancel ---------------------------------------------------
    def _request(self, ex: Exchange) -> Task:
        task = self.task(ex)  # ex.task_id: the path's {request_id}
        if task is None:
            raise ProviderError(404, "not_found", "Request not found")
        return task

    @staticmethod
    def _root(ex: Exchange) -> str:
        params = ex.path_params
        return f"{params['owner']}/{params['alias']}"

    async def get_request_status(self, ex: Exchange) -> Response:
        task = self._request(ex)
        snap = self.backend.view(task, poll=True)
        base, root = self.base_url(ex), self._root(ex)
        with_logs = bool(ex.request.scope.get("query_string")) and _truthy(
            ex.request.query_params.get("logs"))
        if not snap.state.terminal:
            return _answer(json_body(render.status_body(task, snap, base, root, with_logs)),
                           202, task.id)
        # An ended request's status never changes: rendered once (the backend's memo).
        memo = self.backend.memo("fal-status", 4096)
        key = (task.id, base, root, with_logs, snap.state)
        body = memo.get(key)
        if body is None:
            body = memo.put(key, json_body(render.status_body(task, snap, base, root,
                                                              with_logs)))
        return _answer(body, 200, task.id)

    async def stream_request_status(self, ex: Exchange) -> Response:
        task = self._request(ex)
        with_logs = _truthy(ex.request.query_params.get("logs"))
        return StreamingResponse(self._events(task, self.base_url(ex), self._root(ex), with_logs),
                                 media_type="text/event-stream",
                                 headers={"x-fal-request-id": task.id,
                                          "Cache-Control": "no-cache"})

    async def _events(self, task: Task, base: str, root: str,
                      with_logs: bool) -> AsyncIterator[bytes]:
        """One `data:` event per change (logs only the new lines), `: ping` comments, closed
        after COMPLETED (Queue API doc, Streaming status)."""
        sent_logs = 0
        last: Any = None
        pinged = started = time.monotonic()
        while True:
            snap = self.backend.view(task, poll=True)
            body = render.status_body(task, snap, base, root, with_logs)
            lines = body.get("logs")
            if isinstance(lines, list):
                body["logs"], fresh = lines[sent_logs:], len(lines)
            else:
                fresh = sent_logs
            shown = (body["status"], body.get("queue_position"))
            if shown != last or fresh != sent_logs:
                yield b"data: " + json_body(body) + b"\n\n"
                last, sent_logs = shown, fresh
            if snap.state.terminal or time.monotonic() - started > _RUN_WAIT_S:
                return
            if time.monotonic() - pinged >= _PING_S:
                pinged = time.monotonic()
                yield b": ping\n\n"
            await asyncio.sleep(_STREAM_TICK_S)

    async def get_request_result(self, ex: Exchange) -> Response:
        task = self._request(ex)
        snap = self.backend.view(task, poll=True)
        if not snap.state.terminal:
            base, root = self.base_url(ex), self._root(ex)
            if self.backend.options["fal_result_pending"] == "202":
                return json_response(render.status_body(task, snap, base, root, False), 202,
                                     headers={"x-fal-request-id": task.id})
            return json_response({"detail": "Request is still in progress", "request_id": task.id,
                                  **render.request_urls(base, root, task.id)}, 400,
                                 headers={"x-fal-request-id": task.id})
        return await self._result_answer(ex, task, snap)

    async def _result_answer(self, ex: Exchange, task: Task, snap: Any) -> Response:
        """The model's output, or the error it ended with, as fal answers both."""
        answer = render.error_answer(task, snap)
        headers = {"x-fal-request-id": task.id}
        if answer is not None:
            status, body, extra = answer
            return json_response(body, status, headers={**headers, **extra})
        backend = self.backend
        url = backend.video_url(self.base_url(ex), task, snap)  # /_wanmock/ is never mounted
        size = await asyncio.to_thread(lambda: backend.video_path(task).stat().st_size)
        return json_response(render.output(task, url, size), headers=headers)

    async def cancel_request(self, ex: Exchange) -> Response:
        task = self.task(ex)
        if task is None:
            return json_response({"status": "NOT_FOUND"}, 404)
        backend = self.backend
        state = backend.view(task).state
        if state is State.QUEUED and backend.cancel(task):
            return json_response({"status": "CANCELLATION_REQUESTED"}, 202)
        if (state in (State.RUNNING, State.SUSPENDED)
                and backend.options["fal_cancel_running"] == "accept"):
            backend.force(task, State.CANCELED)
            return json_response({"status": "CANCELLATION_REQUESTED"}, 202)
        return json_response({"status": "ALREADY_COMPLETED"}, 400)

    # -- storage -----------------------------------------------------------------------------------
    def cdn_token(self, key: str) -> str:
        """A CDN token for a key: `wm-cdn-<key digest>.<signature>`, checked without state."""
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        return f"wm-cdn-{digest}.{self.backend.signer.signature('fal-cdn:' + digest, 0)}"

    async def create_storage_token(self, ex: Exchange) -> Response:
        if (ex.raw or b"").strip() and not isinstance(ex.json(self.policy.invalid_utf8), dict):
            raise ProviderError(422, "model_attributes_type", "Input should be a valid "
                                "dictionary or object to extract fields from",
                                violation=Violation("", "schema:type", 422,
                                                    "model_attributes_type", "Input should be "
                                                    "a valid dictionary or object"))
        # fal-client compares expires_at with its own aware now(): wall time, with an offset.
        expires = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat(timespec="seconds")
        return json_response({"token": self.cdn_token(ex.api_key or ""), "token_type": "Bearer",
                              "base_url": self._media_base(ex).rstrip("/"),
                              "expires_at": expires})

    async def upload_file(self, ex: Exchange) -> Response:
        token = ex.api_key or ""
        digest = token.removeprefix("wm-cdn-").partition(".")[0]
        expected = f"wm-cdn-{digest}.{self.backend.signer.signature('fal-cdn:' + digest, 0)}"
        if not token.startswith("wm-cdn-") or token != expected:
            raise self.policy.auth_error("invalid")
        raw = ex.raw or b""
        ctype = ex.headers.get("content-type", "").strip() or "application/octet-stream"
        name = _safe_name(ex.headers.get("x-fal-file-name", "")) or "upload.bin"
        file_id = self.backend.ids.uuid().replace("-", "")[:20]
        self.backend.memo(_FILES, 64).put(file_id, (bytes(raw), ctype, name))
        url = f"{self._media_base(ex)}files/b/{file_id}/{name}"
        return json_response({"access_url": url, "content_type": ctype, "file_name": name,
                              "file_size": len(raw)})

    async def get_file(self, ex: Exchange) -> Response:
        params = ex.path_params
        found = self.backend.memo(_FILES, 64).get(params["file_id"])
        if found is None or found[2] != params["file_name"]:
            raise ProviderError(404, "not_found", "File not found")
        data, ctype, _ = found
        return Response(data, media_type=ctype)

    # -- webhooks ----------------------------------------------------------------------------------
    def signing_key(self) -> Any:
        """The fake's Ed25519 key: derived from its URL-signing secret, so every worker of a
        shared store signs alike and `--seed` keeps it across restarts."""
        seed = self.backend.signer.signature("fal:webhook-key", 0)
        memo = self.backend.memo("fal-keys", 4)
        key = memo.get(seed)
        if key is None:
            key = memo.put(seed, signing.private_key(seed.encode("ascii")))
        return key

    async def get_webhook_keys(self, ex: Exchange) -> Response:
        padded = self.backend.options["fal_jwks_padding"] == "padded"
        return json_response(signing.jwks(self.signing_key(), padded))

    def _sign_webhook(self, hook: Webhook, content: bytes) -> dict[str, str]:
        return signing.sign_headers(self.signing_key(), hook.task_id,
                                    str(self.backend.options["fal_webhook_user_id"]),
                                    int(time.time()), content)

    def webhook_body(self, task: Task, *args: Any) -> dict[str, Any] | None:
        """The event once the request has ended (Webhooks API doc); args: (base, root)."""
        base = str(args[0]) if args else ""
        backend = self.backend
        snap = backend.view(task)
        if not snap.state.terminal:
            return None
        answer = render.error_answer(task, snap)
        if answer is not None:
            return render.webhook_event(task, snap, None, (answer[0], answer[1]))
        payload = render.output(task, backend.video_url(base, task, snap), None)
        return render.webhook_event(task, snap, payload, None)


def _answer(body: bytes, status: int, request_id: str) -> Response:
    """JSON already rendered, with `x-fal-request-id` (the hot paths: submit and status)."""
    response = JSONBytes(body, status)
    response.raw_headers.append((b"x-fal-request-id", request_id.encode("latin-1")))
    return response


def _now(violations: list[Any]) -> list[Any]:
    """A synchronous run reports an input the model refuses at once: every violation is a
    submit-time one (the run host has no queue to fail in later)."""
    from dataclasses import replace

    return [replace(v, timing="submit") if v.rule.startswith("schema:") else v
            for v in violations]


def _seconds(value: str | None) -> float | None:
    try:
        found = float(value) if value else None
    except ValueError:
        return None
    return found if found is not None and found > 0 else None


def _safe_name(name: str) -> str:
    """A file name fit for one URL path segment."""
    keep = "".join(c for c in name.strip() if c.isalnum() or c in "._-")
    return keep[:128]


def _bind(name: str, method: Callable[..., Any]) -> None:
    async def handler(self: Fal, ex: Exchange) -> Response:
        return await method(self, ex)  # type: ignore[no-any-return]

    handler.__name__ = name
    setattr(Fal, name, handler)


# The run host's four path shapes (contracts/fal.yaml runApp*).
for _shape in ("run_app", "run_app_task", "run_app_version_task", "run_app_version_task_variant"):
    _bind(_shape, Fal._run)
