"""What wanmock knows about DashScope outside its HTTP class (no Starlette): hosts come from
contracts/dashscope.yaml `servers:`; paths, status words, where its answers carry them, options."""

from __future__ import annotations

from mockserver.families import FamilySpec, StatusField
from mockserver.options import Option

NAME = "dashscope"
# neutral state -> DashScope's `output.task_status` (dashscope 2.0.2 aigc/video_synthesis.py);
# render.py speaks it.
STATUS = {
    "queued": "PENDING",
    "running": "RUNNING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "canceled": "CANCELED",
    "expired": "UNKNOWN",
    "suspended": "SUSPENDED",  # SDK common/constants.py TaskStatus
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
    Option("dashscope_usage_sr", False, "add SR to wan2.5/wan2.2 usage, as "
           "help.aliyun.com/zh/model-studio/text-to-video-api-reference (responses) and "
           "a mirror show (default: no, as seed 002's verbatim wan2.5 body)", kind="bool",
           family=NAME),
    Option("dashscope_rate_limits", "on", "DashScope's documented limits: 20 requests/s per "
           "key on the task APIs, each model's submits/s and tasks in progress (extra tasks "
           "wait PENDING), 429 Throttling.RateQuota beyond a rate (on, default), or none (off)",
           choices=("on", "off"), family=NAME),
    Option("dashscope_wan26_r2v_audio", "always", "wan2.6-r2v makes sound whatever "
           "parameters.audio says (always, default: the official guide's 有声视频) or refuses "
           "audio as a silent model (strict: the fake's older reading)",
           choices=("always", "strict"), family=NAME),
    Option("dashscope_wan27_r2v_video_max", 10, "wan2.7-r2v with a reference video: the "
           "longest duration (10, default, as every relay copying DashScope's rules; 15: the "
           "Qwen guide's plain 2-15)", kind="int", choices=(10, 15), family=NAME),
    Option("dashscope_wan27_r2v_videos", 5, "wan2.7-r2v: reference videos allowed among its 5 "
           "references (5, default, the Qwen create-task page; 3: the older assumption)",
           kind="int", choices=(5, 3), family=NAME),
    Option("dashscope_r2v_input_billing", "on", "r2v with a reference video bills its input "
           "seconds in usage (on, default: input_video_duration up to 5 s, duration = input + "
           "output) or reports 0 (off)", choices=("on", "off"), family=NAME),
    Option("dashscope_r2v_prompt_over", "truncate", "wan2.6 r2v prompt over 1500 characters: "
           "truncate (default, as every other Wan model) or reject (400 InvalidParameter)",
           choices=("truncate", "reject"), family=NAME),
    Option("dashscope_regions", "on", "each Model Studio host offers its region's models, "
           "another is 400 \"Model not exist.\" there (on, default: every regional and "
           "workspace host but Beijing's shared dashscope.aliyuncs.com, the SDKs' default, "
           "which offers every model; strict: that host too; off: every host every model); "
           "loopback and other hosts offer every model", choices=("on", "strict", "off"),
           family=NAME),
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
