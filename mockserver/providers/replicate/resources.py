"""Replicate's reads beside the predictions (contracts/replicate.yaml): models and their
versions, files (upload, get, list, delete), the default webhook secret and the account; and
the cursor pages the lists share. A mixin of the family's HTTP class (routes.py)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from mockserver.core.ids import key_id
from mockserver.errors import ProviderError, Violation
from mockserver.providers.exchange import Exchange
from mockserver.providers.hotpath import json_response
from mockserver.providers.replicate import events, render
from mockserver.providers.replicate.models import Model, openapi_schema
from mockserver.providers.replicate.policy import ReplicatePolicy, problem_error

_FILES = "replicate-files"  # the Backend memo of uploads (decision files)
_FILE_TTL_S = 86400.0  # expires_at: 24 h after the upload (recording file-operations.yaml)
_MAX_FILES = 10_000  # uploads kept per fake: the oldest go first
_COG_VERSION = "0.16.8"
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


class Resources:
    """Handlers for the operations that read or keep something other than a prediction."""

    backend: Any
    name: str
    policy: ReplicatePolicy
    base_url: Callable[[Exchange], str]

    # -- models and versions ---------------------------------------------------------------------
    def _model(self, ex: Exchange) -> Model:
        params = ex.path_params
        model = self.policy.models.get(f"{params['model_owner']}/{params['model_name']}")
        if model is None:
            raise self.policy.not_found()
        return model

    def version_body(self, model: Model) -> dict[str, Any]:
        """A model's one version (decision version-field): its id, when the contract's
        schemas were made, the Cog that publishes them and its OpenAPI schema."""
        return {"id": model.version, "created_at": "2026-01-01T00:00:00.000000Z",
                "cog_version": _COG_VERSION, "openapi_schema": openapi_schema(model)}

    def _listed(self) -> bool:
        return bool(self.backend.options["replicate_versions"] == "listed")

    async def get_model(self, ex: Exchange) -> Response:
        model = self._model(ex)
        runs = sum(1 for t in self.backend.tasks(self.name) if t.spec.model == model.name)
        return json_response({
            "url": f"https://replicate.com/{model.name}", "owner": model.owner,
            "name": model.short, "description": model.operation.raw.get("description", "")
            .split(". Input schema source")[0], "visibility": "public",
            "github_url": None, "paper_url": None, "license_url": None, "run_count": runs,
            "cover_image_url": None, "default_example": None,
            "latest_version": self.version_body(model) if self._listed() else None,
            "is_official": True})

    async def list_model_versions(self, ex: Exchange) -> Response:
        model = self._model(ex)
        if not self._listed():
            raise self.policy.not_found()
        return json_response(render.page([self.version_body(model)], None, None))

    async def get_model_version(self, ex: Exchange) -> Response:
        model = self._model(ex)
        if not self._listed() or ex.path_params["version_id"] != model.version:
            raise self.policy.not_found()
        return json_response(self.version_body(model))

    # -- files -----------------------------------------------------------------------------------
    def _files(self) -> dict[str, dict[str, Any]]:
        """The uploads of this fake: id -> {owner, record}; reset() forgets them."""
        memo = self.backend.memo(_FILES, 1)
        found = memo.get("files")
        if found is None:
            found = memo.put("files", {})
        return found  # type: ignore[no-any-return]

    async def create_file(self, ex: Exchange) -> Response:
        """multipart/form-data: the file in part `content`, optional `metadata` (JSON),
        `filename`, `type` (decision files)."""
        parts = _multipart(ex.headers.get("content-type", ""), ex.raw or b"")
        content = parts.get("content")
        if content is None:
            raise problem_error([Violation("content", "schema:required", 422,
                                           "Input validation failed", "content is required")])
        data, part_name, part_type = content
        metadata: Any = {}
        if "metadata" in parts:
            try:
                metadata = json.loads(parts["metadata"][0] or b"{}")
            except ValueError:
                metadata = None
            if not isinstance(metadata, dict):
                raise problem_error([Violation("metadata", "schema:type", 422,
                                               "Input validation failed",
                                               "Invalid type. Expected: object, given: string")])
        name = _text(parts.get("filename")) or part_name or "file"
        ctype = _text(parts.get("type")) or part_type or "application/octet-stream"
        if len(name.encode("utf-8")) > 255:
            raise problem_error([Violation("filename", "schema:maxLength", 422,
                                           "Input validation failed",
                                           "String length must be less than or equal to 255")])
        now = self.backend.now()
        file_id = self.file_id()
        record = {"id": file_id, "name": name, "content_type": ctype, "size": len(data),
                  "etag": hashlib.md5(data).hexdigest(),  # noqa: S324 - what the API reports
                  "checksums": {"sha256": hashlib.sha256(data).hexdigest(),
                                "md5": hashlib.md5(data).hexdigest()},  # noqa: S324
                  "metadata": metadata, "created_at": render.timestamp(now),
                  "expires_at": render.timestamp(now + _FILE_TTL_S),
                  "urls": {"get": f"{self.base_url(ex).rstrip('/')}/v1/files/{file_id}"}}
        files = self._files()
        if len(files) >= _MAX_FILES:
            files.pop(next(iter(files)))
        files[file_id] = {"owner": key_id(ex.api_key or ""), "at": now, "record": record}
        return json_response(record, 201)

    def file_id(self) -> str:
        """26 lower-case base32 characters (the OAS example `cneqzikepnug6xezperrr4z55o`)."""
        bits = int(self.backend.ids.uuid().replace("-", ""), 16)
        return "".join(_BASE32[(bits >> (5 * i)) & 31] for i in range(25, -1, -1))

    def _own_file(self, ex: Exchange) -> dict[str, Any]:
        found = self._files().get(ex.path_params["file_id"])
        if found is None or found["owner"] != key_id(ex.api_key or "") or (
                self.backend.now() >= found["at"] + _FILE_TTL_S):
            raise ProviderError(404, "Not found", "File not found", envelope="detail")
        return found

    async def get_file(self, ex: Exchange) -> Response:
        return json_response(self._own_file(ex)["record"])

    async def delete_file(self, ex: Exchange) -> Response:
        found = self._own_file(ex)
        self._files().pop(found["record"]["id"], None)
        return Response(status_code=204)

    async def list_files(self, ex: Exchange) -> Response:
        owner, now = key_id(ex.api_key or ""), self.backend.now()
        mine = [f for f in self._files().values()
                if f["owner"] == owner and now < f["at"] + _FILE_TTL_S]
        mine.sort(key=lambda f: (f["at"], f["record"]["id"]), reverse=True)
        query = ex.request.query_params
        page, next_key, prev_key = self.paginate(mine, query.get("cursor"),
                                                 lambda f: (f["at"], f["record"]["id"]))
        own = self.base_url(ex).rstrip("/") + "/v1/files"
        return json_response(render.page([f["record"] for f in page],
                                         self.cursor_url(own, query, next_key),
                                         self.cursor_url(own, query, prev_key)))

    # -- the webhook secret and the account ------------------------------------------------------
    def webhook_secret(self, account: str) -> str:
        return events.secret(self.backend.signer.signature("replicate:webhook-secret", 0),
                             account)

    async def get_default_webhook_secret(self, ex: Exchange) -> Response:
        return json_response({"key": self.webhook_secret(key_id(ex.api_key or ""))})

    async def get_account(self, ex: Exchange) -> Response:
        return json_response({"type": "user", "username": f"wanmock-{key_id(ex.api_key or '')[:8]}",
                              "name": "wanmock user", "github_url": None})

    # -- cursor pages ----------------------------------------------------------------------------
    def paginate(self, items: Sequence[Any], cursor: str | None,
                 key: Callable[[Any], tuple[float, str]]
                 ) -> tuple[list[Any], tuple[str, float, str] | None,
                            tuple[str, float, str] | None]:
        """The page a cursor names of `items` (newest first), and the cursors of the pages
        after and before it: ("n"|"p", time, id) (decision list-pagination)."""
        size = int(self.backend.options["replicate_page_size"])
        start = 0
        if cursor:
            kind, at, ident = _read_cursor(cursor)
            mark = (at, ident)
            if kind == "n":
                start = next((i for i, it in enumerate(items) if key(it) < mark), len(items))
            else:
                end = next((i for i, it in enumerate(items) if key(it) <= mark), len(items))
                start = max(0, end - size)
        page = list(items[start:start + size])
        after = ("n", *key(page[-1])) if page and start + size < len(items) else None
        before = ("p", *key(page[0])) if page and start > 0 else None
        return page, after, before  # type: ignore[return-value]

    @staticmethod
    def cursor_url(base: str, query: Any, mark: tuple[str, float, str] | None) -> str | None:
        if mark is None:
            return None
        token = base64.urlsafe_b64encode(json.dumps(list(mark)).encode()).decode().rstrip("=")
        params = [(k, v) for k, v in query.multi_items() if k != "cursor"]
        return f"{base}?{urlencode([*params, ('cursor', token)])}"


def _read_cursor(cursor: str) -> tuple[str, float, str]:
    try:
        kind, at, ident = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if kind in ("n", "p") and isinstance(at, int | float) and isinstance(ident, str):
            return kind, float(at), ident
    except (ValueError, TypeError, binascii.Error):
        pass
    raise ProviderError(400, "Bad request", "Invalid cursor")


_FORM_FIELDS = ("content", "filename", "type", "metadata")


def _text(part: tuple[bytes, str | None, str | None] | None) -> str:
    if part is None:
        return ""
    return part[0].decode("utf-8", "replace").strip()


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[bytes, str | None, str | None]]:
    """A multipart/form-data body's parts by name: (bytes, filename, content type); an empty
    dict for anything else (decision files)."""
    if "multipart/form-data" not in content_type.lower():
        raise ProviderError(400, "Bad request", "The request must be multipart/form-data")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        raise ProviderError(400, "Bad request", "The multipart body cannot be read")
    out: dict[str, tuple[bytes, str | None, str | None]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        if name in out:
            if name in _FORM_FIELDS:  # one value each in the schema (decision files)
                expected = "object" if name == "metadata" else "string"
                raise problem_error([Violation(name, "schema:type", 422,
                                               "Input validation failed",
                                               f"Invalid type. Expected: {expected}, given: "
                                               "array")])
            continue
        payload = part.get_payload(decode=True)
        filename = part.get_filename()
        ctype = part.get_content_type() if part.get("content-type") else None
        out[name] = (payload if isinstance(payload, bytes) else b"", filename, ctype)
    return out
