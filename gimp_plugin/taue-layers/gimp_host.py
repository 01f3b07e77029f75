"""The only module that calls GIMP's API: image size and selection, progress, and a result as layers.

A result goes in as one layer group named after the prompts and seed (taue_client.editor_stack: Background, the
Foreground, or one layer per object named after its prompt, each with a layer mask made from its alpha, Composite
hidden), inside one undo group, scaled to the image when the sizes differ. GIMP keeps layer names unique, so a name
the image already has gets the result's background prompt (then its seed) instead of GIMP's '#1'. The group keeps
its server job's id and the server's URL in a persistent parasite (saved in .xcf too), so New Background finds the
job, and where it ran, from a selected layer. While a job runs, its preview is the image's top layer.
"""

from __future__ import annotations

import json
import os
import tempfile

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

from taue_client import JobResult, TAUEError, editor_stack, group_name, object_prompts  # noqa: E402
from taue_client.layers import distinct_layer_name  # noqa: E402

JOB_PARASITE = "taue-job"  # on a result's group: {"job": id, "server": URL} of the job it came from (JSON)
PREVIEW_NAME = "TAUE preview (removed when the job ends)"


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


class PreviewLayer:
    """The running job's preview as the image's top layer, replaced by each new one and removed when the job ends.
    Made with the undo stack frozen (GIMP's way for in-place previews): the undo history holds only the result."""

    def __init__(self, image):
        self.image = image  # None (File > Create: no image yet): previews only name their phase in the progress
        self.layer = None

    def show(self, png: bytes) -> None:
        if self.image is None:
            return
        width, height = image_size(self.image)
        self.image.undo_freeze()
        try:
            with tempfile.TemporaryDirectory(prefix="taue-gimp-preview-") as folder:
                layer = _load_layer(self.image, folder, "preview", png)
            layer.set_name(PREVIEW_NAME if self.layer is None else PREVIEW_NAME + " ")  # unique while both exist
            self.image.insert_layer(layer, None, 0)
            if (layer.get_width(), layer.get_height()) != (width, height):
                layer.scale(width, height, False)
                layer.set_offsets(0, 0)
            self._remove()
            layer.set_name(PREVIEW_NAME)
            self.layer = layer
        finally:
            self.image.undo_thaw()
        Gimp.displays_flush()

    def remove(self) -> None:
        if self.image is None or self.layer is None:
            return
        self.image.undo_freeze()
        try:
            self._remove()
        finally:
            self.image.undo_thaw()
        Gimp.displays_flush()

    def _remove(self) -> None:
        if self.layer is not None and self.layer.is_valid():
            self.image.remove_layer(self.layer)
        self.layer = None


def layer_names(image) -> set:
    """Every layer's name in the image, inside groups too (GIMP keeps them unique across the image)."""
    names, stack = set(), list(image.get_layers())
    while stack:
        layer = stack.pop()
        names.add(layer.get_name())
        if layer.is_group():
            stack.extend(layer.get_children())
    return names


def insert(image, result: JobResult, above=None, server: str = ""):
    """Add the result on top of the image's layers, or right above the layer `above`; returns the group. `server`
    (the URL the job ran on) is kept with the job id for New Background."""
    if image.get_base_type() != Gimp.ImageBaseType.RGB:
        raise TAUEError("settings", "TAUE layers are RGB: convert the image first (Image > Mode > RGB), or use "
                                    "File > Create > TAUE Layers for a new image.")
    width, height = image_size(image)
    name, taken, number = group_name(result.metadata), layer_names(image), 2
    while name in taken:  # the same job's result inserted again
        name, number = f"{group_name(result.metadata)} {number}", number + 1
    image.undo_group_start()
    try:
        with tempfile.TemporaryDirectory(prefix="taue-gimp-") as folder:
            group = Gimp.GroupLayer.new(image, name)
            if above is None:
                image.insert_layer(group, None, 0)
            else:
                image.insert_layer(group, above.get_parent(), image.get_item_position(above))
            record = json.dumps({"job": result.id, "server": server}).encode("utf-8")
            group.attach_parasite(Gimp.Parasite.new(JOB_PARASITE, Gimp.PARASITE_PERSISTENT, list(record)))
            taken = layer_names(image)
            for spec in editor_stack(object_prompts(result.metadata)):  # bottom to top: each goes on top of the group
                layer = _load_layer(image, folder, spec.key, result.layers[spec.key])
                name = distinct_layer_name(spec.name, result.metadata, taken)
                taken.add(name)
                layer.set_name(name)
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


def job_record(data: bytes) -> dict:
    """The job parasite's {"job", "server"}; results made before the server was kept hold the bare id."""
    text = data.decode("utf-8")
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    return record if isinstance(record, dict) and "job" in record else {"job": text, "server": ""}


def result_group(drawables):
    """(the TAUE result group holding the first selected layer, {"job": its server job's id, "server": the URL it
    ran on}): the layer itself, or the nearest group above it, that carries the job parasite."""
    if not drawables:
        raise TAUEError("settings", "Select a layer of a TAUE result group first (one made by Filters > Render > "
                                    "TAUE Layers), then choose New Background again.")
    item = drawables[0]
    if isinstance(item, Gimp.LayerMask):
        item = Gimp.Layer.from_mask(item)
    selected = item.get_name()
    while item is not None:
        parasite = item.get_parasite(JOB_PARASITE)
        if parasite is not None:
            return item, job_record(bytes(parasite.get_data()))
        item = item.get_parent()
    raise TAUEError("settings", f"The selected layer '{selected}' is not part of a TAUE result group: select a "
                                "layer inside a group made by Filters > Render > TAUE Layers (or the group itself).")


def _load_layer(image, folder: str, key: str, png: bytes):
    path = os.path.join(folder, f"{key}.png")
    with open(path, "wb") as f:
        f.write(png)
    layer = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(path))
    if layer is None:  # GIMP answers None, not an exception
        raise TAUEError("protocol", f"GIMP could not read the server's {key} layer: is the server a TAUE server?")
    return layer
