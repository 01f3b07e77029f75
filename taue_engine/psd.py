"""PSD export: one 8-bit RGB document per result, the foreground's alpha as a real layer mask.

Each object layer is RGBA; an RGB document (not RGBA) makes psd-tools store a layer's alpha as a user layer mask,
which Photoshop, Krita, GIMP and Affinity show as an editable mask: the designer can repaint the object's edge. Masks
sit on pixel layers only (a mask on a group wrote files other readers rejected).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from .layers import document_layers, group_name


def write_psd(path: str | Path, images: dict[str, Image.Image], metadata: dict) -> Path:
    """Write the layered PSD (see layers.py for the stack) to `path`, atomically; returns the path."""
    from psd_tools import PSDImage
    from psd_tools.api.layers import Group, PixelLayer

    path = Path(path)
    layers = document_layers(images, metadata)
    psd = PSDImage.new("RGB", layers[0].image.size, color=(255, 255, 255))
    group = Group.new(psd, name=group_name(metadata))
    for layer in layers:
        image = layer.image.convert("RGB") if layer.image.mode == "L" else layer.image
        pixel_layer = PixelLayer.frompil(image, group, name=layer.name)
        pixel_layer.visible = layer.visible
    tmp = path.with_name(path.name + ".tmp")
    psd.save(tmp)
    tmp.replace(path)
    return path
