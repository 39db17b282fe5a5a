"""DashScope's poll splice gives the bytes JSONResponse would send for the whole body."""

from __future__ import annotations

import pytest

from mockserver.providers.dashscope import render
from mockserver.providers.hotpath import json_body


@pytest.mark.parametrize("body", [
    {"request_id": "r-1", "output": {"task_id": "t", "task_status": "PENDING"}},
    {"request_id": "r-2", "output": {"task_id": "t", "task_status": "SUCCEEDED",
                                     "video_url": "https://x/v.mp4?a=1&b=2",
                                     "orig_prompt": "灯塔 \u2028 \"quoted\""}},
    {"request_id": "r-3"},
])
def test_the_poll_splice_is_the_rendered_body_byte_for_byte(body):
    tail = render.poll_tail(body)
    assert tail is not None
    assert render.poll_json(body["request_id"], tail) == json_body(body)
    assert "request_id" in body  # the caller's body is left whole


def test_a_body_not_led_by_request_id_is_not_spliced():
    assert render.poll_tail({"output": {}, "request_id": "r"}) is None


def test_the_submit_answer_is_the_dict_byte_for_byte():
    expected = json_body({"output": {"task_id": "t-é", "task_status": "PENDING"},
                          "request_id": "r"})
    assert render.created_json("t-é", "r") == expected
