"""OpenRaster export: the same stack as the PSD in the format Krita and GIMP open natively.

OpenRaster has no layer masks, so the foreground keeps its alpha as transparency. The file is a zip: an
uncompressed `mimetype` first, `stack.xml` (children listed top first), one PNG per layer, the merged image and a
thumbnail.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

from PIL import Image

from .layers import document_layers, group_name, visible_projection

THUMBNAIL = 256


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_ora(path: str | Path, images: dict[str, Image.Image], metadata: dict) -> Path:
    """Write the layered OpenRaster file to `path`, atomically; returns the path."""
    path = Path(path)
    layers = document_layers(images, metadata)
    width, height = layers[0].image.size
    entries = []
    for index, layer in enumerate(reversed(layers)):  # stack.xml lists the top layer first
        src = f"data/layer{index}.png"
        visibility = "visible" if layer.visible else "hidden"
        entries.append(f'    <layer name={quoteattr(layer.name)} src="{src}" visibility="{visibility}" '
                       f'x="0" y="0" opacity="1.0"/>')
    stack = "\n".join([
        "<?xml version='1.0' encoding='UTF-8'?>",
        f'<image version="0.0.6" w="{width}" h="{height}">',
        f'  <stack name={quoteattr(group_name(metadata))} visibility="visible" isolation="isolate">',
        *entries,
        "  </stack>",
        "</image>",
        "",
    ])
    merged = visible_projection(layers)
    thumbnail = merged.copy()
    thumbnail.thumbnail((THUMBNAIL, THUMBNAIL))
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "image/openraster", compress_type=zipfile.ZIP_STORED)
        archive.writestr("stack.xml", stack, compress_type=zipfile.ZIP_DEFLATED)
        for index, layer in enumerate(reversed(layers)):
            archive.writestr(f"data/layer{index}.png", _png(layer.image), compress_type=zipfile.ZIP_STORED)
        archive.writestr("mergedimage.png", _png(merged), compress_type=zipfile.ZIP_STORED)
        archive.writestr("Thumbnails/thumbnail.png", _png(thumbnail), compress_type=zipfile.ZIP_STORED)
    tmp.replace(path)
    return path
