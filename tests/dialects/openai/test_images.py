"""`POST /v1/images/generations` with the official openai SDK: OpenAI's request and response
shapes for a catalog image model; bad requests are 400s that name the parameter."""

from __future__ import annotations

import base64
import io

import httpx
import openai
import pytest
from PIL import Image


def test_base_image_model_generates_b64_and_urls(client):
    got = client.images.generate(model="polytune-tiny-diffusion", prompt="a blue circle", response_format="b64_json")
    (item,) = got.data
    assert got.created > 0 and Image.open(io.BytesIO(base64.b64decode(item.b64_json))).size == (32, 32)
    by_url = client.images.generate(model="polytune-tiny-diffusion", prompt="a blue circle", n=2, size="32x16")
    assert len(by_url.data) == 2
    for item in by_url.data:
        r = httpx.get(item.url, timeout=30)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(r.content)).size == (32, 16)
    assert httpx.get(by_url.data[0].url.replace("/img-", "/img-1"), timeout=30).status_code == 404


@pytest.mark.parametrize(
    "kwargs,param",
    [
        ({"model": "polytune-tiny"}, "model"),
        ({"model": "no-such-model"}, "model"),
        ({"size": "33x33"}, "size"),
        ({"size": "big"}, "size"),
        ({"n": 0}, "n"),
        ({"n": 11}, "n"),
        ({"prompt": " "}, "prompt"),
        ({"response_format": "jpeg"}, "response_format"),
    ],
)
def test_bad_image_requests_name_the_parameter(client, kwargs, param):
    args = {"model": "polytune-tiny-diffusion", "prompt": "a red dot", **kwargs}
    with pytest.raises((openai.BadRequestError, openai.NotFoundError)) as e:
        client.images.generate(**args)
    assert e.value.body["param"] == param, e.value.body


def test_chat_with_an_image_model_is_a_clear_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="polytune-tiny-diffusion", messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["param"] == "model" and "image model" in e.value.body["message"]


def test_the_unet_base_model_generates(client):
    got = client.images.generate(
        model="polytune-tiny-unet", prompt="a red square", response_format="b64_json", extra_body={"seed": 5}
    )
    (item,) = got.data
    assert Image.open(io.BytesIO(base64.b64decode(item.b64_json))).size == (32, 32)
