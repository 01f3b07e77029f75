"""Contact sheets: the layers of one or more results side by side, for a person to look at."""

from __future__ import annotations

from PIL import Image

COLUMNS = ("foreground_on_green", "foreground", "background", "composite", "mask")


def checkerboard(size: tuple[int, int], cell: int = 8) -> Image.Image:
    """The usual editor backdrop that makes transparency visible."""
    width, height = size
    board = Image.new("RGB", size, (204, 204, 204))
    dark = Image.new("RGB", (cell, cell), (153, 153, 153))
    for y in range(0, height, cell):
        for x in range((y // cell) % 2 * cell, width, 2 * cell):
            board.paste(dark, (x, y))
    return board


def layer_tiles(result) -> list[Image.Image]:
    """The five layers of a TAUEResult as RGB tiles, the RGBA foreground over a checkerboard."""
    tiles = []
    for name in COLUMNS:
        layer = getattr(result, name)
        if layer.mode == "RGBA":
            backdrop = checkerboard(layer.size, cell=max(4, layer.size[0] // 16))
            backdrop.paste(layer, (0, 0), layer)
            layer = backdrop
        tiles.append(layer.convert("RGB"))
    return tiles


def contact_sheet(results, tile: int = 256, gap: int = 4) -> Image.Image:
    """One row per result: foreground on green, RGBA foreground, background, composite, mask."""
    rows = [layer_tiles(r) for r in results]
    width = len(COLUMNS) * tile + (len(COLUMNS) + 1) * gap
    height = len(rows) * tile + (len(rows) + 1) * gap
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    for r, tiles in enumerate(rows):
        for c, image in enumerate(tiles):
            sheet.paste(image.resize((tile, tile), Image.NEAREST), (gap + c * (tile + gap), gap + r * (tile + gap)))
    return sheet
