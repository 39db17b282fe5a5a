"""The contract layer: contracts, fixtures, catalogue rules and the violations they produce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mockserver.catalogue import Catalogue, entry_task
from mockserver.contracts import contracts_dir, load, validate_document
from mockserver.errors import ContractError
from mockserver.families import bundled_names
from mockserver.images import SAMPLE_PNG_DATA_URI
from mockserver.providers.base import family_class
from mockserver.providers.policy import Judging, policy_class

FAMILIES = bundled_names()

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_files():
    for family in FAMILIES:
        for path in sorted((FIXTURES / family).glob("*.json")):
            yield pytest.param(family, path, id=f"{family}/{path.name}")


def test_every_family_has_a_contract(contract_set):
    assert sorted(contract_set.contracts) == sorted(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_contract_is_valid_openapi_31(contract_set, family):
    document = contract_set[family].document
    assert document["openapi"].startswith("3.1")
    validate_document(document)  # raises ContractError when invalid
    assert document["x-wanmock-family"] == family


def test_invalid_document_is_rejected():
    with pytest.raises(ContractError, match="not valid OpenAPI"):
        validate_document({"openapi": "3.1.0", "info": {"title": "x"}, "paths": {"/a": {"get": 5}}})


@pytest.mark.parametrize("family", FAMILIES)
def test_every_operation_has_id_role_and_handler(contract_set, family):
    contract = contract_set[family]
    cls = family_class(family)
    for path, item in contract.document["paths"].items():
        for method, raw in item.items():
            if method not in ("get", "post", "put", "delete", "patch", "head"):
                continue
            assert raw.get("operationId"), f"{method} {path} lacks operationId"
            assert raw.get("x-wanmock-role") in ("submit", "query", "cancel", "list", "content",
                                                 "sync")
            op = contract.operation(raw["operationId"])
            assert hasattr(cls, cls.handler_of(op)), raw["operationId"]


@pytest.mark.parametrize("family", FAMILIES)
def test_submit_operations_link_to_a_query(contract_set, family):
    contract = contract_set[family]
    queries = {op.operation_id for op in contract.operations.values() if op.role == "query"}
    for op in contract.by_role("submit"):
        # the first 2xx: 200 mostly, 201 where the provider creates (Replicate)
        ok = next(status for status in sorted(op.raw["responses"]) if status.startswith("2"))
        links = op.raw["responses"][ok].get("links") or {}
        targets = {link.get("operationId") for link in links.values()}
        assert targets & queries, f"{op.operation_id} links to no query operation"
        assert op.raw.get("x-wanmock-spec"), op.operation_id
        assert op.raw.get("x-wanmock-errors"), op.operation_id


@pytest.mark.parametrize("family", FAMILIES)
def test_disagreements_are_recorded(contract_set, family):
    decisions = contract_set[family].decisions
    assert decisions, family
    for decision in decisions:
        assert decision.topic and decision.chosen and decision.source, decision


@pytest.mark.parametrize("family", FAMILIES)
def test_query_operations_show_every_state_as_named_examples(contract_set, family):
    words = {
        "dashscope": {"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"},
        "newapi": {"QUEUED", "IN_PROGRESS", "SUCCESS", "FAILURE"},
        "jiekou": {"TASK_STATUS_QUEUED", "TASK_STATUS_PROCESSING", "TASK_STATUS_SUCCEED",
                   "TASK_STATUS_FAILED"},
        "apiyi": {"submitted", "in_progress", "completed", "failed"},
        "fal": {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"},
        "replicate": {"starting", "processing", "succeeded", "failed", "canceled", "aborted"},
        "openrouter": {"pending", "in_progress", "completed", "failed", "cancelled", "expired"},
    }[family]
    # examples may sit in components and be $ref'd from the query operations
    text = json.dumps(contract_set[family].document)
    missing = {w for w in words if f'"{w}"' not in text}
    assert not missing, missing


@pytest.mark.parametrize(("family", "path"), list(fixture_files()))
def test_fixture_validates_against_its_schema(contract_set, family, path):
    op_id, kind, *rest = path.name[: -len(".json")].split(".")
    op = contract_set[family].operation(op_id)
    data = json.loads(path.read_text(encoding="utf-8"))
    if kind == "request":
        assert op.schema_violations(data) == []
    else:
        status = rest[0]
        validator = op.response_validators[status]
        errors = [e.message for e in validator.iter_errors(data)]
        assert errors == []


def test_every_family_has_request_and_response_fixtures():
    for family in FAMILIES:
        names = [p.name for p in (FIXTURES / family).glob("*.json")]
        assert any(".request." in n for n in names), family
        assert any(".response.200." in n for n in names), family


def test_seed_examples_are_kept_verbatim_as_fixtures():
    name = "createVideoSynthesis.response.200.seed004_pending.json"
    seed004 = json.loads((FIXTURES / "apiyi" / name).read_text(encoding="utf-8"))
    assert seed004 == {"output": {"task_id": "c2e7570c-0af2-4eba-919f-3af3d1164a38",
                                  "task_status": "PENDING"},
                       "request_id": "a23b81b0-0c05-9972-a6c9-ee757400afdb"}
    texts = "".join(p.read_text(encoding="utf-8") for f in FAMILIES
                    for p in (FIXTURES / f).glob("*.json"))
    # seed 002's failure text, seed 001's alias, seed 000's LoRA example
    for needle in ("task failed, code: InvalidParameter , message: image_url must provided",
                   "wan2.6-r2v-flash-720p-audio", "Remade-AI/Cyberpunk"):
        assert needle in texts, needle


# -- the catalogue ------------------------------------------------------------------------------

SEED_AND_MATRIX_MODELS = {
    "dashscope": ["wan2.6-t2v", "wan2.6-t2v-us", "wan2.5-t2v-preview", "wan2.2-t2v-plus",
                  "wanx2.1-t2v-turbo", "wanx2.1-t2v-plus", "wan2.6-i2v-flash", "wan2.6-i2v",
                  "wan2.6-i2v-us", "wan2.5-i2v-preview", "wan2.2-i2v-flash", "wan2.2-i2v-plus",
                  "wanx2.1-i2v-turbo", "wanx2.1-i2v-plus", "wan2.6-r2v", "wan2.6-r2v-flash",
                  "wan2.7-t2v", "wan2.7-i2v", "wan2.7-r2v", "wan2.7-t2v-2026-04-25"],
    "apiyi": ["wan2.7-t2v"],
    "newapi": ["wan2.5-t2v-preview", "wan2.6-t2v", "wan2.6-i2v", "wan2.7-i2v", "wan2.7-r2v"],
    "jiekou": ["wan2.1-t2v", "wan2.6-i2v"],
    "fal": ["wan2.1-t2v", "wan2.1-i2v", "wan2.2-t2v", "wan2.5-t2v-preview", "wan2.6-t2v",
            "wan2.6-i2v", "wan2.6-r2v", "wan2.7-t2v"],
    "replicate": ["wan-video/wan-2.2-t2v-fast", "wan-video/wan-2.2-i2v-fast",
                  "wan-video/wan-2.5-t2v", "wan-video/wan-2.5-i2v", "wan-video/wan-2.6-t2v"],
    "openrouter": ["alibaba/wan-2.6", "alibaba/wan-2.7", "alibaba/wan-3.0",
                   "alibaba/wan-3.0-prime"],
}


@pytest.mark.parametrize("family", FAMILIES)
def test_catalogue_covers_seed_and_matrix_models(contract_set, family):
    catalogue = contract_set.catalogue
    for model in SEED_AND_MATRIX_MODELS[family]:
        entry = catalogue.entry(family, model)
        assert entry is not None, (family, model)
        assert entry.mode in ("t2v", "i2v", "r2v")
        assert catalogue.durations(entry), model
        assert catalogue.sizes(entry) or catalogue.resolutions(entry) or entry.get("pairs")


def test_catalogue_family_overrides(contract_set):
    catalogue = contract_set.catalogue
    # wan2.7-t2v default resolution: official docs 1080P, apiyi's own table 720P
    # (x-wanmock-decisions)
    assert catalogue.entry("dashscope", "wan2.7-t2v").get("default_resolution") == "1080P"
    assert catalogue.entry("apiyi", "wan2.7-t2v").get("default_resolution") == "720P"
    # wan2.6-i2v durations: newest DashScope docs 2..15, jiekou's seed 003 {5, 10, 15}
    assert catalogue.durations(catalogue.entry("dashscope", "wan2.6-i2v")) == list(range(2, 16))
    assert catalogue.durations(catalogue.entry("jiekou", "wan2.6-i2v")) == [5, 10, 15]


def test_dashscope_enum_matches_catalogue(contract_set):
    schema = contract_set["dashscope"].document["components"]["schemas"]
    text = json.dumps(schema)
    for entry in contract_set.catalogue.models("dashscope"):
        assert f'"{entry.model}"' in text, entry.model


def rules_that_can_fire(catalogue, entry, spec_map) -> set[str]:
    """The catalogue rules a request for `entry` through an operation with `spec_map` can break."""
    has = set(spec_map)
    requires = set(entry.get("requires") or [])
    prompt = entry.get("prompt") or {}
    negative = entry.get("negative_prompt") or {}
    rules = {
        "size_allowed": bool(entry.get("sizes")) and "size" in has,
        "resolution_allowed": bool(entry.get("resolutions")) and "resolution" in has,
        "ratio_allowed": bool(entry.get("ratios")) and "ratio" in has,
        "width_height_pair": bool(entry.get("pairs")) and "width" in has,
        "duration_allowed": "duration" in has,
        "audio_supported": not entry.audio and bool({"audio", "audio_url"} & has),
        "audio_url_format": "audio_url" in has or ("media" in requires and "media" in has),
        "image_data_format": bool({"img_url", "media", "last_frame_url"} & has),
        "image_data_limits": bool({"img_url", "media", "last_frame_url"} & has),
        "image_required": bool({"img_url", "media"} & requires),
        "image_url_format": "img_url" in requires,
        "media_combination": "media" in requires,
        "references_required": "references" in requires,
        "references_count": "references" in requires,
        "prompt_required": bool(prompt.get("required")),
        "prompt_length": "reject" in (prompt.get("over"), prompt.get("over_alternative"))
        and "prompt" in has,
        "negative_prompt_length": negative.get("over") == "reject" and "negative_prompt" in has,
        "template_known": "template" in has and bool(catalogue.effect_templates),
        "duration_with_video": bool(entry.get("durations_with_video")) and "duration" in has,
    }
    # The newer protocols' media rules (mockserver/media_checks.py), where the body can carry
    # what they read.
    protocol_rules = {
        "wan3": {"input_required", "media_type", "media_exclusive", "media_unlisted",
                 "media_count", "media_duration", "duration_with_video",
                 "prompt_extend_required", "image_url_format", "audio_url_format"},
        "videoedit": {"media_type", "video_required", "media_count", "media_duration",
                      "duration_with_video", "image_url_format"},
        "vace": {"function_inputs", "video_required", "image_url_format"},
        "s2v": {"parameter_required", "image_url_format", "media_duration"},
        "animate": {"video_required", "parameter_required", "image_url_format",
                    "media_duration"},
    }
    if entry.protocol in protocol_rules and ("media" in has or "function" in has
                                             or "video_url" in has or "audio_url" in has):
        rules.update(dict.fromkeys(protocol_rules[entry.protocol], True))
    return {name for name, fires in rules.items() if fires}


@pytest.mark.parametrize("family", FAMILIES)
def test_submit_operations_report_every_rule_that_can_fire(contract_set, family):
    """A contract says how its provider reports each catalogue rule its models can break."""
    catalogue = contract_set.catalogue
    for op in contract_set[family].by_role("submit"):
        listed = set(op.rules)
        assert listed <= set(catalogue.rules), listed - set(catalogue.rules)
        # A gateway that relays the request it builds (new-api) reports through the relayed
        # operation what it passes on (x-wanmock-relay).
        relayed = (set(contract_set[op.relay[0]].operation(op.relay[1]).rules)
                   if op.relay is not None else set())
        model = op.spec_map.get("model")
        if isinstance(model, dict):  # one model per endpoint (jiekou)
            entries = [catalogue.entry(family, model["const"])]
        else:  # every model the endpoint serves (kf2v models have their own, x-wanmock-task)
            entries = [e for e in catalogue.models(family)
                       if op.task is None or entry_task(e) == op.task]
            assert "model_known" in listed | relayed, op.operation_id
        assert entries and None not in entries, op.operation_id
        needed = set().union(*(rules_that_can_fire(catalogue, e, op.spec_map) for e in entries))
        assert needed <= listed | relayed, (op.operation_id, sorted(needed - listed - relayed))
        for rule, report in op.rules.items():
            assert report["timing"] in ("submit", "async"), (op.operation_id, rule)
            assert report["code"] and report["message"], (op.operation_id, rule)


def test_catalogue_rejects_malformed_data(tmp_path):
    with pytest.raises(ContractError, match="missing section"):
        Catalogue({"size_tiers": {}})
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump({"size_tiers": {}, "ratios": {}, "rules": {},
                                    "models": [{"model": "x"}]}))
    with pytest.raises(ContractError, match="lacks"):
        Catalogue.load(path)


def test_a_contract_file_is_validated_once_per_content(tmp_path, monkeypatch):
    """The OpenAPI check of a contract file is skipped when its exact bytes passed it before
    (a digest in the cache directory); a changed or invalid file is checked again, and a cache
    that cannot be written is no cache."""
    from mockserver.contracts import loading

    calls: list[str] = []
    real = loading.validate_document

    def counting(document, path="<contract>"):
        calls.append(Path(path).name)
        real(document, path)

    monkeypatch.setattr(loading, "validate_document", counting)
    monkeypatch.setenv("WANMOCK_CACHE_DIR", str(tmp_path / "cache"))
    catalogue = Catalogue.load(contracts_dir() / "catalogue.yaml")
    source = (contracts_dir() / "jiekou.yaml").read_text(encoding="utf-8")
    path = tmp_path / "jiekou.yaml"
    path.write_text(source, encoding="utf-8")
    first = loading.load_contract(path, catalogue)
    second = loading.load_contract(path, catalogue)
    assert calls == ["jiekou.yaml"]  # the second load found the verdict
    assert second.document == first.document
    path.write_text(source + "\n# changed\n", encoding="utf-8")
    loading.load_contract(path, catalogue)
    assert calls == ["jiekou.yaml", "jiekou.yaml"]  # new bytes, checked again
    broken = source.replace("\ninfo:\n  title:", "\ninfo:\n  titles:", 1)  # title required
    assert broken != source
    path.write_text(broken, encoding="utf-8")
    for _ in range(2):  # an invalid file is never remembered as valid
        with pytest.raises(ContractError, match="not valid OpenAPI"):
            loading.load_contract(path, catalogue)
    assert calls[2:] == ["jiekou.yaml", "jiekou.yaml"]
    (tmp_path / "ro").write_text("a file, not a directory")
    monkeypatch.setenv("WANMOCK_CACHE_DIR", str(tmp_path / "ro"))
    path.write_text(source, encoding="utf-8")
    for _ in range(2):  # no usable cache: checked every time, loaded all the same
        assert loading.load_contract(path, catalogue).document == first.document
    assert len(calls) == 6


def test_contracts_dir_points_at_the_bundled_contracts():
    assert (contracts_dir() / "catalogue.yaml").exists()
    assert load() is load()  # loaded and compiled once


# -- invalid requests, per family ---------------------------------------------------------------

DS = "createVideoSynthesis"
INVALID = [
    # family, operation, body, field, rule, status, code, timing
    ("jiekou", "createWanT2vTask", {"prompt": "a", "width": 480, "height": 480},
     "height", "width_height_pair", 400, "INVALID_REQUEST_BODY", "submit"),
    ("jiekou", "createWanT2vTask", {"prompt": "a", "steps": 41},
     "steps", "schema:maximum", 400, "INVALID_REQUEST_BODY", "submit"),
    ("jiekou", "createWanT2vTask", {"prompt": "a", "seed": 10_000_000_000},
     "seed", "schema:maximum", 400, "INVALID_REQUEST_BODY", "submit"),
    ("jiekou", "createWanT2vTask", {"prompt": "a", "loras": [{"path": "p", "scale": 1}] * 4},
     "loras", "schema:maxItems", 400, "INVALID_REQUEST_BODY", "submit"),
    ("jiekou", "createWanT2vTask", {"negative_prompt": "x"},
     "prompt", "schema:required", 400, "INVALID_REQUEST_BODY", "submit"),
    ("jiekou", "createWanT2vTask", {"prompt": "a", "loras": [{"path": "p", "scale": 4.5}]},
     "loras.0.scale", "schema:maximum", 400, "INVALID_REQUEST_BODY", "submit"),
    ("jiekou", "createWan26I2vTask",
     {"input": {"prompt": "a", "img_url": "https://x.test/a.png"}, "parameters": {"duration": 7}},
     "parameters.duration", "schema:enum", 400, "INVALID_REQUEST_BODY", "submit"),
    ("jiekou", "createWan26I2vTask", {"input": {"prompt": "a"}},
     "input.img_url", "schema:required", 400, "INVALID_REQUEST_BODY", "submit"),
    ("dashscope", DS, {"model": "wan2.6-t2v", "input": {"prompt": "a"},
                       "parameters": {"size": "832*480"}},
     "parameters.size", "size_allowed", 400, "InvalidParameter", "async"),
    ("dashscope", DS, {"model": "wan2.6-i2v", "input": {"prompt": "a"}},
     "input.img_url", "image_required", 400, "InvalidParameter", "async"),
    ("dashscope", DS, {"model": "wan2.6-i2v", "input": {"img_url": "https://x.test/a.png"},
                       "parameters": {"resolution": "480P"}},
     "parameters.resolution", "resolution_allowed", 400, "InvalidParameter", "submit"),
    ("dashscope", DS, {"model": "wan2.5-t2v-preview", "input": {"prompt": "a"},
                       "parameters": {"duration": 15}},
     "parameters.duration", "duration_allowed", 400, "InvalidParameter", "submit"),
    ("dashscope", DS, {"model": "wan2.2-t2v-plus", "input": {"prompt": "a",
                                                             "audio_url": "https://x.test/a.mp3"}},
     "input.audio_url", "audio_supported", 400, "InvalidParameter", "submit"),
    ("dashscope", DS, {"model": "wan2.6-t2v", "input": {"prompt": "a"},
                       "parameters": {"seed": -1}},
     "parameters.seed", "schema:minimum", 400, "InvalidParameter", "submit"),
    ("dashscope", DS, {"input": {"prompt": "a"}},
     "model", "schema:required", 400, "BadRequest.EmptyModel", "submit"),
    ("dashscope", DS, {"model": "wan2.6-t2v"},
     "input", "schema:required", 400, "BadRequest.EmptyInput", "submit"),
    ("dashscope", DS, {"model": "wan9-t2v", "input": {"prompt": "a"}},
     "model", "schema:enum", 400, "InvalidParameter", "submit"),
    ("dashscope", DS, {"model": "wan2.6-r2v", "input": {"prompt": "a"}},
     "input.reference_urls", "references_required", 400, "InvalidParameter", "submit"),
    ("dashscope", DS, {"model": "wan2.6-r2v", "input": {"prompt": "a", "reference_urls": [
        f"https://x.test/{i}.png" for i in range(6)]}},
     "input.reference_urls", "references_count", 400, "InvalidParameter", "submit"),
    ("dashscope", DS, {"model": "wan2.7-i2v", "input": {"media": [
        {"type": "last_frame", "url": "https://x.test/a.png"}]}},
     "input.media", "media_combination", 400, "InvalidParameter", "submit"),
    ("apiyi", DS, {"model": "wan2.7-t2v", "input": {"prompt": "a"}, "parameters": {"duration": 16}},
     "parameters.duration", "schema:maximum", 400, "InvalidParameter", "submit"),
    ("apiyi", DS, {"model": "wan2.7-t2v", "input": {"prompt": "a"},
                   "parameters": {"ratio": "21:9"}},
     "parameters.ratio", "schema:enum", 400, "InvalidParameter", "submit"),
    # new-api: its own checks, then DashScope's judgement of the request it relays
    ("newapi", "createVideoGeneration", {"model": "wan2.6-t2v"},
     "prompt", "schema:required", 400, "invalid_request", "submit"),
    ("newapi", "createVideoGeneration", {"prompt": "a"},
     "model", "distributor:model", 400, "", "submit"),
    ("newapi", "createVideoGeneration", {"model": "wan2.6-t2v", "prompt": "a", "duration": 16},
     "parameters.duration", "schema:maximum", 400, "fail_to_fetch_task", "submit"),
    ("newapi", "createVideoGeneration", {"model": "wan2.6-i2v", "prompt": "a"},
     "input.img_url", "image_required", 400, "InvalidParameter", "async"),
    ("newapi", "createVideoGeneration", {"model": "wan2.6-t2v", "prompt": "a",
                                         "metadata": {"parameters": {"size": "832*480"}}},
     "parameters.size", "size_allowed", 400, "InvalidParameter", "async"),
]


def _judge(contract_set: Any, family: str, op_id: str, body: Any) -> Any:
    """The family's judgement as the fake makes it (its policy, default options)."""
    policy = policy_class(family)(Judging(contract_set))
    return policy.judge(policy.contract.operation(op_id), body)


@pytest.mark.parametrize(
    ("family", "op_id", "body", "field", "rule", "status", "code", "timing"),
    INVALID, ids=[f"{r[0]}-{r[3]}-{r[4]}" for r in INVALID],
)
def test_invalid_request_yields_the_providers_violation(
    contract_set, family, op_id, body, field, rule, status, code, timing
):
    _, violations = _judge(contract_set, family, op_id, body)
    assert violations, "expected a violation"
    first = violations[0]
    assert (first.field, first.rule, first.status, first.code, first.timing) == (
        field, rule, status, code, timing)
    assert first.message


def test_rule_timing_switch_overrides_the_contract(contract_set):
    body = {"model": "wan2.6-t2v", "input": {"prompt": "a"}, "parameters": {"size": "832*480"}}
    _, violations = contract_set["dashscope"].judge(DS, body, rule_timing="submit")
    assert violations[0].timing == "submit"


VALID = [
    ("jiekou", "createWanT2vTask", {"prompt": "a" * 2000, "width": 1280, "height": 720,
                                    "seed": 9_999_999_999, "steps": 40, "guidance_scale": 10,
                                    "flow_shift": 1, "loras": [{"path": "p", "scale": 4}] * 3},
     (1280, 720, 5)),
    ("jiekou", "createWanT2vTask", {"prompt": "a", "seed": -1, "steps": 1, "width": 720},
     (832, 480, 5)),  # one side missing: both fall back to 832x480 (seed 000)
    ("jiekou", "createWan26I2vTask", {"input": {"prompt": "x" * 2500,
                                                "img_url": SAMPLE_PNG_DATA_URI},
                                      "parameters": {"duration": 15, "resolution": "720P",
                                                     "seed": 2147483647}},
     (1104, 832, 15)),  # a 4:3 inline image keeps its aspect ratio at 720P (audit F22)
    ("dashscope", DS, {"model": "wan2.6-t2v", "input": {"prompt": "a"},
                       "parameters": {"size": "1080*1920", "duration": 2}}, (1080, 1920, 2)),
    ("dashscope", DS, {"model": "wan2.6-t2v", "input": {"prompt": "a"},
                       "parameters": {"duration": 15, "seed": 0}}, (1920, 1080, 15)),
    ("dashscope", DS, {"model": "wanx2.1-i2v-turbo", "input": {"img_url": "oss://b/a.png"},
                       "parameters": {"resolution": "480P", "duration": 3}}, (832, 480, 3)),
    ("dashscope", DS, {"model": "wan2.7-t2v", "input": {"prompt": "a"},
                       "parameters": {"resolution": "720P", "ratio": "9:16", "duration": 15}},
     (720, 1280, 15)),
    ("apiyi", DS, {"model": "wan2.7-t2v", "input": {"prompt": "a"}}, (1280, 720, 5)),
    ("newapi", "createVideoGeneration", {"model": "wan2.6-i2v", "prompt": "a",
                                         "image": "https://x.test/a.png", "size": "720p",
                                         "seconds": "10"}, (1280, 720, 10)),
    # dropped keys (ratio, shot_type) and omitted falsy values pass unjudged
    ("newapi", "createVideoGeneration", {"model": "wan2.6-t2v", "prompt": "a", "metadata": {
        "parameters": {"prompt_extend": False, "seed": 0, "ratio": 42, "shot_type": "many"}}},
     (1280, 720, 5)),
]


@pytest.mark.parametrize(("family", "op_id", "body", "geometry"), VALID,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(VALID)])
def test_valid_edge_cases_pass(contract_set, family, op_id, body, geometry):
    spec, violations = _judge(contract_set, family, op_id, body)
    assert violations == []
    assert (spec.width, spec.height, spec.duration) == geometry


def test_overlong_prompt_is_truncated_not_rejected(contract_set):
    body = {"model": "wan2.6-t2v", "input": {"prompt": "p" * 1600}}
    spec, violations = contract_set["dashscope"].judge(DS, body)
    assert violations == []
    assert spec.prompt == "p" * 1600  # what the user sent is kept (orig_prompt)
    assert spec.actual_prompt == "p" * 1500


def test_sdk_extra_fields_are_tolerated(contract_set):
    # What dashscope 2.0.2's VideoSynthesis sends (dashscope 2.0.2 aigc/video_synthesis.py).
    body = {"model": "wan2.6-i2v", "input": {"prompt": None, "extend_prompt": True,
                                             "img_url": "https://x.test/a.png"},
            "parameters": {}}
    spec, violations = contract_set["dashscope"].judge(DS, body)
    assert violations == []
    assert spec.prompt is None
