"""What wanmock knows about DashScope outside its HTTP class (no Starlette): hosts come from
contracts/dashscope.yaml `servers:`; paths, status words, where its answers carry them, options."""

from __future__ import annotations

from mockserver.families import FamilySpec, StatusField
from mockserver.options import Option

NAME = "dashscope"
# neutral state -> DashScope's `output.task_status` (api-facts §3.2); render.py speaks it.
STATUS = {
    "queued": "PENDING",
    "running": "RUNNING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "canceled": "CANCELED",
    "expired": "UNKNOWN",
    "suspended": "SUSPENDED",  # SDK common/constants.py TaskStatus (audit F21)
}
STATUS_FIELD = StatusField("output.task_status", {w: s for s, w in STATUS.items()})

OPTIONS = (
    Option("dashscope_unknown_model_status", 400, "an unknown model: 400 InvalidParameter "
           "(live probe, default) or 404 ModelNotFound (docs)", kind="int", choices=(400, 404),
           family=NAME),
    Option("dashscope_result_auth", "reject", "a result-URL GET with an Authorization header: "
           "OSS's 400 InvalidArgument, as a presigned OSS link answers (reject, default), or "
           "served (ignore)", choices=("reject", "ignore"), family=NAME),
    Option("dashscope_oss_resolve", "require", "an oss:// input without the header "
           "X-DashScope-OssResourceResolve: enable is refused (require, default) or taken "
           "(ignore)", choices=("require", "ignore"), family=NAME),
    Option("dashscope_actual_prompt_wan27", False, "show actual_prompt on wan2.7 results "
           "(default: no, as the official wan2.7 query examples show only orig_prompt)",
           kind="bool", family=NAME),
    Option("dashscope_usage_sr", False, "add SR to wan2.5/wan2.2 usage, as api-facts §3.5 and "
           "a mirror show (default: no, as seed 002's verbatim wan2.5 body)", kind="bool",
           family=NAME),
    Option("dashscope_rate_limits", "on", "DashScope's documented limits: 20 requests/s per "
           "key on the task APIs, each model's submits/s and tasks in progress (extra tasks "
           "wait PENDING), 429 Throttling.RateQuota beyond a rate (on, default), or none (off)",
           choices=("on", "off"), family=NAME),
    Option("dashscope_wan26_r2v_audio", "always", "wan2.6-r2v makes sound whatever "
           "parameters.audio says (always, default: the official guide's 有声视频) or refuses "
           "audio as a silent model (strict: the fake before audit N04)",
           choices=("always", "strict"), family=NAME),
    Option("dashscope_wan27_r2v_video_max", 10, "wan2.7-r2v with a reference video: the "
           "longest duration (10, default, as every relay copying DashScope's rules; 15: the "
           "Qwen guide's plain 2-15, audit N02)", kind="int", choices=(10, 15), family=NAME),
    Option("dashscope_wan27_r2v_videos", 5, "wan2.7-r2v: reference videos allowed among its 5 "
           "references (5, default, the Qwen create-task page; 3: the older assumption, audit "
           "N03)", kind="int", choices=(5, 3), family=NAME),
    Option("dashscope_r2v_input_billing", "on", "r2v with a reference video bills its input "
           "seconds in usage (on, default: input_video_duration up to 5 s, duration = input + "
           "output, audit N05) or reports 0 (off)", choices=("on", "off"), family=NAME),
    Option("dashscope_r2v_prompt_over", "truncate", "wan2.6 r2v prompt over 1500 characters: "
           "truncate (default, as every other Wan model) or reject (400 InvalidParameter)",
           choices=("truncate", "reject"), family=NAME),
    Option("dashscope_trailing_slash", "serve", "a path with a trailing slash (the aio SDK polls "
           "GET /api/v1/tasks/{id}/): answered as without it (serve, default; decision "
           "trailing-slash) or a 307 to the path without it (redirect)",
           choices=("serve", "redirect"), family=NAME),
)

FAMILY = FamilySpec(
    name=NAME,
    routes="mockserver.providers.dashscope.routes:DashScope",
    policy="mockserver.providers.dashscope.policy:DashScopePolicy",
    prefixes=("/api/v1/",),
    task_paths=("/api/v1/tasks/",),
    statuses=(STATUS_FIELD,),
    task_id_paths=("output.task_id",),
    video_url_paths=("output.video_url", "output.results.video_url"),
    failure_paths=(("output.code", "output.message"),),
    base_url_hint="{url}/api/v1   (dashscope SDK: dashscope.base_http_api_url)",
    key_variables=("DASHSCOPE_API_KEY",),
    options=OPTIONS,
    order=10,
)
