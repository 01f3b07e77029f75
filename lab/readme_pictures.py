"""Regenerate the README's pictures from the commands' own files.

    python -m lab.readme_pictures [taue-out]                  # docs/demo.png from `bash run.sh demo`
    python -m lab.readme_pictures --objects two two-bg/1      # docs/objects.png from docs/layers.md's commands
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from lab.sheet import COLUMNS, checkerboard, contact_sheet

SHOWN, GAP = 256, 4  # a picture is shown at most this large, enlarged by a whole factor (every pixel the same size)
MASK_COLOURS = ((220, 30, 30), (245, 220, 30), (30, 70, 220))


class _Saved:
    """A result read back from the files `TAUEResult.save` wrote."""

    def __init__(self, folder: Path):
        for name in COLUMNS:
            setattr(self, name, Image.open(folder / f"{name}.png"))


def _shown(side: int, most: int = SHOWN) -> int:
    """The tile for a picture `side` pixels wide: the largest whole multiple of it up to `most` (never smaller)."""
    return side * max(1, most // side)


def _over_checkerboard(layer: Image.Image) -> Image.Image:
    backdrop = checkerboard(layer.size, cell=max(4, layer.size[0] // 16))
    backdrop.paste(layer, (0, 0), layer)
    return backdrop


def _masks(folder: Path) -> Image.Image:
    """Each object's mask-<n>.png in its own colour on black."""
    paths = sorted(folder.glob("mask-*.png"), key=lambda p: int(p.stem.split("-")[1]))
    canvas = None
    for path, colour in zip(paths, MASK_COLOURS):
        mask = np.asarray(Image.open(path), dtype=np.float32)[..., None] / 255
        canvas = (np.zeros(mask.shape[:2] + (3,)) if canvas is None else canvas) + mask * np.array(colour)
    return Image.fromarray(canvas.clip(0, 255).astype(np.uint8))


def objects_figure(first: Path, again: Path) -> Image.Image:
    """Composite, background, each object layer, the masks; then the new background's composite and background."""
    tiles = [Image.open(first / "composite.png"), Image.open(first / "background.png")]
    tiles += [_over_checkerboard(Image.open(p).convert("RGBA"))
              for p in sorted(first.glob("object-*.png"), key=lambda p: int(p.stem.split("-")[1]))]
    tiles += [_masks(first), Image.open(again / "composite.png"), Image.open(again / "background.png")]
    side = _shown(tiles[0].size[0], most=160)  # eight tiles in a row: 64 px shown 2x, 128 px as they are
    sheet = Image.new("RGB", (len(tiles) * (side + GAP) + GAP, side + 2 * GAP), (255, 255, 255))
    for i, tile in enumerate(tiles):
        sheet.paste(tile.convert("RGB").resize((side, side), Image.NEAREST), (GAP + i * (side + GAP), GAP))
    return sheet


def main() -> None:
    if sys.argv[1:2] == ["--objects"]:
        out = Path(__file__).resolve().parents[1] / "docs" / "objects.png"
        objects_figure(Path(sys.argv[2]), Path(sys.argv[3])).save(out)
    else:
        folder = Path(sys.argv[1] if len(sys.argv) > 1 else "taue-out")
        out = Path(__file__).resolve().parents[1] / "docs" / "demo.png"
        saved = _Saved(folder)
        contact_sheet([saved], tile=_shown(saved.composite.size[0])).save(out)
    print(out)


if __name__ == "__main__":
    main()
