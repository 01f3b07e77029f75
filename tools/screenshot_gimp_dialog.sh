#!/usr/bin/env bash
# Screenshot of the plug-in's procedure dialog in real GIMP 3 on a virtual screen, for the README:
# docs/gimp-dialog.png. Needs root, Xvfb, and the GIMP 3 root of tools/gimp_root.sh (with the warmed profile that
# tests/test_gimp_e2e.py caches in it). A taue-server on 127.0.0.1:7860 serves two copies of the toy from a models
# folder and the toy's pink LoRA, so that the dialog shows what a server offers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(bash tools/gimp_root.sh)
SHOT="$ROOT/tmp/taue-shot"
rm -rf "$SHOT" && mkdir -p "$SHOT"
cp -r "$ROOT/var/cache/taue-gimp-profile" "$SHOT/profile"
python3 tools/package_plugins.py gimp >/dev/null
cp -r dist/gimp/taue-layers "$SHOT/profile/plug-ins/"
mkdir -p "$SHOT/models" "$SHOT/data/styles"
cp -r taue_engine/toy/model "$SHOT/models/toy-a" && cp -r taue_engine/toy/model "$SHOT/models/toy-b"
echo '{"description": "the pink LoRA", "loras": [{"name": "toy-pink", "scale": 0.8}]}' > "$SHOT/data/styles/pink.json"
.venv/bin/taue-server --port 7860 --models-dir "$SHOT/models" --model toy-a --lora-dir tests/data/loras \
  --data-dir "$SHOT/data" >/dev/null 2>&1 &
SERVER=$!
until curl -sf http://127.0.0.1:7860/api/v1/health | grep -q '"state":"ready"'; do sleep 1; done
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
config.set_property("server-url", "http://127.0.0.1:7860")
config.set_property("model", "toy-b")
config.set_property("loras", "toy-pink:0.8")
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
# the dialog's window, top left on the virtual screen (measured on the grabbed screen: its width is set by the
# widest line, the server's samplers; re-measure when the dialog changes)
ImageGrab.grab(xdisplay='127.0.0.1:99').crop((0, 0, 548, 841)).save('docs/gimp-dialog.png')"
kill $GIMP $XVFB $SERVER 2>/dev/null || true
pkill -f "gimp-3.0 --no-splash" 2>/dev/null || true
rm -rf "$SHOT"
echo docs/gimp-dialog.png
