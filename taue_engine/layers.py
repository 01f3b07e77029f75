"""What a layered document holds: the layers of one result, their names, order and visibility.

The PSD and OpenRaster writers (and the editor plug-ins, through the server) all build the same stack, so it is
described once here: a group named after the prompts and seed holding, bottom to top, `Background`, `Foreground`
(RGBA: its alpha becomes a layer mask where the format has masks), `Composite` (hidden: the harmonised scene, to
compare or to use instead) and `Object mask` (hidden: m_obj, for selections).
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

GROUP_NAME_LIMIT = 120  # characters; editors show long names badly and PSD caps them at 255


@dataclass(frozen=True)
class DocumentLayer:
    name: str
    image: Image.Image
    visible: bool
    key: str  # the result's layer name (foreground, background, ...)


def group_name(metadata: dict) -> str:
    """'TAUE: <foreground> / <background> (seed N)', shortened to GROUP_NAME_LIMIT characters."""
    prompts = metadata.get("prompts", {})
    name = f"TAUE: {prompts.get('foreground', '?')} / {prompts.get('background', '?')} (seed {metadata.get('seed')})"
    if len(name) > GROUP_NAME_LIMIT:
        name = name[: GROUP_NAME_LIMIT - 1] + "\u2026"
    return name


def document_layers(foreground: Image.Image, background: Image.Image, composite: Image.Image,
                    mask: Image.Image) -> list[DocumentLayer]:
    """The stack, bottom to top. All layers must have one size."""
    sizes = {image.size for image in (foreground, background, composite, mask)}
    if len(sizes) != 1:
        raise ValueError(f"layers must have one size (got {sorted(sizes)})")
    return [
        DocumentLayer("Background", background.convert("RGB"), True, "background"),
        DocumentLayer("Foreground", foreground.convert("RGBA"), True, "foreground"),
        DocumentLayer("Composite", composite.convert("RGB"), False, "composite"),
        DocumentLayer("Object mask", mask.convert("L"), False, "mask"),
    ]


def visible_projection(layers: list[DocumentLayer]) -> Image.Image:
    """What the document shows with its default visibility: the foreground over the background."""
    canvas = Image.new("RGBA", layers[0].image.size, (255, 255, 255, 255))
    for layer in layers:
        if layer.visible:
            canvas = Image.alpha_composite(canvas, layer.image.convert("RGBA"))
    return canvas.convert("RGB")
