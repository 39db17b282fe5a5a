"""The new-api releases the fake can be, one coherent release per `newapi_version` (no Starlette).

Each `Release` holds every fact in which the two modelled releases differ, so no code path mixes
them: `latest` is new-api v1.0.0-rc.25 and `legacy` is v0.10.0 (seed 002's gateway shape). The
tags and commits, and why these two, are in contracts/newapi.yaml (`x-wanmock-versions` and the
decision "Which new-api release the fake follows"); file:line sources below are at the tag
commit on github.com/QuantumNous/new-api (`R` = rc.25 f1164142, `L` = v0.10.0 ee53a7b6).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RC25_COMMIT = "f116414284162ad15d8925f7bca494c109b83e93"
V0100_COMMIT = "ee53a7b6bf875778595b0437a5208d65e7e0905c"


@dataclass(frozen=True, slots=True)
class Release:
    """One new-api release as its clients see it."""

    key: str  # the `newapi_version` value
    tag: str
    commit: str
    # Backend i18n (R i18n/i18n.go:22 DefaultLang en; middleware/i18n.go): English by default,
    # Accept-Language, the user's saved language. L has hard-coded Chinese texts only.
    i18n: bool
    # Request id (R common/utils.go:268-283: UTC, `%09d` ns, build tag; L common/utils.go:270:
    # local time, `%d` ns, no tag). `build_tag` is hex(sha256(module path)[:4]).
    request_id_utc: bool
    build_tag: str
    # `X-New-Api-Version` on every answer (R middleware/cors.go:18-23, main.go:191).
    version_header: bool
    # `X-New-Api-Other-Ratios` on a submit the upstream accepted (R relay/relay_task.go:229-235).
    other_ratios_header: bool
    # `Cache-Version` on the web middleware's answers, the 404 included (R middleware/cache.go:14).
    cache_version: str | None
    # Task ids: `task_` + 32 characters in `id` and `task_id` (R model/task.go:144-147,
    # ali/adaptor.go:509-510), else the DashScope task id in `id` only (L ali/adaptor.go:381).
    public_ids: bool
    # TaskDto: the 20-field DTO with `result_url` (R dto/task.go:32-53) or the 9 fields of
    # L dto/suno.go:81-91 with the video URL in `fail_reason` (L controller/task_video.go:143).
    full_dto: bool
    # Where the Ali adaptor takes `input.img_url` from (R ali/adaptor.go:278-291,360;
    # L ali/adaptor.go:255), and whether `image` alone makes the action `generate`
    # (R relay/common/relay_utils.go:218-229; L :139-150 counts images and input_reference).
    image_fields: tuple[str, ...]
    image_is_generate: bool
    # `AliVideoInput.media` and the wan2.7-i2v media building (R ali/adaptor.go:50,308-349).
    media: bool
    # wan2.6 image-to-video defaults to 1080P (R ali/adaptor.go:395-396; L has no wan2.6 branch).
    wan26_1080p: bool
    # L runs ProcessAliOtherRatios inside the conversion (L ali/adaptor.go:336-342): a W*H
    # size outside its 13 sizes fails the submit; R only bills with it (ali/adaptor.go:465-468).
    size_table_refuses: bool
    # L converts inside ValidateRequestAndSetAction, before the prompt check (L ali/adaptor.go:
    # 123-136); R converts in BuildRequestBody after validation (R relay/relay_task.go:214-217).
    convert_first: bool
    # R's `invalid_seconds` bound check (R relay/common/relay_utils.go:143-156).
    seconds_bounds: bool
    # R's TaskSubmitReq.UnmarshalJSON reads `duration` as a number or numeric string and ignores
    # anything else (R relay/common/relay_info.go:903-915); in L it is a plain Go int.
    lenient_duration: bool
    # The code of a body TaskSubmitReq cannot take (R relay/common/relay_utils.go:208 invalid_json;
    # L ali/adaptor.go:126-127 unmarshal_task_request_failed, checked first).
    decode_code: str
    # A conversion error: R 500 build_request_failed "convert_to_ali_request_failed: <reason>"
    # (relay_task.go:214-217, ali/adaptor.go:156-159); L 500 convert_to_ali_request_failed
    # "<reason>" (ali/adaptor.go:129-131).
    build_code: str
    build_prefix: str
    # TokenAuth strips `Bearer ` or `bearer ` (R middleware/auth.go:393) or only `Bearer `
    # (L middleware/auth.go:219); the missing-token text (R auth.go:416-425 answers every
    # non-database error with token.invalid; L model/token.go:75-77 "未提供令牌").
    lower_bearer: bool
    missing_token_is_invalid: bool
    # The video proxy looks the task up for the caller only (R controller/video_proxy.go:41)
    # or for anyone (L controller/video_proxy.go:31 GetByOnlyTaskId).
    content_scoped: bool
    # The Ali adaptor's default channel models (R ali/constants.go:3-11; L :3-9).
    channel_models: tuple[str, ...]

    @property
    def label(self) -> str:
        """`new-api v1.0.0-rc.25 (f1164142)`."""
        return f"new-api {self.tag} ({self.commit[:8]})"


_SHARED_MODELS = ("wan2.5-i2v-preview", "wan2.2-i2v-flash", "wan2.2-i2v-plus", "wanx2.1-i2v-plus",
                  "wanx2.1-i2v-turbo")

LATEST = Release(
    key="latest", tag="v1.0.0-rc.25", commit=RC25_COMMIT, i18n=True, request_id_utc=True,
    build_tag="8268d9d6", version_header=True, other_ratios_header=True,
    cache_version="b688f2fb5be447c25e5aa3bd063087a83db32a288bf6a4f35f2d8db310e40b14",
    public_ids=True, full_dto=True, image_fields=("image", "images", "input_reference"),
    image_is_generate=True, media=True, wan26_1080p=True, size_table_refuses=False,
    convert_first=False, seconds_bounds=True, lenient_duration=True, decode_code="invalid_json",
    build_code="build_request_failed", build_prefix="convert_to_ali_request_failed: ",
    lower_bearer=True, missing_token_is_invalid=True, content_scoped=True,
    channel_models=("wan2.7-i2v", "wan2.7-t2v", *_SHARED_MODELS),
)
LEGACY = Release(
    key="legacy", tag="v0.10.0", commit=V0100_COMMIT, i18n=False, request_id_utc=False,
    build_tag="", version_header=False, other_ratios_header=False, cache_version=None,
    public_ids=False, full_dto=False, image_fields=("input_reference",),
    image_is_generate=False, media=False, wan26_1080p=False, size_table_refuses=True,
    convert_first=True, seconds_bounds=False, lenient_duration=False,
    decode_code="unmarshal_task_request_failed", build_code="convert_to_ali_request_failed",
    build_prefix="", lower_bearer=False, missing_token_is_invalid=False, content_scoped=False,
    channel_models=_SHARED_MODELS,
)
RELEASES: dict[str, Release] = {"latest": LATEST, "legacy": LEGACY}
# `--newapi-version` also takes the tag names (family.VERSION_CHOICES).
_BY_NAME = {**RELEASES, LATEST.tag: LATEST, LEGACY.tag: LEGACY}


def release_of(options: Mapping[str, Any] | Any) -> Release:
    """The release the options name (`newapi_version`: latest, legacy or a tag name)."""
    return _BY_NAME[options["newapi_version"]]
