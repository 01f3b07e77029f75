"""Layers a client brings (POST /backgrounds: objects[n].png, base64 PNGs in the JSON), decoded before any job.

The size is read from the PNG header before a pixel is decoded, so a file claiming more pixels than a layer may
have is refused without decompressing it; then the whole file is decoded here, so a truncated or damaged one is
the client's 400 naming the field, not the server's 500 when the job reads it.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
from dataclasses import dataclass
from typing import Any

from taue_engine.config import SIZE_MULTIPLE

from .fields import Context, Field, refuse

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, kw_only=True)
class Png(Field):
    """An RGBA layer brought as a base64 PNG, multiples of SIZE_MULTIPLE in min_size..max_size, not transparent."""

    def check(self, name: str, value: Any, ctx: Context):
        from PIL import Image

        not_png = refuse(name, f"{name} must be a PNG file encoded as base64")
        try:
            data = base64.b64decode(value, validate=True) if isinstance(value, str) else None
        except (binascii.Error, ValueError):
            data = None
        if data is None:
            raise not_png
        if not data:
            raise refuse(name, f"{name} is empty: send the layer's PNG file, encoded as base64")
        if not data.startswith(PNG_SIGNATURE):
            raise not_png
        damaged = f"{name} is truncated or damaged ({{}}): send the whole PNG file, encoded as base64"
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise refuse(name, damaged.format("it ends before its header"))
        width, height = struct.unpack(">II", data[16:24])
        if not width or not height:
            raise refuse(name, f"{name} is {width}x{height}, an image without pixels: bring the layer at the scene's "
                               f"size, multiples of {SIZE_MULTIPLE} in {ctx.min_size}..{ctx.max_size} pixels")
        if (width % SIZE_MULTIPLE or height % SIZE_MULTIPLE or not ctx.min_size <= min(width, height)
                or max(width, height) > ctx.max_size):
            raise refuse(name, f"{name} is {width}x{height}: layers must be multiples of {SIZE_MULTIPLE} in "
                               f"{ctx.min_size}..{ctx.max_size} pixels (scale or crop it)")
        try:
            with Image.open(io.BytesIO(data)) as image:
                image = image.convert("RGBA")
        except Image.UnidentifiedImageError:
            raise refuse(name, damaged.format("its header cannot be read")) from None
        except Exception as error:  # noqa: BLE001 - the size is checked: whatever decoding these bytes raises is theirs
            raise refuse(name, damaged.format(str(error) or type(error).__name__)) from None
        if not image.getchannel("A").point(lambda a: 255 if a > 127 else 0).getbbox():
            raise refuse(name, f"{name} is (nearly) fully transparent: its alpha must cover the object")
        return image

    def shape(self, ctx: Context) -> dict:
        return {"type": "string", "format": "byte"}
