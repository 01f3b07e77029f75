"""What a layered document holds: the layers of one result, their names, order and visibility.

The PSD and OpenRaster writers and the editor plug-ins all build the same stack, described once in
`taue_client.layers.STACK` (the plug-ins embed that package): a group named after the prompts and seed holding,
bottom to top, `Background`, `Foreground` (RGBA: its alpha becomes a layer mask where the format has masks),
`Composite` (hidden: the harmonised scene, to compare or to use instead) and `Object mask` (hidden: m_obj, for
selections).
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from taue_client.layers import STACK, group_name

__all__ = ["DocumentLayer", "document_layers", "group_name", "visible_projection"]


@dataclass(frozen=True)
class DocumentLayer:
    name: str
    image: Image.Image
    visible: bool
    key: str  # the result's layer name (foreground, background, ...)


def document_layers(foreground: Image.Image, background: Image.Image, composite: Image.Image,
                    mask: Image.Image) -> list[DocumentLayer]:
    """The stack, bottom to top. All layers must have one size."""
    sizes = {image.size for image in (foreground, background, composite, mask)}
    if len(sizes) != 1:
        raise ValueError(f"layers must have one size (got {sorted(sizes)})")
    images = {"background": background.convert("RGB"), "foreground": foreground.convert("RGBA"),
              "composite": composite.convert("RGB"), "mask": mask.convert("L")}
    return [DocumentLayer(spec.name, images[spec.key], spec.visible, spec.key) for spec in STACK]


def visible_projection(layers: list[DocumentLayer]) -> Image.Image:
    """What the document shows with its default visibility: the foreground over the background."""
    canvas = Image.new("RGBA", layers[0].image.size, (255, 255, 255, 255))
    for layer in layers:
        if layer.visible:
            canvas = Image.alpha_composite(canvas, layer.image.convert("RGBA"))
    return canvas.convert("RGB")
