#!/usr/bin/env bash
# Screenshot of the plug-in's procedure dialog in real GIMP 3 on a virtual screen, for the README:
# docs/gimp-dialog.png. Needs root, Xvfb, and the GIMP 3 root of tools/gimp_root.sh (with the warmed profile that
# tests/test_gimp_e2e.py caches in it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(bash tools/gimp_root.sh)
SHOT="$ROOT/tmp/taue-shot"
rm -rf "$SHOT" && mkdir -p "$SHOT"
cp -r "$ROOT/var/cache/taue-gimp-profile" "$SHOT/profile"
python3 tools/package_plugins.py gimp >/dev/null
cp -r dist/gimp/taue-layers "$SHOT/profile/plug-ins/"
cat > "$SHOT/batch.py" <<'PY'
from gi.repository import Gimp
image = Gimp.Image.new(640, 480, Gimp.ImageBaseType.RGB)
layer = Gimp.Layer.new(image, "Artwork", 640, 480, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
image.insert_layer(layer, None, 0)
Gimp.Display.new(image)
procedure = Gimp.get_pdb().lookup_procedure("python-fu-taue-layers")
config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", [layer])
config.set_property("foreground-prompt", "a red vintage bicycle")
config.set_property("background-prompt", "a cobblestone street at dusk")
procedure.run(config)
PY
Xvfb :99 -screen 0 1400x1000x24 -listen tcp -ac >/dev/null 2>&1 &
XVFB=$!
sleep 2
chroot "$ROOT" env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 DISPLAY=127.0.0.1:99 \
  GIMP3_DIRECTORY=/tmp/taue-shot/profile timeout 90 gimp-3.0 --no-splash --batch-interpreter python-fu-eval \
  -b - < "$SHOT/batch.py" >/dev/null 2>&1 &
GIMP=$!
sleep 40  # GIMP's start and the dialog
.venv/bin/python -c "
from PIL import ImageGrab
ImageGrab.grab(xdisplay='127.0.0.1:99').crop((0, 0, 414, 519)).save('docs/gimp-dialog.png')"
kill $GIMP $XVFB 2>/dev/null || true
pkill -f "gimp-3.0 --no-splash" 2>/dev/null || true
rm -rf "$SHOT"
echo docs/gimp-dialog.png
