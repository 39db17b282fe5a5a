"""Replicate over HTTP (contracts/replicate.yaml): predictions by model, by version and by
deployment (with `Prefer: wait`, `Cancel-After` and webhooks), get, cancel and list; the
model, version, file, webhook-secret and account reads are `resources.py`'s. Bodies are
`render.py`'s; wording and judgement `policy.py`'s."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mockserver.core.ids import key_id
from mockserver.core.scenarios import FaultRequested
from mockserver.core.tasks import Snapshot, State, Task
from mockserver.core.webhooks import NOT_OWED, RetryPolicy
from mockserver.errors import ProviderError
from mockserver.providers.base import Family
from mockserver.providers.exchange import NOT_JSON, Exchange
from mockserver.providers.hotpath import JSONResponse, json_response
from mockserver.providers.replicate import events, render
from mockserver.providers.replicate.family import STATUS
from mockserver.providers.replicate.models import Model
from mockserver.providers.replicate.policy import ReplicatePolicy
from mockserver.providers.replicate.resources import Resources

PROBLEM = "application/problem+json"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_POLL_S = 0.05  # how often a held `Prefer: wait` request looks at its prediction
_SEED_MAX = 2**32 - 1
_YEAR_S = 365 * 86400.0


def _wait_seconds(prefer: str | None) -> int | None:
    """`wait` -> 60, `wait=n` -> n, at most 60 (the contract checked the pattern, which lets
    61-99 through); None without one."""
    if not prefer:
        return None
    _, _, n = prefer.strip().partition("=")
    return min(int(n), 60) if n else 60


def _part(digits: str | None) -> int:
    """One number of a Cancel-After duration; more than 12 digits is past the year the
    deadline is held to anyway (and int() refuses over 4300)."""
    if not digits:
        return 0
    return int(digits) if len(digits) <= 12 else 10**12


def cancel_after(value: str | None) -> float | None:
    """Cancel-After in seconds (`90`, `30s`, `5m`, `1h30m45s`: the contract's pattern checked
    it); None when absent (decision cancel-after)."""
    if value is None:
        return None
    text = value.strip().lower()
    if text.isdigit():
        return float(text)
    found = _DURATION.match(text)
    h, m, s = (_part(g) for g in found.groups()) if found else (0, 0, 0)
    return float(h * 3600 + m * 60 + s)


class Replicate(Resources, Family):
    """`/v1/models/<owner>/<name>/predictions`, `/v1/predictions[/<id>[/cancel]]`,
    `/v1/deployments/<owner>/<name>/predictions`, and the reads of `Resources`."""

    policy_class = ReplicatePolicy
    policy: ReplicatePolicy

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        # the fake's webhook sender signs each attempt with it
        backend.webhook_signers[self.name] = self._sign_webhook

    # -- what the pipeline asks ------------------------------------------------------------------
    def read_body(self, ex: Exchange) -> Any:
        """JSON whatever the Content-Type says (the clients send application/json; the fake
        does not refuse curl's form type)."""
        policy = self.policy
        if not (ex.raw or b"").strip():
            raise policy.flag(policy.body_error("empty", ex.operation), "body:empty")
        body = ex.json(policy.invalid_utf8)
        if body is NOT_JSON:
            raise policy.flag(policy.body_error("not_json", ex.operation), "body:not_json")
        return body  # JSON of another type: the schema's problem (Invalid type...)

    def limit(self, ex: Exchange) -> None:
        """The documented limits per key while replicate_rate_limits is on: 600 creates and
        3000 other requests per sliding minute (contracts x-wanmock-limits, decision
        rate-limits): 429 with the seconds until the window frees."""
        limits = self.contract.extensions.limits
        if limits.switch is None or self.backend.options[limits.switch] != "on":
            return
        if ex.operation.role == "submit":
            per_s = next(iter(limits.models.values())).submit_rps if limits.models else None
            bucket = "create"
        else:
            per_s, bucket = limits.rate_limit_qps, "other"
        if per_s is None:
            return
        if not self.backend.admit(self.name, ex.api_key, qps=per_s * 60, bucket=bucket,
                                  window_s=60.0):
            now = self.backend.now()
            raise FaultRequested("rate-limit", {"retry_after": max(1, int(60 - now % 60))})

    def error_response(self, err: ProviderError, op: Any = None) -> Response:
        """Every error as RFC 7807 problem details (decision errors)."""
        return JSONResponse(self.policy.error_body(err, op), status_code=err.status,
                            headers=err.headers or None, media_type=PROBLEM)

    def unrouted_response(self, request: Request, status: int,
                          headers: dict[str, str]) -> tuple[Response, str]:
        """An unknown model, deployment or path: `{"detail": "The requested resource could not
        be found.", "status": 404}` (replicate-javascript#347)."""
        err = self.policy.not_found()
        if status == 405:
            err = ProviderError(405, "Method not allowed", "Method not allowed",
                                envelope="detail")
            headers = {**headers, "Allow": _allowed(request)}
        err.headers = dict(headers)
        return self.error_response(err), err.code

    # -- creating predictions --------------------------------------------------------------------
    async def _by_model(self, ex: Exchange) -> Response:
        model = self.policy.model_of(ex.operation, ex.body)
        if model is None:  # a contract operation the model table does not know: a bug
            raise self.policy.internal_error()
        return await self._create(ex, model)

    async def create_prediction(self, ex: Exchange) -> Response:
        """`POST /v1/predictions` with `version` (replicate.run('owner/name:version'))."""
        return await self._create(ex, self.policy.model_of(ex.operation, ex.body))

    async def create_deployment_prediction(self, ex: Exchange) -> Response:
        """A deployment the replicate_deployments option declares runs its model."""
        params = ex.path_params
        name = f"{params['deployment_owner']}/{params['deployment_name']}"
        target = self.deployments().get(name)
        model = self.policy.models.get(target) if target else None
        if model is None:
            raise self.policy.not_found()
        return await self._create(ex, model, deployment=name)

    def deployments(self) -> dict[str, str]:
        """deployment `owner/name` -> model, from the option."""
        out = {}
        for pair in str(self.backend.options["replicate_deployments"] or "").split(","):
            name, sep, model = pair.partition("=")
            if sep:
                out[name.strip()] = model.strip()
        return out

    async def _create(self, ex: Exchange, model: Model | None, *,
                      deployment: str | None = None) -> Response:
        policy, backend = self.policy, self.backend
        judged = ex.operation if model is None or deployment is None else model.operation
        spec, late = policy.settle(judged, *policy.judge(judged, ex.body, ex.headers,
                                                         assume=self.input_facts(ex)))
        assert model is not None  # judge found no model: settle raised its 422
        deadline_s = cancel_after(ex.headers.get("cancel-after"))
        if deadline_s is not None:  # the contract's pattern let it through: 5 s to a year
            deadline_s = min(max(5.0, deadline_s), _YEAR_S)
        ids = backend.ids
        seed = spec.seed if spec.seed is not None else int(ids.fraction() * _SEED_MAX)
        extra: dict[str, Any] = {"seed": seed, "account": key_id(ex.api_key or "")}
        if deployment:
            extra["deployment"] = deployment
        if deadline_s is not None:
            extra["deadline_s"] = deadline_s
        task = self.submit(ex, spec, late, task_id=self.prediction_id(), extra=extra)
        if deadline_s is not None:
            self._deadline(task, deadline_s)
        self._owe_webhooks(ex, task, model)
        wait = _wait_seconds(ex.headers.get("prefer"))
        snap = await self._hold(task, wait) if wait is not None else backend.view(task)
        unfinished = not snap.state.terminal
        body = self.prediction(ex, task, snap, starting=unfinished and wait is not None)
        status = 202 if unfinished and backend.options["replicate_unfinished_status"] == "202" \
            else 201
        headers = {"Preference-Applied": ex.headers["prefer"].strip()} if wait is not None else None
        return json_response(body, status, headers=headers)

    def prediction_id(self) -> str:
        """26 characters of lower-case Crockford base32 from the seeded ids (decision
        prediction-ids)."""
        bits = int(self.backend.ids.uuid().replace("-", ""), 16) << 2
        bits |= int(self.backend.ids.fraction() * 4)
        return "".join(_CROCKFORD[(bits >> (5 * i)) & 31] for i in range(25, -1, -1))

    def _deadline(self, task: Task, seconds: float) -> None:
        """Cancel-After: the prediction is canceled (aborted before it starts) at its
        deadline unless it has ended by then (decision cancel-after)."""
        deadline = task.submitted_at + seconds
        if deadline < task.submitted_at + task.plan.end_s:
            self.backend.store.update(task, canceled_at=deadline)

    async def _hold(self, task: Task, seconds: int) -> Snapshot:
        """`Prefer: wait`: until the prediction ends or `seconds` pass on the fake's clock; a
        clock that does not move answers at once (decision wait-clock)."""
        backend = self.backend
        start = backend.now()
        deadline = time.monotonic() + seconds
        while True:
            snap = backend.view(task)
            if snap.state.terminal or backend.options.mode == "polls":
                return snap
            before = backend.now()
            if before - start >= seconds or time.monotonic() >= deadline:
                return snap
            await asyncio.sleep(min(max(snap.eta, 0.001), _POLL_S))
            if backend.now() == before:  # a manual clock: nothing will change while we wait
                return backend.view(task)

    # -- the prediction object -------------------------------------------------------------------
    def version_of(self, task: Task) -> str:
        model = self.policy.models.get(task.spec.model)
        if self.backend.options["replicate_versions"] == "hidden" or model is None:
            return "hidden"
        return model.version

    def output_of(self, base_url: str, task: Task, snap: Snapshot) -> str | None:
        if snap.state is not State.SUCCEEDED:
            return None
        backend = self.backend
        if backend.options["replicate_output"] == "data":
            data = backend.video_path(task).read_bytes()
            return "data:video/mp4;base64," + base64.b64encode(data).decode("ascii")
        return backend.video_url(base_url, task, snap)

    def render(self, base_url: str, task: Task, snap: Snapshot, *, status: str | None = None,
               output: bool = True, at: float | None = None) -> dict[str, Any]:
        """The prediction at `snap` (`status`: another word for it, as a held create's
        `starting`; `at`: the moment its logs are read, default `snap.now`)."""
        backend = self.backend
        model = self.policy.models.get(task.spec.model)
        word = status or render.status_word(task, snap, backend.options["replicate_aborted"])
        started = render.started_at(task, snap) if word != STATUS["queued"] else None
        logs = render.logs(task, snap, model.steps() if model else 30, started,
                           snap.now if at is None else at)
        removed = (snap.state.terminal and snap.ended_at is not None
                   and snap.now >= snap.ended_at + backend.url_ttl(task))
        out = self.output_of(base_url, task, snap) if output and not removed else None
        return render.prediction(task, snap, base_url=base_url, version=self.version_of(task),
                                 status=word, output=out, logs_text=logs, removed=removed)

    def prediction(self, ex: Exchange, task: Task, snap: Snapshot, *,
                   starting: bool = False) -> dict[str, Any]:
        if starting and self.backend.options["replicate_wait_status"] == "starting":
            # Not finished in the window: `starting`, as Replicate documents (decision
            # wait-unfinished), whatever it is doing now.
            queued = Snapshot(State.QUEUED, 0, snap.eta, snap.submitted_at, None, None, snap.now)
            return self.render(self.base_url(ex), task, queued, status=STATUS["queued"])
        return self.render(self.base_url(ex), task, snap)

    # -- get, cancel, list ---------------------------------------------------------------------
    def _own(self, ex: Exchange) -> Task:
        task = self.task(ex)
        if task is None:
            raise self.policy.not_found()
        return task

    async def get_prediction(self, ex: Exchange) -> Response:
        task = self._own(ex)
        snap = self.backend.view(task, poll=True)
        return json_response(await self._threaded(ex, task, snap))

    async def _threaded(self, ex: Exchange, task: Task, snap: Snapshot) -> dict[str, Any]:
        """The prediction, rendered off the event loop when its output is a data: URI (the
        MP4 is read, made on first use)."""
        if snap.state is State.SUCCEEDED and self.backend.options["replicate_output"] == "data":
            return await asyncio.to_thread(self.prediction, ex, task, snap)
        return self.prediction(ex, task, snap)

    async def cancel_prediction(self, ex: Exchange) -> Response:
        """Starting or processing: canceled now; ended: unchanged (decision cancel)."""
        task = self._own(ex)
        backend = self.backend
        state = backend.view(task).state
        if state is State.QUEUED:
            backend.cancel(task)
        elif state in (State.RUNNING, State.SUSPENDED):
            backend.force(task, State.CANCELED)
        return json_response(await self._threaded(ex, task, backend.view(task)))

    async def list_predictions(self, ex: Exchange) -> Response:
        """The caller's predictions, newest first, a page at a time (decision
        list-pagination)."""
        query = ex.request.query_params
        after = _instant(query.get("created_after"))
        before = _instant(query.get("created_before"))
        if after is False or before is False:
            raise ProviderError(400, "Bad request", "created_after and created_before must be "
                                "ISO 8601 date-times")
        backend = self.backend
        mine = [t for t in backend.tasks(self.name)
                if backend.owns(t, ex.api_key, self.policy.key_form())
                and (after is None or t.submitted_at >= after)
                and (before is None or t.submitted_at < before)]
        if query.get("source") == "web":
            mine = []  # the fake makes API predictions only
        mine.sort(key=lambda t: (t.submitted_at, t.id), reverse=True)
        page, next_key, prev_key = self.paginate(mine, query.get("cursor"),
                                                 lambda t: (t.submitted_at, t.id))
        base = self.base_url(ex)
        results = [self.render(base, t, backend.view(t)) for t in page]
        own = base.rstrip("/") + "/v1/predictions"
        return json_response(render.page(results, self.cursor_url(own, query, next_key),
                                         self.cursor_url(own, query, prev_key)))

    # -- webhooks --------------------------------------------------------------------------------
    def _owe_webhooks(self, ex: Exchange, task: Task, model: Model) -> None:
        body = ex.body
        url = body.get("webhook")
        base = self.base_url(ex)
        policy = self.webhook_policy()
        count = events.log_moments(task, model.steps())
        if isinstance(url, str) and url:
            chosen = events.wanted(body.get("webhook_events_filter"),
                                   self.backend.options["replicate_webhook_events"])
            for event, index in events.schedule(chosen, count):
                self.schedule_webhook(task, url, args=(base, event, index, count), policy=policy)
        legacy = body.get("webhook_completed")
        if isinstance(legacy, str) and legacy:
            self.schedule_webhook(task, legacy, args=(base, "completed", 0, count), policy=policy)

    def webhook_policy(self) -> RetryPolicy:
        spec = self.contract.extensions.webhooks
        options = self.backend.options
        intervals = (spec.intervals.get(options.timing) if spec else None) or ()
        timeout = options.webhook_timeout
        if timeout is None:
            timeout = spec.timeout_s if spec is not None and spec.timeout_s else 10.0
        return RetryPolicy(timeout_s=timeout, intervals=tuple(float(i) for i in intervals))

    def webhook_body(self, task: Task, *args: Any) -> Any:
        """The event's body once it is due: the prediction as GET shows it at the event's
        moment (start: processing; output: processing with its output; completed: as it
        ended); never owed when the prediction ended without it."""
        base, event, index, count = args
        backend = self.backend
        snap = backend.view(task)
        owed = events.due(task, snap, event, int(index), int(count))
        if owed == events.Owed.LATER:
            return None
        if owed == events.Owed.NEVER:
            return NOT_OWED
        if event == "completed":
            return self.render(base, task, snap)
        at = events.moment(task, event, int(index), int(count))
        if event == "output":
            body = self.render(base, task, snap)
            for key in ("completed_at", "metrics"):
                body.pop(key, None)
            body["status"] = STATUS["running"]
            return body
        running = Snapshot(State.RUNNING, snap.progress, 0.0, task.submitted_at,
                           task.submitted_at + task.plan.queue_s, None, at)
        return self.render(base, task, running, output=False, at=at)

    def _sign_webhook(self, hook: Any, content: bytes) -> dict[str, str]:
        task = self.backend.store.get(hook.task_id)
        account = str(task.extra.get("account", "")) if task is not None else ""
        secret = self.webhook_secret(account)
        return events.sign(secret, events.message_id(hook.task_id, hook.seq), int(time.time()),
                           content)


def _allowed(request: Request) -> str:
    """Every method the path takes: each operation is a route of its own, so Starlette's
    Allow names only one of `/v1/files`'s GET and POST."""
    path = request.url.path
    methods = {m for route in request.app.routes if isinstance(route, Route) and route.methods
               and route.path_regex.match(path) for m in route.methods}
    return ", ".join(sorted(methods))


def _instant(value: str | None) -> float | None | bool:
    """An ISO 8601 date-time as epoch seconds; None when absent, False when unreadable (an
    empty value too)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False


def _bind(name: str) -> None:
    async def handler(self: Replicate, ex: Exchange) -> Response:
        return await self._by_model(ex)

    handler.__name__ = name
    setattr(Replicate, name, handler)


# One handler per model's create operation (contracts/replicate.yaml operationIds).
for _model in ("wan21_t2v13b", "wan22_t2v_fast", "wan22_i2v_fast", "wan22_i2v_a14b", "wan22_s2v",
               "wan25_t2v", "wan25_t2v_fast", "wan25_i2v", "wan25_i2v_fast", "wan26_t2v",
               "wan27_t2v", "wan27_i2v"):
    _bind(f"create_{_model}_prediction")
