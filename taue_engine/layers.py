"""What a layered document holds: the layers of one result, their names, order and visibility.

The PSD and OpenRaster writers and the editor plug-ins all build the same stack, described once in
`taue_client.layers.result_stack` (the plug-ins embed that package): a group named after the prompts and seed
holding, bottom to top, `Background`, the object layer(s) (RGBA: the alpha becomes a layer mask where the format
has masks; one object is `Foreground`, several are named after their prompts, later in front), `Composite`
(hidden: the harmonised scene) and the hidden mask layer(s) (m_obj, for selections).
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from taue_client.layers import group_name, object_prompts, result_stack

__all__ = ["DocumentLayer", "document_layers", "group_name", "visible_projection"]


@dataclass(frozen=True)
class DocumentLayer:
    name: str
    image: Image.Image
    visible: bool
    key: str  # the result's layer name (foreground, background, object-1, mask-1, ...)


def document_layers(images: dict[str, Image.Image], metadata: dict) -> list[DocumentLayer]:
    """The stack of the result that `metadata` describes, bottom to top, from its layer images by key. All layers
    must have one size."""
    stack = result_stack(object_prompts(metadata))
    missing = [spec.key for spec in stack if spec.key not in images]
    if missing:
        raise ValueError(f"the document needs the layer(s) {', '.join(missing)}")
    sizes = {images[spec.key].size for spec in stack}
    if len(sizes) != 1:
        raise ValueError(f"layers must have one size (got {sorted(sizes)})")
    layers = []
    for spec in stack:
        image = images[spec.key]
        mode = "RGBA" if spec.alpha_as_mask else ("L" if spec.key == "mask" or spec.key.startswith("mask-") else "RGB")
        layers.append(DocumentLayer(spec.name, image.convert(mode), spec.visible, spec.key))
    return layers


def visible_projection(layers: list[DocumentLayer]) -> Image.Image:
    """What the document shows with its default visibility: the objects over the background."""
    canvas = Image.new("RGBA", layers[0].image.size, (255, 255, 255, 255))
    for layer in layers:
        if layer.visible:
            canvas = Image.alpha_composite(canvas, layer.image.convert("RGBA"))
    return canvas.convert("RGB")
