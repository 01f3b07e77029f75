# Batch code for `gimp-console-3.0 -i --batch-interpreter python-fu-eval -b -` (tests/test_gimp_e2e.py pipes it in).
# Calls the TAUE Layers procedures non-interactively against a real taue-server ($TAUE_URL), reads the image back,
# exports .xcf and .psd, and writes a verdict to $TAUE_OUT/verdict.json: GIMP's exit status proves nothing.
# Second part: two objects (each its own layer and mask), then New Background on that group.
import json
import os
import traceback

OUT = os.environ["TAUE_OUT"]
W, H = 100, 75  # not multiples of 8: the plug-in generates at 96x72 and scales the layers back
verdict = {"ok": False, "stage": "start"}


def run_procedure(name, **values):
    from gi.repository import Gimp

    procedure = Gimp.get_pdb().lookup_procedure(name)
    if procedure is None:
        raise AssertionError(f"{name} is not registered")
    config = procedure.create_config()
    for key, value in values.items():
        if key == "drawables":
            config.set_core_object_array(key, value)
        else:
            config.set_property(key, value)
    result = procedure.run(config)
    status = result.index(0)
    error = Gimp.get_pdb().get_last_error() if status != Gimp.PDBStatusType.SUCCESS else None
    return status, result, error


def job_of(layer):
    parasite = layer.get_parasite("taue-job")
    return None if parasite is None else json.loads(bytes(parasite.get_data()).decode())["job"]


def describe(image):
    layers = image.get_layers()
    described = []
    for layer in layers:
        entry = {"name": layer.get_name(), "group": layer.is_group(), "size": [layer.get_width(), layer.get_height()],
                 "job": job_of(layer)}
        if layer.is_group():
            entry["children"] = [{"name": child.get_name(), "visible": child.get_visible(),
                                  "size": [child.get_width(), child.get_height()],
                                  "offsets": list(child.get_offsets()[1:]),
                                  "mask": child.get_mask() is not None, "alpha": child.has_alpha()}
                                 for child in layer.get_children()]
        described.append(entry)
    return described


try:
    from gi.repository import Gimp, Gio

    verdict["gimp"] = Gimp.version()
    common = {"foreground-prompt": "a red star", "background-prompt": "a blue striped background", "seed": 7,
              "steps": 4, "server-url": os.environ["TAUE_URL"], "token": ""}

    verdict["stage"] = "filters procedure"
    image = Gimp.Image.new(W, H, Gimp.ImageBaseType.RGB)
    artwork = Gimp.Layer.new(image, "Artwork", W, H, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(artwork, None, 0)
    image.select_rectangle(Gimp.ChannelOps.REPLACE, 20, 10, 50, 40)
    status, _, error = run_procedure("python-fu-taue-layers", **{"run-mode": Gimp.RunMode.NONINTERACTIVE},
                                     image=image, drawables=[artwork], **common)
    verdict["status"] = status.value_nick
    verdict["error"] = error
    verdict["layers"] = describe(image)
    verdict["undo_enabled"] = image.undo_is_enabled()

    verdict["stage"] = "export"
    verdict["xcf"] = Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image,
                                    Gio.File.new_for_path(os.path.join(OUT, "result.xcf")), None)
    verdict["psd"] = Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image,
                                    Gio.File.new_for_path(os.path.join(OUT, "result.psd")), None)

    verdict["stage"] = "new-image procedure"
    status, result, error = run_procedure("python-fu-taue-layers-new", **{"run-mode": Gimp.RunMode.NONINTERACTIVE},
                                          width=64, height=72, **common)
    verdict["new_status"] = status.value_nick
    verdict["new_error"] = error
    if status == Gimp.PDBStatusType.SUCCESS:
        created = result.index(1)
        verdict["new_image"] = {"size": [created.get_width(), created.get_height()], "layers": describe(created)}

    verdict["stage"] = "server down"
    down = Gimp.Image.new(64, 64, Gimp.ImageBaseType.RGB)
    status, _, error = run_procedure("python-fu-taue-layers", **{"run-mode": Gimp.RunMode.NONINTERACTIVE},
                                     image=down, drawables=[], **dict(common, **{"server-url": "http://127.0.0.1:9"}))
    verdict["down_status"], verdict["down_error"] = status.value_nick, error
    verdict["down_layers"] = len(down.get_layers())

    verdict["stage"] = "bad arguments"
    status, _, error = run_procedure("python-fu-taue-layers", **{"run-mode": Gimp.RunMode.NONINTERACTIVE},
                                     image=down, drawables=[], **dict(common, **{"foreground-prompt": " "}))
    verdict["bad_status"], verdict["bad_error"] = status.value_nick, error

    verdict["stage"] = "two objects"
    scene = Gimp.Image.new(64, 64, Gimp.ImageBaseType.RGB)
    base = Gimp.Layer.new(scene, "Artwork", 64, 64, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    scene.insert_layer(base, None, 0)
    scene.select_rectangle(Gimp.ChannelOps.REPLACE, 32, 16, 28, 40)
    status, _, error = run_procedure("python-fu-taue-layers", **{"run-mode": Gimp.RunMode.NONINTERACTIVE},
                                     image=scene, drawables=[base], **dict(
                                         common, seed=11, steps=3, objects="a yellow moon @ 0.25,0.3,0.4,0.5\n",
                                         **{"key-color": "magenta"}))
    verdict["objects_status"], verdict["objects_error"] = status.value_nick, error

    verdict["stage"] = "new background"  # no server URL: the one that made the result, kept with its job id
    first = scene.get_layers()[0]
    verdict["objects_parasite"] = json.loads(bytes(first.get_parasite("taue-job").get_data()).decode())
    moon = [child for child in first.get_children() if child.get_name() == "a yellow moon"][0]
    status, _, error = run_procedure("python-fu-taue-layers-background", **{"run-mode": Gimp.RunMode.NONINTERACTIVE},
                                     image=scene, drawables=[moon], **{
                                         "background-prompt": "a sunny beach", "seed": 5, "server-url": "",
                                         "token": ""})
    verdict["background_status"], verdict["background_error"] = status.value_nick, error
    verdict["scene"] = describe(scene)
    status, _, error = run_procedure("python-fu-taue-layers-background", **{"run-mode": Gimp.RunMode.NONINTERACTIVE},
                                     image=scene, drawables=[base], **{
                                         "background-prompt": "a sunny beach", "server-url": "http://127.0.0.1:9"})
    verdict["outside_status"], verdict["outside_error"] = status.value_nick, error
    verdict["scene_psd"] = Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, scene,
                                          Gio.File.new_for_path(os.path.join(OUT, "scene.psd")), None)
    xcf = Gio.File.new_for_path(os.path.join(OUT, "scene.xcf"))
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, scene, xcf, None)
    verdict["reloaded_jobs"] = [job_of(layer) for layer in Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, xcf)
                                .get_layers()]
    verdict["stage"] = "previews"  # a longer job: its previews come and go as a layer, outside the undo history
    watched = Gimp.Image.new(64, 64, Gimp.ImageBaseType.RGB)
    art = Gimp.Layer.new(watched, "Artwork", 64, 64, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    watched.insert_layer(art, None, 0)
    status, _, error = run_procedure("python-fu-taue-layers", **{"run-mode": Gimp.RunMode.NONINTERACTIVE},
                                     image=watched, drawables=[art], **dict(common, seed=21, steps=60))
    verdict["preview_status"], verdict["preview_error"] = status.value_nick, error
    verdict["preview_layers"] = describe(watched)

    verdict["stage"] = "choices"  # a model, a LoRA, a sampler and steps, on a server with a models folder
    chosen = Gimp.Image.new(64, 64, Gimp.ImageBaseType.RGB)
    status, _, error = run_procedure("python-fu-taue-layers", **{"run-mode": Gimp.RunMode.NONINTERACTIVE},
                                     image=chosen, drawables=[], **dict(
                                         common, **{"foreground-prompt": "a pink star",
                                                    "background-prompt": "a white background",
                                                    "server-url": os.environ["TAUE_CHOICES_URL"]},
                                         seed=2, steps=4, model="toy-b", loras="toy-pink:0.8", sampler="dpmpp_2m"))
    verdict["choices_status"], verdict["choices_error"] = status.value_nick, error
    verdict["choices_layers"] = describe(chosen)
    verdict["stage"] = "done"
    verdict["ok"] = True
except Exception:
    verdict["exception"] = traceback.format_exc()

with open(os.path.join(OUT, "verdict.json"), "w") as f:
    json.dump(verdict, f, indent=1, default=str)
