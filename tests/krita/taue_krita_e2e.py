"""Run inside real Krita by `kritarunner -s taue_krita_e2e -f main` (tests/test_krita_e2e.py starts it).

Drives the plug-in's own panel logic (taue_layers.panel.Panel with the real KritaHost) against a real taue-server:
a document with a rectangular selection, Generate, wait with the UI thread's poll, and the result inserted (last, the
docker's own widgets run a job: previews, history pictures). Then it
reads the document back through Krita's API and writes what it found (and the pixels of every layer and of the
mask) to $TAUE_OUT, with a verdict: kritarunner exits 0 whatever happens, so the test reads the verdict.
"""

import json
import os
import time
import traceback

DOC_W, DOC_H = 100, 75  # not multiples of 8: the panel generates at 96x72 and the layers are scaled back
SELECTION = (20, 10, 50, 40)  # x, y, w, h


class RecordingView:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def record(*args):
            self.calls.append([name, *[a if isinstance(a, (str, int, float, bool)) else repr(a)[:200]
                                       for a in args]])
        return record


def main(*_):
    out = os.environ["TAUE_OUT"]
    report = {"ok": False, "stage": "start"}
    try:
        run(out, report)
        report["ok"] = True
    except Exception:
        report["error"] = traceback.format_exc()
    with open(os.path.join(out, "verdict.json"), "w") as f:
        json.dump(report, f, indent=1)


def run(out, report):
    from krita import InfoObject, Krita, Selection

    from taue_layers.krita_host import KritaHost
    from taue_layers.panel import Form, Panel

    class HeadlessKritaHost(KritaHost):
        """kritarunner has no window, so no view and no active document (setActiveDocument needs a view, and
        openWindow crashes it): the document made here stands in as the active one. Everything else is real."""

        def active_document(self):
            return document

    krita = Krita.instance()
    krita.setBatchmode(True)
    report["krita_version"] = krita.version()
    host = HeadlessKritaHost(krita)
    host.write_setting("url", os.environ["TAUE_URL"])
    host.write_setting("token", "")

    report["stage"] = "document"
    document = krita.createDocument(DOC_W, DOC_H, "e2e", "RGBA", "U8", "", 72.0)
    document.setBatchmode(True)
    selection = Selection()
    selection.select(*SELECTION, 255)
    document.setSelection(selection)

    report["stage"] = "generate"
    view = RecordingView()
    panel = Panel(host, view)
    panel.check_connection()
    panel.generate(Form(foreground="a red star", background="a blue striped background", seed=7, random_seed=False,
                        steps=int(os.environ.get("TAUE_STEPS", "4"))))
    wait(panel)
    report["view_calls"] = list(view.calls)  # the first job's calls only
    report["running_at_end"] = panel.running
    report["history"] = [result.id for result in panel.history]
    if not panel.history:
        raise AssertionError(f"no result arrived: {view.calls[-5:]}")
    result = panel.history[0]
    report["job"] = {"id": result.id, "request": result.job["request"]}

    report["stage"] = "read back"
    document.waitForDone()
    root = document.rootNode()
    report["root"] = [[node.name(), node.type()] for node in root.childNodes()]
    group = root.childNodes()[-1]
    report["group"] = {"name": group.name(), "type": group.type(), "layers": []}
    for node in group.childNodes():
        bounds = node.bounds()
        entry = {"name": node.name(), "type": node.type(), "visible": node.visible(),
                 "bounds": [bounds.x(), bounds.y(), bounds.width(), bounds.height()],
                 "children": [[child.name(), child.type()] for child in node.childNodes()]}
        pixels = bytes(node.pixelData(0, 0, DOC_W, DOC_H))
        with open(os.path.join(out, f"layer-{node.name()}.bgra"), "wb") as f:
            f.write(pixels)
        for child in node.childNodes():
            if child.type() == "transparencymask":
                mask = bytes(child.pixelData(0, 0, DOC_W, DOC_H))
                entry["mask_bytes"] = len(mask)
                with open(os.path.join(out, f"mask-{node.name()}.a8"), "wb") as f:
                    f.write(mask)
        report["group"]["layers"].append(entry)
    document.refreshProjection()
    document.waitForDone()
    with open(os.path.join(out, "projection.bgra"), "wb") as f:
        f.write(bytes(document.pixelData(0, 0, DOC_W, DOC_H)))

    report["stage"] = "save"
    report["saved_kra"] = bool(document.saveAs(os.path.join(out, "result.kra")))
    report["exported_psd"] = bool(document.exportImage(os.path.join(out, "result.psd"), InfoObject()))
    report["exported_png"] = bool(document.exportImage(os.path.join(out, "projection.png"), InfoObject()))
    report["size"] = [document.width(), document.height()]

    report["stage"] = "two objects"  # the first object in the selection, the second in another box
    steps = int(os.environ.get("TAUE_STEPS", "4"))
    if not panel.add_object(Form(foreground="a red star", background="", steps=steps)):
        raise AssertionError(f"add object refused: {view.calls[-2:]}")
    other = Selection()
    other.select(55, 20, 40, 40, 255)
    document.setSelection(other)
    panel.generate(Form(foreground="a yellow circle", background="a blue striped background", seed=8,
                        random_seed=False, steps=steps))
    wait(panel)
    if len(panel.history) != 2:
        raise AssertionError(f"the two-object job did not arrive: {view.calls[-5:]}")
    report["objects_job"] = {"id": panel.history[0].id, "request": panel.history[0].job["request"]}
    report["objects_group"] = read_group(document, document.rootNode().childNodes()[-1], out, "objects")

    report["stage"] = "new background"
    panel.new_background(Form(background="a white background", seed=3, random_seed=False), 0)
    wait(panel)
    if len(panel.history) != 3:
        raise AssertionError(f"the new background did not arrive: {view.calls[-5:]}")
    report["background_job"] = {"id": panel.history[0].id, "request": panel.history[0].job["request"]}
    report["background_group"] = read_group(document, document.rootNode().childNodes()[-1], out, "new-background")
    report["root_after"] = [[node.name(), node.type()] for node in document.rootNode().childNodes()]

    report["stage"] = "docker"  # the docker's own widgets: previews while it runs, then pictures in the history
    report["docker"] = drive_docker(HeadlessKritaHost(krita), out)
    report["stage"] = "choices"  # model, LoRA, sampler and steps from the docker, on a server with a models folder
    host.write_setting("url", os.environ["TAUE_CHOICES_URL"])
    report["choices"] = choose_in_docker(HeadlessKritaHost(krita), out)
    document.close()  # an open document crashes kritarunner on exit (after the verdict, but noisily)
    report["stage"] = "done"


def drive_docker(host, out):
    """Generate from the docker's widgets (Krita's own Qt) and report what it showed: the preview captions seen
    while the job ran, the history's icon, the picture and the layer strip."""
    from PyQt5.QtWidgets import QApplication

    from taue_layers.docker import TAUEDocker
    from taue_layers.qt import BINDING

    docker = TAUEDocker()
    docker.panel.host = host
    docker.foreground.setText("a red star")
    docker.background.setText("a blue striped background")
    docker.random_seed.setChecked(False)
    docker.seed.setValue(11)
    docker.steps.setValue(int(os.environ.get("TAUE_DOCKER_STEPS", "30")))
    docker.generate_button.click()
    captions = []
    deadline = time.monotonic() + float(os.environ.get("TAUE_TIMEOUT", "240"))
    while (docker.panel.running or not docker.panel.events.empty()) and time.monotonic() < deadline:
        QApplication.processEvents()  # the docker's timer polls the panel
        pixmap = docker.picture.pixmap()
        if docker.caption.text().startswith("Preview") and pixmap is not None and not pixmap.isNull():
            if not captions or captions[-1] != docker.caption.text():
                captions.append(docker.caption.text())
        time.sleep(0.02)
    QApplication.processEvents()
    docker.timer.stop()
    item = docker.history.item(0)
    strip = [docker.strip.itemAt(i).widget() for i in range(docker.strip.count())]
    picture = docker.picture.pixmap()
    docker.grab().save(os.path.join(out, "docker.png"))
    return {"binding": BINDING, "preview_captions": captions, "history": docker.history.count(),
            "item_text": item.text() if item else None, "item_icon": bool(item and not item.icon().isNull()),
            "picture": [picture.width(), picture.height()] if picture is not None and not picture.isNull() else None,
            "caption": docker.caption.text(), "message": docker.message.text(),
            "strip": [cell.toolTip() for cell in strip if cell is not None and not cell.pixmap().isNull()]}


def choose_in_docker(host, out):
    """Choose the second model, the pink LoRA at 0.8, dpmpp_2m and 4 steps in the docker's lists (filled from the
    server), generate, and report the job's request and record, and what a new docker remembers."""
    from PyQt5.QtWidgets import QApplication

    from taue_layers.docker import TAUEDocker

    docker = TAUEDocker()
    docker.panel.host = host
    deadline = time.monotonic() + 60
    while docker.model_box.count() < 3 and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.02)
    offered = {name: [box.itemData(i) for i in range(box.count())]
               for name, box in (("models", docker.model_box), ("styles", docker.style_box),
                                 ("loras", docker.lora_box), ("samplers", docker.sampler_box))}
    if "toy-b" not in offered["models"]:
        raise AssertionError(f"no offer arrived: {offered}, {docker.light.text()!r}, {docker.message.text()!r}")
    docker.model_box.setCurrentIndex(offered["models"].index("toy-b"))
    docker.lora_box.setCurrentIndex(offered["loras"].index("toy-pink"))
    docker.lora_scale.setValue(0.8)
    docker.panel.add_lora(docker.lora_box.currentData(), docker.lora_scale.value())
    docker.sampler_box.setCurrentIndex(offered["samplers"].index("dpmpp_2m"))
    docker.steps.setValue(4)
    docker.foreground.setText("a pink star")
    docker.background.setText("a white background")
    docker.random_seed.setChecked(False)
    docker.seed.setValue(2)
    docker.grab().save(os.path.join(out, "docker-choices.png"))
    docker.generate_button.click()
    deadline = time.monotonic() + float(os.environ.get("TAUE_TIMEOUT", "240"))
    while (docker.panel.running or not docker.panel.events.empty()) and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.02)
    QApplication.processEvents()
    docker.timer.stop()
    if not docker.panel.history:
        raise AssertionError(f"the chosen job did not arrive: {docker.message.text()}")
    result = docker.panel.history[0]
    again = TAUEDocker()  # what Krita's settings kept
    again.timer.stop()
    form = again.form()
    return {"offered": offered, "request": result.job["request"], "metadata": result.metadata,
            "message": docker.message.text(), "remembered": {"model": again.panel.remembered_choice().model,
                                                             "scheduler": form.scheduler, "steps": form.steps,
                                                             "loras": again.panel.loras}}


def wait(panel):
    """What the docker's timer does: poll on the UI thread until the job is over and its result inserted."""
    from PyQt5.QtWidgets import QApplication

    deadline = time.monotonic() + float(os.environ.get("TAUE_TIMEOUT", "240"))
    while (panel.running or not panel.events.empty()) and time.monotonic() < deadline:
        QApplication.processEvents()
        panel.poll()
        time.sleep(0.05)
    panel.poll()


def read_group(document, group, out, prefix):
    """A group's layers (name, type, visibility, masks) as the report describes them; pixels to files."""
    document.waitForDone()
    entry = {"name": group.name(), "type": group.type(), "layers": []}
    for node in group.childNodes():
        layer = {"name": node.name(), "type": node.type(), "visible": node.visible(),
                 "children": [[child.name(), child.type()] for child in node.childNodes()]}
        with open(os.path.join(out, f"{prefix}-layer-{node.name()}.bgra"), "wb") as f:
            f.write(bytes(node.pixelData(0, 0, DOC_W, DOC_H)))
        for child in node.childNodes():
            if child.type() == "transparencymask":
                with open(os.path.join(out, f"{prefix}-mask-{node.name()}.a8"), "wb") as f:
                    f.write(bytes(child.pixelData(0, 0, DOC_W, DOC_H)))
        entry["layers"].append(layer)
    return entry
