"""The only module that calls Krita's API: documents, selections, settings, and turning a result into layers.

A result goes in as one group named after the prompts and seed (taue_client.layers.editor_stack, bottom to top:
Background, each object (Foreground when there is one) with a transparency mask holding its alpha, Composite
hidden). Krita 5.1's Python API can
make a transparency mask but not give it pixels (createNode's mask has no selection: setPixelData does nothing and
saving crashes), so the group comes from the server's PSD, whose layer mask Krita's own importer turns into a real
transparency mask: the PSD is opened as a hidden document, scaled to the target's size, trimmed to the editor
stack, and its group is copied into the target with one addChildNode, one step in Krita's undo history.
"""

from __future__ import annotations

import os
import tempfile

from .taue_client import EDITOR_STACK, JobResult, TAUEError, editor_stack, group_name, object_prompts

SETTINGS_GROUP = "taue_layers"


class KritaHost:
    def __init__(self, krita):
        self.krita = krita  # Krita.instance()

    # ------------------------------------------------------------------ settings (Krita's kritarc)
    def read_setting(self, key: str, default: str) -> str:
        return self.krita.readSetting(SETTINGS_GROUP, key, default)

    def write_setting(self, key: str, value: str) -> None:
        self.krita.writeSetting(SETTINGS_GROUP, key, value)

    # ------------------------------------------------------------------ documents
    def active_document(self):
        return self.krita.activeDocument()

    def is_open(self, document) -> bool:
        return any(open_document == document for open_document in self.krita.documents())

    @staticmethod
    def document_size(document) -> tuple:
        return document.width(), document.height()

    @staticmethod
    def selection_box(document):
        """The selection's bounds (x, y, w, h) in pixels, or None without a selection."""
        selection = document.selection()
        if selection is None or selection.width() <= 0 or selection.height() <= 0:
            return None
        return selection.x(), selection.y(), selection.width(), selection.height()

    def new_document(self, width: int, height: int, name: str):
        document = self.krita.createDocument(width, height, name, "RGBA", "U8", "", 300.0)
        window = self.krita.activeWindow()
        if window is not None:
            window.addView(document)
        return document

    def open_psd(self, data: bytes, name: str):
        """Open a result's PSD as a new document in a window."""
        document = self._open_psd(data)
        window = self.krita.activeWindow()
        if window is not None:
            window.addView(document)
        return document

    def _open_psd(self, data: bytes):
        handle, path = tempfile.mkstemp(prefix="taue-", suffix=".psd")
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        try:
            document = self.krita.openDocument(path)
        finally:
            os.unlink(path)
        if document is None:
            raise TAUEError("protocol", "Krita could not read the result's PSD: is the server a TAUE server?")
        return document

    # ------------------------------------------------------------------ layers
    def insert(self, document, result: JobResult) -> str:
        """Add the result to `document` as a layer group on top of its layers; returns the group's name."""
        if "psd" not in result.documents:
            raise TAUEError("protocol", "The result has no PSD to insert: download it with the job's layers.")
        source = self._open_psd(result.documents["psd"])
        try:
            source.setBatchmode(True)
            if (source.width(), source.height()) != (document.width(), document.height()):
                source.scaleImage(document.width(), document.height(), int(document.xRes()), int(document.yRes()),
                                  "Bicubic")
                source.waitForDone()
            group = editor_group(source, editor_stack(object_prompts(result.metadata)))
            name = group_name(result.metadata)
            copy = group.duplicate()
            copy.setName(name)
            root = document.rootNode()
            top = root.childNodes()
            root.addChildNode(copy, top[-1] if top else None)
            document.waitForDone()
            document.refreshProjection()
        finally:
            source.close()
        return name


def editor_group(source, stack=EDITOR_STACK):
    """The result's group in an opened result PSD, trimmed to `stack` (the editor's layers of this result: one per
    object) with its visibility and mask names."""
    groups = [node for node in source.rootNode().childNodes() if node.type() == "grouplayer"]
    if len(groups) != 1:
        raise TAUEError("protocol", "The result's PSD does not hold one TAUE layer group: is the server a TAUE server?")
    group = groups[0]
    wanted = {spec.name: spec for spec in stack}
    found = {}
    for node in group.childNodes():
        name = node.name().rstrip("\x00")
        if name not in wanted:
            node.remove()
            continue
        found[name] = node
        node.setVisible(wanted[name].visible)
        for mask in node.childNodes():
            if mask.type() == "transparencymask":
                mask.setName(f"{name} alpha")
    missing = [name for name in wanted if name not in found]
    if missing:
        raise TAUEError("protocol", f"The result's PSD lacks the layers {missing}: is the server a TAUE server?")
    for spec in stack:
        if spec.alpha_as_mask and not any(mask.type() == "transparencymask" for mask in found[spec.name].childNodes()):
            raise TAUEError("protocol", f"The result's PSD has no mask on '{spec.name}': is the server up to date?")
    source.waitForDone()
    return group
