"""Images a client brings (POST /backgrounds, objects[n].png) that cannot be decoded are 400s naming the field,
never 500s: truncated, empty, without pixels, damaged, or claiming more pixels than a layer may have."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from PIL import Image

from tests.helpers.live import live_server


@pytest.fixture(scope="module")
def server(pipe, tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("server-images"), pipe) as live:
        yield live


def layer(size=(64, 64)) -> bytes:
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    image.paste(Image.new("RGBA", (24, 28), (220, 30, 30, 255)), (16, 20))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with one row of data (PIL cannot write a 0x0 image)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 5))
            + chunk(b"IEND", b""))


def damaged(data: bytes) -> bytes:
    """The PNG with its pixel data (the IDAT chunk's compressed stream) overwritten."""
    start = data.index(b"IDAT") + 8
    return data[:start] + b"\xff" * 16 + data[start + 16:]


BAD_IMAGES = [
    ("truncated", layer()[: len(layer()) // 2], "truncated or damaged", "send the whole PNG file"),
    ("header only", layer()[:30], "truncated or damaged", "send the whole PNG file"),
    ("empty", b"", "is empty", "send the layer's PNG file"),
    ("0x0", png_claiming(0, 0), "is 0x0", "multiples of 8 in 64..2048 pixels"),
    ("0x64", png_claiming(0, 64), "is 0x64", "multiples of 8 in 64..2048 pixels"),
    ("damaged", damaged(layer()), "truncated or damaged", "send the whole PNG file"),
    ("bomb", png_claiming(60000, 60000), "is 60000x60000", "multiples of 8 in 64..2048 pixels"),
]


@pytest.mark.parametrize("label, data, what, change", BAD_IMAGES, ids=[case[0] for case in BAD_IMAGES])
def test_an_image_that_cannot_be_decoded_is_a_400_naming_the_field(server, label, data, what, change):
    body = {"objects": [{"prompt": "a red square", "png": base64.b64encode(data).decode()}],
            "background_prompts": ["a white background"], "steps": 2}
    response = server.session.post(f"{server.api}/backgrounds", json=body, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == "objects[1].png" and error["code"] == "bad_request", error
    assert error["message"].startswith("objects[1].png ") and what in error["message"], error
    assert change in error["message"], error


def test_the_second_layer_is_named_when_it_is_the_bad_one(server):
    good = base64.b64encode(layer()).decode()
    cut = base64.b64encode(layer()[: len(layer()) * 2 // 3]).decode()
    response = server.session.post(f"{server.api}/backgrounds", timeout=30, json={
        "objects": [{"prompt": "a red square", "png": good}, {"prompt": "a blue square", "png": cut}],
        "background_prompts": ["a white background"], "steps": 2})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "objects[2].png"


def test_a_whole_layer_is_still_taken(server):
    response = server.session.post(f"{server.api}/backgrounds", timeout=30, json={
        "objects": [{"prompt": "a red square", "png": base64.b64encode(layer()).decode()}],
        "background_prompts": ["a white background"], "steps": 2})
    assert response.status_code == 202, response.text
    assert server.wait(response.json()["jobs"][0]["id"])["state"] == "succeeded"
