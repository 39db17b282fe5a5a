"""Loading: read `contracts/<family>.yaml` and the catalogue once per directory.

Each document is validated with openapi-spec-validator, its operations indexed by `operationId`
and their JSON Schema validators (and compiled fast-path validators) built once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mockserver import yamlio
from mockserver.catalogue import Catalogue
from mockserver.contracts import extensions as ext
from mockserver.contracts.compiled import compile_fast_registry, compile_fast_validator
from mockserver.contracts.model import Contract, ContractSet, Operation
from mockserver.contracts.schema import deref, escape_pointer, schema_validator
from mockserver.contracts.templates import ErrorMapping
from mockserver.errors import ContractError

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def contracts_dir() -> Path:
    """Where the contracts live: $WANMOCK_CONTRACTS, the installed copy, or the source tree."""
    env = os.environ.get("WANMOCK_CONTRACTS")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parent.parent  # mockserver/
    installed = package / "_contracts"
    if installed.is_dir():
        return installed
    return package.parent / "contracts"


def validate_document(document: Mapping[str, Any], path: Path | str = "<contract>") -> None:
    """Raise `ContractError` unless the document is valid OpenAPI (openapi-spec-validator)."""
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    try:
        validate(document)  # type: ignore[arg-type]
    except OpenAPIValidationError as exc:
        raise ContractError(f"{path}: not valid OpenAPI: {exc}") from exc


def _build_operations(
    family: str, document: Mapping[str, Any], registry: Registry, base: str
) -> dict[str, Operation]:
    ops: dict[str, Operation] = {}
    registry_rs = compile_fast_registry(base, document)
    for path, item in (document.get("paths") or {}).items():
        shared_params = item.get("parameters") or []
        for method in HTTP_METHODS:
            raw = item.get(method)
            if raw is None:
                continue
            op_id = raw.get("operationId")
            if not op_id:
                raise ContractError(f"{family}: {method.upper()} {path} has no operationId")
            if op_id in ops:
                raise ContractError(f"{family}: duplicate operationId {op_id!r}")
            pointer = "/paths/" + escape_pointer(path) + "/" + method
            body_validator = None
            content = ((raw.get("requestBody") or {}).get("content") or {})
            if "application/json" in content and "schema" in content["application/json"]:
                ref = f"{base}#{pointer}/requestBody/content/application~1json/schema"
                body_validator = schema_validator(
                    document, content["application/json"]["schema"], ref, registry)
            responses: dict[str, Draft202012Validator] = {}
            for status, resp in (raw.get("responses") or {}).items():
                resp = deref(document, resp)
                media = ((resp.get("content") or {}).get("application/json") or {})
                if "schema" in media:
                    ref = (
                        f"{base}#{pointer}/responses/{escape_pointer(str(status))}"
                        if "$ref" not in raw["responses"][status]
                        else f"{base}{raw['responses'][status]['$ref']}"
                    )
                    responses[str(status)] = schema_validator(
                        document, media["schema"], f"{ref}/content/application~1json/schema",
                        registry)
            fast_validator = None
            if body_validator is not None and registry_rs is not None:
                fast_validator = compile_fast_validator(
                    registry_rs, f"{base}#{pointer}/requestBody/content/application~1json/schema")
            errors = [
                ErrorMapping(
                    status=int(e["status"]),
                    code=str(e["code"]),
                    message=str(e.get("message", "{detail}")),
                    field=e.get("field"),
                    keyword=(tuple(e["keyword"]) if isinstance(e.get("keyword"), list)
                             else e.get("keyword")),
                    wrap=e.get("wrap"),
                )
                for e in raw.get(ext.ERRORS) or []
            ]
            ops[op_id] = Operation(
                family=family,
                operation_id=op_id,
                method=method.upper(),
                path=path,
                role=str(raw.get(ext.ROLE, "")),
                raw=raw,
                body_validator=body_validator,
                parameters=[deref(document, p)
                            for p in [*shared_params, *(raw.get("parameters") or [])]],
                errors=errors,
                rules=dict(raw.get(ext.RULES) or {}),
                spec_map=dict(raw.get(ext.SPEC) or {}),
                response_validators=responses,
                fast_validator=fast_validator,
                document=document,
                envelope=raw.get(ext.ENVELOPE),
                envelope_kind=str(raw.get(ext.ENVELOPE_KIND, "default")),
                task_type=str(raw.get(ext.TASK_TYPE, "")),
            )
    return ops



def validated_cache() -> Path | None:
    """Where the digests of contract files found valid OpenAPI are kept: $WANMOCK_CACHE_DIR,
    else `wanmock/` in $XDG_CACHE_HOME or ~/.cache; None when no such directory can be named."""
    env = os.environ.get("WANMOCK_CACHE_DIR")
    if env:
        return Path(env) / "validated"
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        home = os.path.expanduser("~")
        if home == "~":
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "wanmock" / "validated"


def _validation_key(text: bytes) -> str:
    """A file's contents and the validator's version: the same pair, the same verdict."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        validator = version("openapi-spec-validator")
    except PackageNotFoundError:  # pragma: no cover - a dependency
        validator = "?"
    return hashlib.sha256(validator.encode() + b"\0" + text).hexdigest()


def validate_once(document: Mapping[str, Any], path: Path, text: bytes) -> None:
    """`validate_document`, skipped for a file whose exact bytes were found valid before by
    the same openapi-spec-validator (about 0.4 s per contract on every start of a fake). A
    verdict is kept only for a valid file; a cache that cannot be read or written is no cache."""
    cache = validated_cache()
    key = _validation_key(text)
    if cache is not None and (cache / key).is_file():
        return
    validate_document(document, path)
    if cache is not None:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            (cache / key).write_text(f"{path.name}\n", encoding="utf-8")
        except OSError:
            pass


def load_contract(path: Path, catalogue: Catalogue, *, validate: bool = True) -> Contract:
    text = path.read_bytes()
    document = yamlio.safe_load(text)
    family = path.stem
    if not isinstance(document, Mapping):
        raise ContractError(f"{path}: not a YAML mapping")
    if validate:
        validate_once(document, path, text)
    declared = ext.family_of(document)
    if declared is not None and declared != family:
        raise ContractError(f"{path}: x-wanmock-family {declared!r} differs from file name")
    base = f"urn:wanmock:contract:{family}"
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource(base, resource)
    operations = _build_operations(family, document, registry, base)
    return Contract(family, path, document, operations, catalogue)


@lru_cache(maxsize=8)
def _load_cached(directory: Path, validate: bool) -> ContractSet:
    catalogue = Catalogue.load(directory / "catalogue.yaml")
    contracts = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.stem == "catalogue":
            continue
        contracts[path.stem] = load_contract(path, catalogue, validate=validate)
    if not contracts:
        raise ContractError(f"no contracts in {directory}")
    return ContractSet(directory, contracts, catalogue)


def load(directory: Path | str | None = None, *, validate: bool = True) -> ContractSet:
    """Load (once per directory) every contract and the catalogue."""
    return _load_cached(Path(directory or contracts_dir()).resolve(), validate)
