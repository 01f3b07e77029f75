"""Regenerate the README's pictures from the demo's own files: python docs/make_readme_pictures.py [taue-out]."""

import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from taue_engine.sheet import COLUMNS, contact_sheet  # noqa: E402


class _Saved:
    """A result read back from the files `TAUEResult.save` wrote."""

    def __init__(self, folder: Path):
        for name in COLUMNS:
            setattr(self, name, Image.open(folder / f"{name}.png"))


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "taue-out")
    out = Path(__file__).with_name("demo.png")
    contact_sheet([_Saved(folder)], tile=192).save(out)
    print(out)


if __name__ == "__main__":
    main()
