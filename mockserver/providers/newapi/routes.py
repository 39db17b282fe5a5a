"""new-api's video relay in front of DashScope (contracts/newapi.yaml; api-facts §2).

`POST /v1/video/generations` and `POST /v1/videos` submit (one implementation);
`GET /v1/video/generations/{task_id}` answers the TaskDto envelope, `GET /v1/videos/{video_id}`
the OpenAI video object and `GET /v1/videos/{video_id}/content` streams the MP4.

Errors come in three shapes (`x-wanmock-envelope`): new-api's TaskError `{code, message,
data: null}`, the OpenAI-shaped middleware error (`auth`: 401, 503 unknown model) and the video
proxy's error without `code` (`content`). A DashScope rule rejected at submit is relayed as
HTTP 400 `fail_to_fetch_task` with the DashScope JSON body as the message string; a rule DashScope
reports asynchronously fails the task ("task failed, code: X , message: Y").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from mockserver.catalogue import JobSpec, ModelEntry, RuleFailure, entry_task
from mockserver.contracts import Operation, get_path
from mockserver.core.backend import Retention
from mockserver.core.tasks import Snapshot, State, Task
from mockserver.errors import ProviderError, Violation
from mockserver.providers.base import headers_of, json_response
from mockserver.providers.dashscope import render as ds_render
from mockserver.providers.newapi import poller, render, wire
from mockserver.providers.newapi.distributor import Distributor
from mockserver.providers.newapi.poller import Row

_ATOI = re.compile(r"^[+-]?\d+$")
BUILD_FAILED = "build_request_failed"
LEGACY_BUILD_FAILED = "convert_to_ali_request_failed"
# Where new-api's Ali adaptor takes the first frame from, in order (api-facts §2.8).
_IMAGE_PATHS = ("image", "images.0", "input_reference")


def _precedence(violation: Violation) -> int:
    """The order new-api meets problems: JSON decoding, the model (distributor), the prompt
    (validator), the request conversion, then DashScope itself."""
    if violation.code == "invalid_json":
        return 0
    if violation.code == "missing_model" or violation.wrap == "distributor":
        return 1
    if violation.rule == "model_known":
        return 2
    if violation.code == "invalid_request" and violation.field == "prompt":
        return 3
    if violation.code in (BUILD_FAILED, LEGACY_BUILD_FAILED):
        return 4
    return 5


def _first_image(body: Mapping[str, Any]) -> str | None:
    for path in _IMAGE_PATHS:
        value = get_path(body, path)
        if isinstance(value, str) and value:
            return value
    return None


def _kf2v_frames(body: Mapping[str, Any], fields: dict[str, Any], sources: dict[str, str]
                 ) -> None:
    """What DashScope's kf2v task reads of new-api's Ali body: `input.first_frame_url` and
    `input.last_frame_url`, which only metadata fills (nested `input` over the flat keys);
    `input.img_url` (from image, images, input_reference) is not read there."""
    for name in ("img_url", "last_frame_url"):
        fields.pop(name, None)
        sources.pop(name, None)
    for name, target in (("first_frame_url", "img_url"), ("last_frame_url", "last_frame_url")):
        for path in (f"metadata.input.{name}", f"metadata.{name}"):
            value = get_path(body, path)
            if isinstance(value, str) and value:
                fields[target] = value
                sources[target] = path
                break


def _norm_key(key: str) -> str:
    return key.removeprefix("sk-")


class NewApi(Distributor):
    """new-api's task relay with the Ali (DashScope) adaptor."""

    name = "newapi"
    # new-api keeps its task rows; the relayed DashScope URL is valid 24 h after the task ended.
    retention = Retention(task_s=None, url_s=86400.0)
    # new-api's task errors are snake_case (decision unknown-route).
    unrouted_codes = {404: "not_found", 405: "method_not_allowed"}

    # -- words --------------------------------------------------------------------------------
    def request_id(self) -> str:
        """new-api's request id: local time, nanoseconds and 8 random characters."""
        now = self.backend.now()
        stamp = datetime.fromtimestamp(now, ds_render.BEIJING).strftime("%Y%m%d%H%M%S")
        return f"{stamp}{int((now % 1) * 1e9)}{self.backend.ids.token(8)}"

    # -- errors ------------------------------------------------------------------------------
    def auth_error(self, kind: str) -> ProviderError:
        if kind == "missing":
            return ProviderError(401, "", self._words("未提供令牌", "No token provided"),
                                 envelope="auth")
        return ProviderError(401, "", self._words("无效的令牌", "Invalid token"), envelope="auth")

    def body_error(self, kind: str, op: Operation) -> ProviderError:
        if kind == "too_large" and op.role == "submit":
            # common.GetRequestBody's limit, met first by the distributor (common/gin.go)
            limit_mb = max(1, self.backend.options.body_limit >> 20)
            return self.distributor_error(
                None,  # the request is not at hand here: the option decides the language
                f"request body exceeds {limit_mb} MB: request body too large")
        messages = {
            "empty": "unexpected end of JSON input",
            "too_large": "http: request body too large",
        }
        return ProviderError(400, "invalid_json",
                             messages.get(kind, "invalid character looking for beginning of value"))

    def internal_error(self) -> ProviderError:
        return ProviderError(500, "internal_error", "internal error")

    def build_error(self, message: str, field: str, value: Any = None) -> Violation:
        """A request-conversion error: 500 `build_request_failed` "convert_to_ali_request_failed:
        <reason>" (latest relay_task.go), legacy 500 `convert_to_ali_request_failed` "<reason>";
        `newapi_build_error_status=400` makes it a 400."""
        status = self.backend.options["newapi_build_error_status"]
        if self.backend.options["newapi_version"] == "legacy":
            return Violation(field=field, rule="build_request", status=status,
                             code=LEGACY_BUILD_FAILED, message=message, value=value)
        return Violation(field=field, rule="build_request", status=status, code=BUILD_FAILED,
                         message=f"{LEGACY_BUILD_FAILED}: {message}", value=value)

    def violation_error(self, violation: Violation, op: Operation) -> ProviderError:
        report = op.rules.get(violation.rule) or {}
        if violation.code in (BUILD_FAILED, LEGACY_BUILD_FAILED):
            return ProviderError(violation.status, violation.code, violation.message,
                                 violation=violation)
        if violation.wrap == "distributor":
            return self.distributor_error(None, None)
        if violation.wrap == "distributor_body":
            return self.distributor_error(None, violation.message)
        if violation.rule == "model_known" or violation.wrap == "no_channel":
            model = violation.value if isinstance(violation.value, str) else ""
            message = self._words(violation.message,
                                  f"No available channel for model {model} under group default")
            return ProviderError(violation.status, violation.code, message,
                                 envelope=str(report.get("envelope", "auth")), violation=violation)
        if violation.wrap == "fail_to_fetch_task" or violation.code[:1].isupper():
            # DashScope answered 4xx; new-api relays its body as text (api-facts §2.9).
            text = render.upstream_error_message(violation.code, violation.message,
                                                 self.backend.ids.uuid())
            return ProviderError(violation.status, "fail_to_fetch_task", text,
                                 violation=violation)
        return ProviderError.from_violation(violation)

    def error_response(self, err: ProviderError, op: Operation | None = None) -> Response:
        envelope = err.envelope
        if envelope == "default" and op is not None:
            envelope = op.envelope_kind
        body = self.contract.render_error(err.status, err.code, err.message, envelope=envelope,
                                          request_id=self.request_id())
        if envelope == "content" and err.status >= 500:
            body["error"]["type"] = "server_error"
        return JSONResponse(body, status_code=err.status, headers=err.headers or None)

    # -- request pipeline ---------------------------------------------------------------------
    def _authenticate(self, request: Request) -> str:
        """new-api's TokenAuth: `Bearer sk-…`, also without `Bearer ` and without `sk-`."""
        key = request.headers.get("authorization", "").strip()
        if key[:7].lower() == "bearer ":
            key = key[7:].strip()
        elif key.lower() == "bearer":
            key = ""
        if not key:
            raise self.auth_error("missing")
        allowed = self.backend.options.api_keys
        if allowed and not {key, f"sk-{key}", key.removeprefix("sk-")} & allowed:
            raise self.auth_error("invalid")
        return key

    def judge(self, op: Operation, body: Any, headers: Mapping[str, str] | None = None
              ) -> tuple[JobSpec | None, list[Violation]]:
        """new-api's checks in its order, then DashScope's rules on the converted request."""
        opts = self.backend.options
        catalogue = self.contract.catalogue
        problems = op.schema_violations(body)
        if opts["newapi_drop_shot_type"]:
            problems = [v for v in problems if not v.field.endswith("shot_type")]
        if not isinstance(body, Mapping):
            if problems:
                return None, problems
            err = self.body_error("not_json", op)
            return None, [Violation("", "body:not_json", err.status, err.code, err.message)]
        model = body.get("model")
        entry = catalogue.entry(self.name, model) if isinstance(model, str) else None
        kf2v = self._kf2v_entry(model) if entry is None else None
        if isinstance(model, str) and model.strip() and entry is None and kf2v is None:
            failure = RuleFailure("model_known", "model", model, None, model)
            problems.append(op.rule_violation(failure, {"model": "model"}, "submit"))
        if kf2v is not None and opts["newapi_kf2v_route"] == "video-generation":
            problems.append(self._kf2v_upstream_refusal(str(model)))
        entry = entry or kf2v
        if entry is not None:
            problems.extend(self._conversion_errors(entry, body))
        if problems:
            problems.sort(key=_precedence)
            return None, problems
        assert entry is not None  # a schema-valid body has a string model
        fields, sources = op.extract(body)
        self._convert(entry, body, fields, sources)
        strict = self.backend.options["dashscope_r2v_prompt_over"] == "reject"
        if kf2v is not None:
            _kf2v_frames(body, fields, sources)
            spec, failures = catalogue.evaluate("dashscope", fields, task="image2video",
                                                strict_prompts=strict)
        else:
            spec, failures = catalogue.evaluate(self.name, fields, strict_prompts=strict)
        timing = self.backend.rule_timing()
        violations = [op.rule_violation(f, sources, timing) for f in failures]
        violations.sort(key=lambda v: v.timing != "submit")
        return spec, violations

    def _kf2v_entry(self, model: Any) -> ModelEntry | None:
        """A DashScope first-and-last-frame model: new-api's Ali adaptor relays it (its
        AliVideoInput has first_frame_url/last_frame_url; its ratio table lists
        wan2.2-kf2v-flash)."""
        if not isinstance(model, str) or "kf2v" not in model:
            return None
        entry = self.contract.catalogue.entry("dashscope", model)
        return entry if entry is not None and entry_task(entry) == "image2video" else None

    def _kf2v_upstream_refusal(self, model: str) -> Violation:
        """new-api posts every Ali job to /video-generation/ (BuildRequestURL); DashScope serves
        kf2v models only on /image2video/ and answers its unknown-model 400 (dashscope.yaml
        decision kf2v), which new-api relays as fail_to_fetch_task."""
        ds_op = self.backend.contracts["dashscope"].operation("createVideoSynthesis")
        refusal = ds_op.rule_violation(RuleFailure("model_known", "model", model, None, model),
                                       {"model": "model"}, "submit")
        return Violation("model", "kf2v_path", refusal.status, refusal.code, refusal.message,
                         value=model, wrap="fail_to_fetch_task")

    def _conversion_errors(self, entry: ModelEntry, body: Mapping[str, Any]) -> list[Violation]:
        """What the Ali adaptor refuses while building the DashScope body (api-facts §2.8)."""
        out = []
        model = entry.model
        metadata = body.get("metadata")
        if isinstance(metadata, Mapping) and "model" in metadata and metadata["model"] != model:
            out.append(self.build_error("can't change model with metadata", "metadata.model",
                                        metadata["model"]))
        size = body.get("size")
        if isinstance(size, str) and size and "*" not in size and "t2v" in model:
            out.append(self.build_error(f"invalid size: {size}, example: 1920*1080", "size", size))
        if entry.protocol == "wan27" and entry.mode == "i2v":
            media = get_path(body, "metadata.input.media")
            flat = get_path(body, "metadata.media")
            if not _first_image(body) and not (isinstance(media, list) and media) and not (
                isinstance(flat, list) and flat
            ):
                out.append(self.build_error(
                    "wan2.7-i2v requires image, images, input_reference, or input.media",
                    "image", None))
        return out

    def _convert(
        self, entry: ModelEntry, body: Mapping[str, Any], fields: dict[str, Any],
        sources: dict[str, str],
    ) -> None:
        """Post-process the neutral fields the way new-api builds the DashScope request."""
        opts = self.backend.options
        size = body.get("size")
        if isinstance(size, str) and size and "*" not in size:
            # Without `*` the size is a tier: upper-cased, `P` appended, sent as resolution.
            if sources.get("size") == "size":
                fields.pop("size", None)
                sources.pop("size", None)
            tier = size.strip().upper()
            if "resolution" not in fields:
                fields["resolution"] = tier if tier.endswith("P") else tier + "P"
                sources["resolution"] = "size"
        if sources.get("duration") in ("duration", "seconds"):
            value = fields["duration"]
            if isinstance(value, str):  # `seconds` goes through atoi; junk reads as 0
                value = int(value) if _ATOI.match(value) else 0
            if value:
                fields["duration"] = value
            else:  # Go's zero value: absent, new-api sends its default
                fields.pop("duration")
                sources.pop("duration")
        if fields.get("seed") == -1 and sources.get("seed") == "extra_body.seed":
            fields.pop("seed")
            sources.pop("seed")
        fields.setdefault("prompt_extend", True)
        if opts["newapi_drop_shot_type"]:
            fields.pop("shot_type", None)
        if entry.mode == "r2v":
            if sources.get("img_url") in _IMAGE_PATHS:
                fields.pop("img_url", None)
                sources.pop("img_url", None)
        else:
            for name in ("reference_images", "reference_videos"):
                fields.pop(name, None)
                sources.pop(name, None)
        if entry.protocol == "wan27" and entry.mode == "i2v" and "media" not in fields:
            first = _first_image(body)
            if first:
                media = [{"type": "first_frame", "url": first}]
                images = body.get("images")
                if isinstance(images, list) and len(images) > 1 and isinstance(images[1], str):
                    media.append({"type": "last_frame", "url": images[1]})
                if isinstance(fields.get("audio_url"), str) and fields["audio_url"]:
                    media.append({"type": "driving_audio", "url": fields["audio_url"]})
                fields["media"] = media
                sources["media"] = "images"
                fields.pop("img_url", None)

    # -- handlers ----------------------------------------------------------------------------
    async def create_video_generation(
        self, request: Request, op: Operation, raw: bytes
    ) -> Response:
        return self._create(request, op, raw)

    async def create_video(self, request: Request, op: Operation, raw: bytes) -> Response:
        return self._create(request, op, raw)

    def _create(self, request: Request, op: Operation, raw: bytes) -> Response:
        key = self.authenticate(request)
        body, form = self.read_submit(request, op, raw)
        spec, late = self.settle(op, *self.judge(op, body))
        ids = self.backend.ids
        public = self.backend.options["newapi_id_style"] == "public"
        video_id = "task_" + ids.token(32) if public else ""
        upstream_id = ids.uuid()
        stored = body
        if form is not None:
            # The Ali relay drops file parts; the task keeps every value and each file.
            stored = {**body, "_wanmock_form": {
                "values": form.values, "files": [part.record() for part in form.files]}}
        task = self.submit(
            request, op, stored, spec, late, task_id=video_id or upstream_id, api_key=key,
            extra={"upstream_id": upstream_id, "request_id": ids.uuid()},
            raw=raw if form is None and wire.kind_of(
                headers_of(request).get("content-type", "")) == "json" else None,
        )
        if public:
            # The upstream id is what DashScope itself knows the task by.
            self.backend.store.alias("dashscope", upstream_id, task)
        return json_response(render.submit_body(
            task, video_id=task.id, with_task_id=public, created_at=task.submitted_at))

    def find(self, request: Request, task_id: str, key: str) -> Task | None:
        """The caller's task; another family's or another user's is not there (api-facts §2.4)."""
        task = self.backend.find(self.name, task_id, key, normalize=_norm_key)
        if task is None:
            return None
        self.note_task(request, task)
        return task

    def _url(self, request: Request, task: Task, state: State, snap: Snapshot) -> str | None:
        if state is not State.SUCCEEDED:
            return None
        return self.backend.video_url(self.base_url(request), task, snap)

    def row(self, task: Task, *, poll: bool = False) -> Row:
        """The task as new-api's row shows it: the upstream state at the poller's last tick."""
        backend = self.backend
        opts = backend.options
        now = backend.view(task, poll=poll)
        every = poller.interval(opts.timing, opts.mode, opts["newapi_poll_interval"])
        retention = backend.task_retention(task)
        return poller.row(now, lambda t: backend.lifecycle.view(task, t, retention=retention),
                          every)

    def _polled(self, request: Request, task_id: str) -> tuple[Task, Row]:
        """The caller's task as a poll sees it, or new-api's 400 `task_not_exist` (§2.4)."""
        task = self.find(request, task_id, self.authenticate(request))
        if task is None:
            raise ProviderError(400, "task_not_exist", "task_not_exist")
        return task, self.row(task, poll=True)

    async def get_video_generation(self, request: Request, op: Operation, raw: bytes) -> Response:
        task, row = self._polled(request, request.path_params["task_id"])
        snap = row.snap
        url = None if row.not_started else self._url(request, task, snap.state, snap)
        upstream_id = task.extra.get("upstream_id", task.id)
        if row.not_started:  # `data` is still DashScope's answer to the submit
            upstream: dict[str, Any] = {
                "request_id": task.extra.get("request_id", ""),
                "output": {"task_id": upstream_id, "task_status": "PENDING"}}
        else:
            opts = self.backend.options
            upstream = ds_render.task_body(
                task, snap, url, self.backend.ids.uuid(), task_id=upstream_id,
                wan27_actual_prompt=opts["dashscope_actual_prompt_wan27"],
                usage_sr=opts["dashscope_usage_sr"])
        dto = render.task_dto(task, row, task_id=task.id, upstream=upstream, video_url=url,
                              url_in_fail_reason=self.backend.options["newapi_url_in_fail_reason"])
        return json_response(render.task_response(dto))

    async def get_video(self, request: Request, op: Operation, raw: bytes) -> Response:
        task, row = self._polled(request, request.path_params["video_id"])
        opts = self.backend.options
        url = None if row.not_started else self._url(request, task, row.snap.state, row.snap)
        return json_response(render.openai_video(
            task, row, video_id=task.id, with_task_id=opts["newapi_id_style"] == "public",
            video_url=url, completed_at_always=opts["newapi_completed_at_always"],
        ))

    async def get_video_content(self, request: Request, op: Operation, raw: bytes) -> Response:
        key = self.authenticate(request)
        video_id = request.path_params["video_id"].strip()
        if not video_id:
            raise ProviderError(400, "invalid_request_error", "task_id is required",
                                envelope="content")
        task = self.find(request, video_id, key)
        if task is None:
            raise ProviderError(404, "not_found", "Task not found", envelope="content")
        # The proxy reads new-api's own row; it does not poll the upstream.
        row = self.row(task)
        status = render.row_status(row)
        if status != "SUCCESS":
            raise ProviderError(
                400, "invalid_request_error",
                f"Task is not completed yet, current status: {status}",
                envelope="content",
            )
        path = await anyio.to_thread.run_sync(self.backend.video_path, task)
        return FileResponse(path, media_type="video/mp4")
