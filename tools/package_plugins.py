"""Build the editor plug-ins: each gets its own copy of taue_client (the one client, kept in one place in the repo).

    python tools/package_plugins.py krita [--out dist]   # dist/krita/ (pykrita layout) and dist/taue_layers-krita.zip
    python tools/package_plugins.py gimp [--out dist]    # dist/gimp/taue-layers/ and dist/taue-layers-gimp.zip

The Krita zip installs with Tools > Scripts > Import Python Plugin from File; the folder is what Krita's pykrita
folder holds (tests put it on PYTHONPATH). The GIMP folder goes into GIMP's plug-ins folder (Edit > Preferences >
Folders > Plug-ins), e.g. ~/.config/GIMP/3.0/plug-ins/taue-layers/.
"""

from __future__ import annotations

import argparse
import shutil
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLIENT = REPO / "taue_client"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def _copy_package(source: Path, target: Path) -> Path:
    """The plug-in's own package folder, with taue_client copied into it."""
    shutil.copytree(source, target, ignore=IGNORE)
    shutil.copytree(CLIENT, target / "taue_client", ignore=IGNORE)
    return target


def _empty(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _zip(folder: Path, zip_path: Path) -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return zip_path


def build_krita(out: Path) -> tuple[Path, Path]:
    """dist/krita/{taue_layers.desktop, taue_layers/} and the zip of it."""
    folder = _empty(out / "krita")
    source = REPO / "krita_plugin"
    shutil.copy2(source / "taue_layers.desktop", folder / "taue_layers.desktop")
    _copy_package(source / "taue_layers", folder / "taue_layers")
    return folder, _zip(folder, out / "taue_layers-krita.zip")


def build_gimp(out: Path) -> tuple[Path, Path]:
    """dist/gimp/taue-layers/ (a folder for GIMP's plug-ins folder) and dist/taue-layers-gimp.zip."""
    folder = _empty(out / "gimp")
    plugin = _copy_package(REPO / "gimp_plugin" / "taue-layers", folder / "taue-layers")
    (plugin / "taue-layers.py").chmod(0o755)  # GIMP runs only executable plug-ins
    return plugin, _zip(folder, out / "taue-layers-gimp.zip")


BUILDERS = {"krita": build_krita, "gimp": build_gimp}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plugin", choices=sorted(BUILDERS))
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in BUILDERS[args.plugin](args.out.resolve()):
        print(path)


if __name__ == "__main__":
    main()
