"""A family's HTTP class: its handlers, holding its policy (`providers/policy.py`).

A family subclasses `Family`, names its policy class (`policy_class = DashScopePolicy`) and
writes one handler per contract operation, named after its operationId in snake_case
(`createVideoSynthesis` -> `create_video_synthesis`), each `async def handler(self, ex:
Exchange) -> Response`. The request pipeline (`providers.pipeline.Pipeline(family).routes()`)
calls a handler only after it has journaled the request, applied any transport scenario,
authenticated the caller (`ex.api_key`), checked the family's header rules and the
contract's parameters, found the task the request names (`ex.task_id`) and, for a submit,
read the body (`ex.body`, by `read_body`). A handler decides only what is its own: the job,
the task, the answer. Any `ProviderError` it raises becomes the family's own status and
envelope.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from starlette.responses import Response

from mockserver.catalogue import JobSpec
from mockserver.core.backend import Backend
from mockserver.core.scenarios import RequestInfo
from mockserver.core.tasks import Task
from mockserver.core.webhooks import RetryPolicy, Webhook
from mockserver.errors import ProviderError, Violation
from mockserver.families import load_class, spec
from mockserver.jsonwire import verbatim as verbatim_json
from mockserver.providers.exchange import NOT_JSON, Exchange
from mockserver.providers.hotpath import JSONResponse, public_base
from mockserver.providers.policy import Policy

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.routing import Route

    from mockserver.contracts import Contract, Operation


class Family:
    """One provider family over HTTP: its handlers, its policy, and what handlers share."""

    policy_class: ClassVar[type[Policy]]

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.policy: Policy = self.policy_class(backend)
        self.name: str = self.policy.name
        self.contract: Contract = self.policy.contract
        # Any worker of a shared store renders any task's webhook (core/webhooks.py).
        backend.renders_webhooks(self.name, self.webhook_renderer)

    def routes(self) -> list[Route]:
        """The family's routes: one per contract operation, through the request pipeline
        (`providers.pipeline.Pipeline`). A family may add to them or wrap their endpoints."""
        from mockserver.providers.pipeline import Pipeline

        return Pipeline(self).routes()

    @classmethod
    def handler_of(cls, op: Any) -> str:
        """The name of the method that answers `op` (an `Operation`): by default its
        operationId in snake case (`createVideoSynthesis` -> `create_video_synthesis`). A family
        whose operations of one role all answer alike names one method for them."""
        from mockserver.providers.pipeline import handler_name

        return handler_name(op.operation_id)

    # -- what the pipeline asks the family -------------------------------------------------
    def read_body(self, ex: Exchange) -> Any:
        """A submit's request body, or the family's error for a wrong content type, an empty
        body or one that is not JSON (its parser's way: `Policy.invalid_utf8`)."""
        policy = self.policy
        op = ex.operation
        if not (ex.raw or b"").strip():
            raise policy.flag(policy.body_error("empty", op), "body:empty")
        ctype = ex.headers.get("content-type", "")
        if ctype and "json" not in ctype.lower():
            raise policy.flag(policy.body_error("content_type", op), "body:content_type")
        body = ex.json(policy.invalid_utf8)
        if body is NOT_JSON:  # NaN, Infinity, a BOM, too deep...: not JSON to the provider
            raise policy.flag(policy.body_error("not_json", op), "body:not_json")
        return body

    def limit(self, ex: Exchange) -> None:
        """The family's own request limits, checked after authentication and its header rules
        (raise `FaultRequested("rate-limit")` beyond one; none by default)."""

    def request_info(self, ex: Exchange) -> RequestInfo:
        """What scenario rules match on; the body is read only when it is a small JSON
        object (the handler reuses the parse)."""
        op = ex.operation
        model = prompt = None
        raw = ex.raw
        if raw and len(raw) < 65536 and op.role == "submit":
            body = ex.json(self.policy.invalid_utf8)
            if isinstance(body, dict):
                fields, _ = op.extract(body)
                model = fields.get("model") if isinstance(fields.get("model"), str) else None
                prompt = fields.get("prompt") if isinstance(fields.get("prompt"), str) else None
        key = ex.headers.get("authorization", "").partition(" ")[2].strip() or None
        return RequestInfo(self.name, op.operation_id, op.role, model, key, prompt)

    # -- what handlers call ------------------------------------------------------------------
    def settle(self, ex: Exchange, assume: Any = ...) -> tuple[JobSpec, Violation | None]:
        """The policy's judgement of the submit's body, acted on: the job, and the violation
        that fails the task later (a submit-time one is raised). `assume`: facts of inputs
        the fake never fetches (default: the job scenario's, `input_facts`; a caller that has
        read them passes them, None included)."""
        op = ex.operation
        if assume is ...:
            assume = self.input_facts(ex)
        if assume:
            return self.policy.settle(op, *self.policy.judge(op, ex.body, ex.headers,
                                                             assume=assume))
        return self.policy.settle(op, *self.policy.judge(op, ex.body, ex.headers))

    def job_scenario(self, ex: Exchange, model: Any = None, prompt: Any = None) -> Any:
        """The submit's job scenario: the header's, else the first job rule that fits
        (`model`, `prompt` as the rules match them), chosen once per request."""
        if ex.job_scenario is None and not ex.job_picked and self.backend.scenarios:
            op = ex.operation
            ex.job_scenario = self.backend.scenarios.pick(RequestInfo(
                self.name, op.operation_id, op.role, model if isinstance(model, str) else None,
                ex.api_key, prompt if isinstance(prompt, str) else None), job=True)
        ex.job_picked = True
        return ex.job_scenario

    def input_facts(self, ex: Exchange) -> Any:
        """The job scenario's parameters, chosen before the body is judged (an `inputs`
        scenario's facts of inputs the fake never fetches, `mockserver.media.Assumed`);
        None without one."""
        if ex.job_scenario is None and not ex.job_picked and self.backend.scenarios:
            # Rules match on model and prompt: read them only when a rule could be chosen.
            fields = ex.operation.extract(ex.body)[0] if isinstance(ex.body, dict) else {}
            found = self.job_scenario(ex, fields.get("model"), fields.get("prompt"))
        else:
            found = self.job_scenario(ex)
        return found.params if found is not None else None

    def submit(self, ex: Exchange, spec: JobSpec, late: Violation | None, *, task_id: str,
               extra: dict[str, Any] | None = None, body: Any = None,
               keep_raw: bool = True, model_concurrency: int | None = None) -> Task:
        """Create the task of a submit: `body` (default `ex.body`) is what the task keeps;
        with `keep_raw` the task keeps the request's own text when it still spells that
        body (nothing was replaced while decoding); `model_concurrency` is the provider's
        limit of tasks in progress per key for this model (`Backend.submit`)."""
        raw = ex.raw if keep_raw and body is None else None
        if raw is not None and not verbatim_json(raw):
            raw = None  # decoding replaced something (U+FFFD): keep the value, not the text
        scenario = self.job_scenario(ex, spec.model, spec.prompt)
        backend = self.backend
        op = ex.operation
        form = self.policy.key_form()  # the key in the family's own form, digested by submit
        key = form(ex.api_key) if form is not None and ex.api_key is not None else ex.api_key
        task = backend.submit(
            family=self.name, operation=op.operation_id, spec=spec,
            request=ex.body if body is None else body, task_id=task_id, api_key=key,
            failure=late, extra=extra, scenario=scenario, raw=raw,
            model_concurrency=model_concurrency,
        )
        entry = ex.entry
        entry.task_id = task.id
        if scenario is not None:
            entry.scenario = scenario.label()
        if late is not None:
            entry.violations.append(late.as_dict())
        return task

    def task(self, ex: Exchange, task_id: str | None = None) -> Task | None:
        """The caller's task of this family named by the request (`ex.task_id`, or
        `task_id`), journaled as what the answer is about; None for an id the family never
        issued and for another key's task (`Backend.find`)."""
        wanted = ex.task_id if task_id is None else task_id
        if not wanted:
            return None
        task = self.backend.find(self.name, wanted, ex.api_key, self.policy.key_form())
        if task is not None:
            ex.entry.task_id = task.id
        return task

    def schedule_webhook(self, task: Task, url: str, *, args: Sequence[Any] = (),
                         policy: RetryPolicy | None = None) -> Webhook:
        """Owe a callback to `url` for `task`: once the task has ended its body is
        `webhook_body(task, *args)` (`args`: plain data, so a shared store's other workers
        render it too), delivered as `policy` says (see `mockserver.core.webhooks`)."""
        return self.backend.webhooks.schedule(
            family=self.name, task_id=task.id, url=url, now=task.submitted_at,
            render=self.webhook_renderer(task, *args), render_args=list(args), policy=policy)

    def webhook_body(self, task: Task, *args: Any) -> dict[str, Any] | None:
        """The body of a webhook owed for `task`, in the family's words, once the task has
        ended (None before). A family that sends webhooks words them here."""
        return None

    def webhook_renderer(self, task: Task, *args: Any) -> Callable[[], dict[str, Any] | None]:
        """`webhook_body(task, *args)` as the outbox calls it: with no arguments."""
        return partial(self.webhook_body, task, *args)

    def base_url(self, ex: Exchange) -> str:
        """Where self-links start: the `public_url` option, else the request's own base URL
        (remembered; providers/hotpath.py). Every result URL and webhook payload is built
        from it."""
        return public_base(ex.request, self.backend.options.public_url)

    def unrouted_response(self, request: Request, status: int,
                          headers: dict[str, str]) -> tuple[Response, str]:
        """The family's answer to a request under its paths that no operation takes (404 for
        an unknown path, 405 for a known path with another method) and the code the journal
        records: by default its policy's `unrouted_codes` in its error envelope."""
        path = request.url.path
        message = (f"no operation at {request.method} {path}" if status == 404
                   else f"{request.method} is not allowed on {path}")
        code = self.policy.unrouted_codes[status]
        return self.error_response(ProviderError(status, code, message, headers=headers)), code

    def error_response(self, err: ProviderError, op: Operation | None = None) -> Response:
        """An error as the family answers it: its status, headers and `Policy.error_body`."""
        return JSONResponse(self.policy.error_body(err, op), status_code=err.status,
                            headers=err.headers or None)


def family_class(name: str) -> type[Family]:
    """The HTTP class serving the family `name` (its `FamilySpec.routes`)."""
    return load_class(spec(name).routes)  # type: ignore[no-any-return]
