"""What wanmock knows about the toy provider (no Starlette): paths, status words, options."""

from __future__ import annotations

from mockserver.families import FamilySpec, StatusField
from mockserver.options import Option

NAME = "toy"
# neutral state -> the toy provider's `job.state`
STATUS = {"queued": "WAITING", "running": "BUSY", "succeeded": "READY", "failed": "BROKEN",
          "canceled": "BROKEN", "expired": "GONE"}

FAMILY = FamilySpec(
    name=NAME,
    routes="tests.families.toy.routes:Toy",
    policy="tests.families.toy.policy:ToyPolicy",
    prefixes=("/toy/",),
    task_paths=("/toy/v1/jobs/",),
    statuses=(StatusField("job.state", {w: s for s, w in STATUS.items()}),),
    task_id_paths=("job.id",),
    progress_paths=("job.percent",),
    video_url_paths=("job.video",),
    failure_paths=(("job.error.code", "job.error.message"),),
    base_url_hint="{url}/toy/v1   (the toy provider)",
    key_variables=("TOY_API_KEY",),
    options=(Option("toy_greeting", "hello", "toy: the word a submit's answer greets with",
                    choices=("hello", "hi"), family=NAME),),
    order=90,
)
