"""The wan-video models as the contract describes them (no Starlette): one submit operation
per model (`POST /v1/models/<owner>/<name>/predictions`), its input schema, and its version id
(the enums of createPrediction's `version` branches: one `anyOf` branch per model, decision
version-ids). Read once per contract; everything here is plain OpenAPI, no `x-wanmock-*` key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from mockserver.contracts import Contract, Operation

_MODEL_PATH = re.compile(r"^/v1/models/([^/{}]+)/([^/{}]+)/predictions$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
# Where a model that takes frames rather than seconds reads them (decision frames-duration):
# (frames field, frames-per-second field or None for 16 fps).
_FRAMES = (("num_frames", "frames_per_second"), ("frame_num", None))


@dataclass(frozen=True)
class Model:
    """One model the fake serves: `owner/name`, its submit operation, version and schema."""

    name: str
    operation: Operation
    version: str
    input_schema: Mapping[str, Any]

    @property
    def owner(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def short(self) -> str:
        return self.name.split("/", 1)[1]

    def duration_of(self, inputs: Any) -> int | None:
        """The video's seconds for a model that takes frames (frames / fps, rounded, at least
        1); None for a model that takes seconds or none."""
        props = self.input_schema.get("properties") or {}
        for frames_field, fps_field in _FRAMES:
            if frames_field not in props:
                continue
            given = inputs if isinstance(inputs, Mapping) else {}
            frames = given.get(frames_field, props[frames_field].get("default", 81))
            fps = 16
            if fps_field is not None and fps_field in props:
                fps = given.get(fps_field, props[fps_field].get("default", 16))
            if isinstance(frames, int) and isinstance(fps, int) and fps > 0:
                return max(1, round(frames / fps))
        return None

    def steps(self) -> int:
        """The sampling steps its logs count (its `sample_steps` default, else 8 for a fast
        model and 30 for the others)."""
        props = self.input_schema.get("properties") or {}
        steps = (props.get("sample_steps") or {}).get("default")
        if isinstance(steps, int) and steps > 0:
            return steps
        return 8 if "fast" in self.short else 30


class Models:
    """Every model of a contract, found by name or by any spelling of its version."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract

    @cached_property
    def by_name(self) -> dict[str, Model]:
        document = self.contract.document
        versions = self._versions()
        out: dict[str, Model] = {}
        for op in self.contract.by_role("submit"):
            found = _MODEL_PATH.match(op.path)
            if found is None:
                continue
            name = f"{found.group(1)}/{found.group(2)}"
            schema = _resolve(document, _input_ref(op.raw))
            out[name] = Model(name, op, versions.get(name, ""), schema)
        return out

    @cached_property
    def by_version(self) -> dict[str, Model]:
        return {m.version: m for m in self.by_name.values() if m.version}

    def _versions(self) -> dict[str, str]:
        """model name -> 64-hex id, from createPrediction's `version` branches."""
        op = self.contract.operations.get("createPrediction")
        schema = ((op.raw.get("requestBody") or {}).get("content") or {}).get(
            "application/json", {}).get("schema", {}) if op is not None else {}
        out: dict[str, str] = {}
        for branch in schema.get("anyOf") or []:
            names = ((branch.get("properties") or {}).get("version") or {}).get("enum") or []
            plain = [n for n in names if isinstance(n, str) and "/" in n and ":" not in n]
            ids = [n for n in names if isinstance(n, str) and _HEX.match(n)]
            if plain and ids:
                out[plain[0]] = ids[0]
        return out

    def get(self, name: str) -> Model | None:
        return self.by_name.get(name)

    def resolve(self, version: Any) -> Model | None:
        """The model a `version` names: `owner/name` (official models), `owner/name:<id>` or
        the 64-hex id alone (OAS schemas_version_prediction_request); None if none."""
        if not isinstance(version, str):
            return None
        name, sep, ident = version.partition(":")
        if sep:
            model = self.by_name.get(name)
            return model if model is not None and model.version == ident else None
        return self.by_name.get(version) or self.by_version.get(version)


def _input_ref(raw: Mapping[str, Any]) -> str:
    schema = raw["requestBody"]["content"]["application/json"]["schema"]
    return str(schema["properties"]["input"]["$ref"])


def _resolve(document: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node  # type: ignore[no-any-return]


def openapi_schema(model: Model) -> dict[str, Any]:
    """The version's `openapi_schema` as Cog publishes it: Input from the contract, Output one
    URI (replicate.run reads Output to tell iterator models apart, replicate/run.py:170-178)."""
    return {"openapi": "3.0.2", "info": {"title": "Cog", "version": "0.1.0"}, "paths": {},
            "components": {"schemas": {"Input": dict(model.input_schema),
                                       "Output": {"type": "string", "format": "uri",
                                                  "title": "Output"}}}}
