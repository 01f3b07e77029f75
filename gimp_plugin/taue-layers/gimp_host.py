"""The only module that calls GIMP's API: image size and selection, progress, and a result as layers.

A result goes in as one layer group named after the prompts and seed (taue_client.layers.EDITOR_STACK: Background,
Foreground with a layer mask made from its alpha, Composite hidden), inside one undo group, scaled to the image
when the sizes differ.
"""

from __future__ import annotations

import os
import tempfile

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

from taue_client import EDITOR_STACK, JobResult, TAUEError, group_name  # noqa: E402


def image_size(image) -> tuple:
    return image.get_width(), image.get_height()


def selection_box(image):
    """The selection's bounds (x, y, w, h), or None without a selection."""
    _, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    return (x1, y1, x2 - x1, y2 - y1) if non_empty else None


class Progress:
    """Gimp.progress_* for a job: the status bar (or the batch console) follows it."""

    def __init__(self, title: str = "TAUE Layers"):
        self.title = title
        Gimp.progress_init(f"{title}: sending")

    def __call__(self, fraction: float, text: str) -> None:
        Gimp.progress_set_text(f"{self.title}: {text}")
        Gimp.progress_update(max(0.0, min(1.0, fraction)))

    def end(self) -> None:
        Gimp.progress_end()


def insert(image, result: JobResult):
    """Add the result on top of the image's layers; returns the group."""
    if image.get_base_type() != Gimp.ImageBaseType.RGB:
        raise TAUEError("settings", "TAUE layers are RGB: convert the image first (Image > Mode > RGB), or use "
                                    "File > Create > TAUE Layers for a new image.")
    width, height = image_size(image)
    name = group_name(result.metadata)
    image.undo_group_start()
    try:
        with tempfile.TemporaryDirectory(prefix="taue-gimp-") as folder:
            group = Gimp.GroupLayer.new(image, name)
            image.insert_layer(group, None, 0)
            for spec in EDITOR_STACK:  # bottom to top: each goes on top of the group
                layer = _load_layer(image, folder, spec.key, result.layers[spec.key])
                layer.set_name(spec.name)
                image.insert_layer(layer, group, 0)
                if (layer.get_width(), layer.get_height()) != (width, height):
                    layer.scale(width, height, False)
                    layer.set_offsets(0, 0)
                if spec.alpha_as_mask:
                    layer.add_mask(layer.create_mask(Gimp.AddMaskType.ALPHA_TRANSFER))
                layer.set_visible(spec.visible)
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return group


def _load_layer(image, folder: str, key: str, png: bytes):
    path = os.path.join(folder, f"{key}.png")
    with open(path, "wb") as f:
        f.write(png)
    layer = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(path))
    if layer is None:  # GIMP answers None, not an exception
        raise TAUEError("protocol", f"GIMP could not read the server's {key} layer: is the server a TAUE server?")
    return layer
