"""The Krita docker's logic against a fake `krita` module (tests/fake_krita) and a real taue-server on tiny-random.

The plug-in is imported from the zip folder that tools/package_plugins.py builds, so the packaging (its embedded
copy of taue_client) is what is tested. Every test runs twice: on PyQt5 (Krita 5) and on PyQt6 (Krita 6), the fake
krita module built on each (`pytest -k pyqt6` selects the Krita 6 run). tests/test_krita_e2e.py runs the same code
in real Krita 5.1.
"""

from __future__ import annotations

import importlib
import io
import os
import sys
import time
import zipfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
BINDINGS = {"pyqt5": "PyQt5", "pyqt6": "PyQt6"}  # both are test requirements: neither run is skipped

from tests.helpers.live import live_server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


# PyQt5 (Krita 5's binding, which the real Krita e2e also runs) is in the full suite; the fast tier runs PyQt6
@pytest.fixture(scope="module", params=[pytest.param("pyqt5", marks=pytest.mark.slow), "pyqt6"])
def plugin(request, packager, tmp_path_factory):
    """The built plug-in, imported with the fake krita module on one Qt binding; yields (taue_layers, krita, zip
    path, binding)."""
    binding = BINDINGS[request.param]
    folder, archive = packager.build_krita(tmp_path_factory.mktemp("dist"))
    sys.path[:0] = [str(REPO / "tests" / "fake_krita"), str(folder)]
    os.environ["FAKE_KRITA_QT"] = binding
    try:
        import krita

        import taue_layers
        import taue_layers.panel  # noqa: F401
        import taue_layers.qt

        assert taue_layers.qt.BINDING == binding  # the docker runs on the Qt Krita is built on
        krita.registered_at_import = krita.Krita.instance()  # the tests' `fake` fixture resets the instance
        yield taue_layers, krita, archive, binding
    finally:
        for name in [n for n in sys.modules if n == "krita" or n.startswith("taue_layers")]:
            del sys.modules[name]
        del sys.path[:2]
        os.environ.pop("FAKE_KRITA_QT", None)


def widgets(plugin):
    """QtWidgets of the binding this run of the tests is on."""
    return importlib.import_module(f"{plugin[3]}.QtWidgets")


@pytest.fixture(scope="module")
def qapp(plugin):
    application = widgets(plugin).QApplication
    return application.instance() or application([])


@pytest.fixture(scope="module")
def server(pipe, tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("krita-server"), pipe, preview_seconds=0) as live:
        yield live


@pytest.fixture
def fake(plugin):
    krita = plugin[1].Krita.reset()
    return krita


class RecordingView:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))

    def last(self, name):
        found = [call for call in self.calls if call[0] == name]
        return found[-1] if found else None


def make_panel(plugin, fake, url, token="", client_factory=None):
    from taue_layers.krita_host import KritaHost
    from taue_layers.panel import Panel

    fake.writeSetting("taue_layers", "url", url)
    fake.writeSetting("taue_layers", "token", token)
    view = RecordingView()
    kwargs = {"client_factory": client_factory} if client_factory else {}
    return Panel(KritaHost(fake), view, **kwargs), view


def drive(panel, timeout=60.0):
    """What Krita's timer does: poll on the UI thread until the job is over and every event applied."""
    deadline = time.monotonic() + timeout
    while panel.running or not panel.events.empty():
        assert time.monotonic() < deadline, "the panel did not finish"
        panel.poll()
        time.sleep(0.01)
    panel.poll()


def form(plugin, **changes):
    from taue_layers.panel import Form

    values = dict(foreground="a red star", background="a blue striped background", random_seed=False, seed=5,
                  steps=3)
    values.update(changes)
    return Form(**values)


# ---------------------------------------------------------------------------------------------------- packaging
def test_zip_holds_the_plugin_and_the_one_client(plugin):
    names = set(zipfile.ZipFile(plugin[2]).namelist())
    assert {"taue_layers.desktop", "taue_layers/__init__.py", "taue_layers/manual.html",
            "taue_layers/taue_client/api.py"} <= names
    for path in (REPO / "taue_client").glob("*.py"):  # the embedded client is the repo's, byte for byte
        assert zipfile.ZipFile(plugin[2]).read(f"taue_layers/taue_client/{path.name}") == path.read_bytes()
    assert not (REPO / "krita_plugin" / "taue_layers" / "taue_client").exists()  # no copy kept in the source tree


def test_registers_the_docker_and_the_extension(plugin, qapp):
    taue_layers, krita, _, _ = plugin
    registered = [f for f in krita.registered_at_import.dock_widget_factories if f.identifier == "taue_layers_docker"]
    assert registered and registered[0].widget_class.__name__ == "TAUEDocker"
    [extension] = [e for e in krita.registered_at_import.extensions if type(e).__name__ == "TAUEExtension"]
    QDockWidget = widgets(plugin).QDockWidget  # noqa: N806

    docker = QDockWidget()
    docker.setObjectName("taue_layers_docker")
    window = krita.Window(dockers=[QDockWidget(), docker])
    extension.setup()
    extension.createActions(window)
    [action] = window.actions
    assert (action.text, action.menu) == ("TAUE Layers", "tools/scripts")
    action.trigger()
    assert docker.isVisible()


# ---------------------------------------------------------------------------------------------------- generate
def test_generate_inserts_the_group_into_the_active_document(plugin, fake, server):
    document = fake.createDocument(100, 75, "art", "RGBA", "U8", "", 72.0)
    fake.active = document
    selection = plugin[1].Selection()
    selection.select(20, 10, 50, 40, 255)
    document.setSelection(selection)
    panel, view = make_panel(plugin, fake, server.url)
    panel.generate(form(plugin))
    assert panel.running and view.last("set_running") == ("set_running", True)
    drive(panel)

    request = panel.history[0].job["request"]
    assert (request["width"], request["height"]) == (96, 72)  # the document's size, to multiples of 8
    assert request["layout"] == {"cx": 0.45, "cy": 0.4, "w": 0.5, "h": 0.5333}  # the selection's box
    assert request["seed"] == 5 and request["steps"] == 3
    group = document.rootNode().childNodes()[-1]  # on top of the artist's layers
    assert group.name() == "TAUE: a red star / a blue striped background (seed 5)"
    assert [(n.name(), n.visible()) for n in group.childNodes()] == [
        ("Background", True), ("Foreground", True), ("Composite", False)]
    assert [(m.name(), m.type()) for m in group.childNodes()[1].childNodes()] == [
        ("Foreground alpha", "transparencymask")]
    assert [d for d in fake.open_documents if d is not document] == []  # the PSD opened to copy from is closed
    fractions = [call[1] for call in view.calls if call[0] == "show_progress"]
    assert fractions[-1] == 1.0 and any(0 < f < 1 for f in fractions)
    assert view.last("show_seed") == ("show_seed", 5)
    assert view.last("set_running") == ("set_running", False)
    assert "Added the layer group" in view.last("show_message")[2]
    [entry] = view.last("show_history")[1]
    assert entry.label == "a red star / a blue striped background (seed 5)"
    assert [name for name, _ in entry.pictures] == ["Background", "Foreground", "Composite"]
    assert entry.composite == panel.history[0].layers["composite"] and entry.composite.startswith(b"\x89PNG")


def test_previews_are_shown_while_the_job_runs(plugin, fake, server):
    from PIL import Image

    fake.active = fake.createDocument(64, 64, "a", "RGBA", "U8", "", 72.0)
    panel, view = make_panel(plugin, fake, server.url)
    panel.generate(form(plugin, steps=40))
    drive(panel)
    shown = [call[1:] for call in view.calls if call[0] == "show_preview"]
    pictures = [(png, caption) for png, caption in shown if png is not None]
    assert len(pictures) >= 2, shown
    for png, caption in pictures:
        assert Image.open(io.BytesIO(png)).size == (64, 64)
        assert caption.startswith("Preview: ") and caption.split(", step ")[0][9:] in (
            "Foreground", "Composite", "Background")
    assert shown[-1] == (None, "")  # the job ended: the docker goes back to the results
    steps = [int(caption.split("step ")[1].split("/")[0]) for _, caption in pictures]
    assert all(caption.endswith("/40") for _, caption in pictures) and len(set(zip(steps, pictures))) > 1


def test_the_servers_warning_is_shown_with_the_result(plugin, fake, server, pipe):
    document = fake.createDocument(64, 64, "art", "RGBA", "U8", "", 72.0)
    fake.active = document
    pipe.known_words = frozenset("a an red star on blue striped background".split())
    try:
        panel, view = make_panel(plugin, fake, server.url)
        panel.generate(form(plugin, foreground="a red vintage bicycle"))
        drive(panel)
    finally:
        pipe.known_words = None
    kind, text = view.last("show_message")[1:]
    assert kind == "warning" and "Added the layer group" in text and "vintage, bicycle" in text
    assert "the key backdrop did not form" in text  # what tiny-random's foreground run found


def test_result_is_scaled_to_the_document(plugin, fake, server):
    document = fake.createDocument(101, 67, "odd", "RGBA", "U8", "", 72.0)
    fake.active = document
    panel, view = make_panel(plugin, fake, server.url)
    panel.generate(form(plugin))
    drive(panel)
    assert (panel.history[0].job["request"]["width"], panel.history[0].job["request"]["height"]) == (104, 64)
    assert fake.opened[-1].scaled_to == (101, 67, "Bicubic")  # the PSD, through Krita's importer, scaled
    assert document.rootNode().childNodes()[-1].name().startswith("TAUE: a red star")


def test_without_a_document_a_new_one_is_made(plugin, fake, server):
    panel, view = make_panel(plugin, fake, server.url)
    panel.generate(form(plugin, use_document_size=False, width=64, height=72))
    drive(panel)
    [document] = fake.open_documents
    assert (document.width(), document.height()) == (64, 72)
    assert document.rootNode().childNodes()[-1].name().endswith("(seed 5)")


def test_random_seed_is_shown_and_can_be_reused(plugin, fake, server):
    fake.active = fake.createDocument(64, 64, "a", "RGBA", "U8", "", 72.0)
    panel, view = make_panel(plugin, fake, server.url)
    panel.generate(form(plugin, random_seed=True))
    drive(panel)
    seed = view.last("show_seed")[1]
    assert seed == panel.history[0].job["request"]["seed"]


def test_added_objects_each_get_their_own_layer_and_a_new_background_keeps_them(plugin, fake, server):
    document = fake.createDocument(64, 64, "scene", "RGBA", "U8", "", 72.0)
    fake.active = document
    selection = plugin[1].Selection()
    selection.select(0, 16, 32, 32, 255)
    document.setSelection(selection)
    panel, view = make_panel(plugin, fake, server.url)
    assert panel.add_object(form(plugin, foreground="a red star"))
    assert view.last("show_objects")[1] == ["a red star (in its box)"]
    document.setSelection(None)
    panel.generate(form(plugin, foreground="a yellow circle", key_color="blue"))
    drive(panel)
    request = panel.history[0].job["request"]
    assert request["objects"] == [{"prompt": "a red star", "layout": {"cx": 0.25, "cy": 0.5, "w": 0.5, "h": 0.5}},
                                  {"prompt": "a yellow circle", "layout": None}]
    assert request["settings"] == {"key_color": "blue"}
    group = document.rootNode().childNodes()[-1]
    assert group.name() == "TAUE: a red star + a yellow circle / a blue striped background (seed 5)"
    assert [(n.name(), n.visible()) for n in group.childNodes()] == [
        ("Background", True), ("a red star", True), ("a yellow circle", True), ("Composite", False)]
    for node in group.childNodes()[1:3]:
        assert [(m.name(), m.type()) for m in node.childNodes()] == [(f"{node.name()} alpha", "transparencymask")]

    panel.new_background(form(plugin, background="a white background", seed=9), 0)
    drive(panel)
    child = panel.history[0].job["request"]
    assert child["kind"] == "background" and child["parent"] == panel.history[1].id and child["seed"] == 9
    again = document.rootNode().childNodes()[-1]
    assert again.name() == "TAUE: a red star + a yellow circle / a white background (seed 9)"
    assert [n.name() for n in again.childNodes()] == ["Background", "a red star", "a yellow circle", "Composite"]
    panel.clear_objects()
    assert view.last("show_objects")[1] == [] and panel.objects == []


def test_new_background_needs_a_result_and_add_object_a_prompt(plugin, fake, server):
    panel, view = make_panel(plugin, fake, server.url)
    panel.new_background(form(plugin), 0)
    assert "Choose a result in the history first" in view.last("show_message")[2] and not panel.running
    assert panel.add_object(form(plugin, foreground=" ")) is False
    assert "Describe the object to add" in view.last("show_message")[2] and panel.objects == []


# ---------------------------------------------------------------------------------------------------- errors
def test_server_down_says_how_to_start_it(plugin, fake):
    panel, view = make_panel(plugin, fake, "http://127.0.0.1:9")  # nothing listens on the discard port
    panel.check_connection()
    panel.generate(form(plugin))
    drive(panel)
    light = view.last("show_connection")
    assert light[1] is False and "No TAUE server answers" in light[2] and "taue-server" in light[2]
    message = view.last("show_message")
    assert message[1] == "error" and "taue-server" in message[2]
    assert not panel.history and view.last("set_running") == ("set_running", False)


def test_wrong_token(plugin, fake, pipe, tmp_path):
    with live_server(tmp_path, pipe, token="right-token-123") as guarded:
        panel, view = make_panel(plugin, fake, guarded.url, token="wrong-token")
        panel.check_connection()
        panel.generate(form(plugin))
        drive(panel)
        assert "refused the token" in view.last("show_connection")[2]
        assert "refused the token" in view.last("show_message")[2]
        panel, view = make_panel(plugin, fake, guarded.url, token="right-token-123")
        panel.check_connection()
        drive(panel)
        time.sleep(0.5)
        panel.poll()
        assert view.last("show_connection")[1] is True


def test_failed_job_gives_the_servers_message(plugin, fake, server):
    from taue_layers.taue_client import Client

    class FailingClient(Client):  # a real request the engine rejects while running: the job fails on the server
        def submit(self, request):
            return super().submit({**request, "green_latent": [0.0, 1.0, 1.0, 0.0, 5.0]})

    fake.active = fake.createDocument(64, 64, "a", "RGBA", "U8", "", 72.0)
    panel, view = make_panel(plugin, fake, server.url, client_factory=FailingClient)
    panel.generate(form(plugin))
    drive(panel)
    kind, text = view.last("show_message")[1:]
    assert kind == "error" and "The job failed on the server" in text and "green_latent" in text
    assert view.last("show_progress")[2] == "Failed"
    assert fake.active.rootNode().childNodes()[-1].name() == "Background"  # nothing inserted


def test_bad_form_is_refused_before_anything_is_sent(plugin, fake, server):
    panel, view = make_panel(plugin, fake, server.url)
    panel.generate(form(plugin, foreground="  "))
    assert "Describe the foreground" in view.last("show_message")[2] and not panel.running
    panel.generate(form(plugin, use_document_size=False, width=100, height=64))
    assert "multiples of 8" in view.last("show_message")[2] and not panel.running
    panel, view = make_panel(plugin, fake, "ftp://somewhere")
    panel.generate(form(plugin))
    assert "not valid" in view.last("show_message")[2] and not panel.running


def test_cancel_a_running_job(plugin, fake, server):
    fake.active = fake.createDocument(64, 64, "a", "RGBA", "U8", "", 72.0)
    panel, view = make_panel(plugin, fake, server.url)
    panel.generate(form(plugin, steps=200))
    deadline = time.monotonic() + 30
    while not any(c[0] == "show_progress" and c[2].startswith("Foreground") for c in view.calls):
        assert time.monotonic() < deadline
        panel.poll()
        time.sleep(0.005)
    panel.cancel()
    drive(panel)
    assert view.last("show_message")[1:] == ("info", "The job was cancelled: nothing was added.")
    assert view.last("show_progress")[2] == "Cancelled" and not panel.history
    assert server.job(panel_job_id(server))["state"] == "cancelled"


def panel_job_id(server):
    return server.session.get(server.api + "/jobs?limit=1", timeout=10).json()["jobs"][0]["id"]


def test_document_closed_while_waiting_keeps_the_result(plugin, fake, server):
    document = fake.createDocument(64, 64, "closing", "RGBA", "U8", "", 72.0)
    fake.active = document
    panel, view = make_panel(plugin, fake, server.url)
    panel.generate(form(plugin))
    document.close()
    fake.active = None
    drive(panel)
    assert "closed while the job ran" in view.last("show_message")[2]
    assert len(panel.history) == 1
    other = fake.createDocument(64, 64, "other", "RGBA", "U8", "", 72.0)
    fake.active = other
    panel.insert_again(0)
    assert other.rootNode().childNodes()[-1].name().endswith("(seed 5)")
    panel.insert_again(3)
    assert "Choose a result" in view.last("show_message")[2]


def test_open_psd_opens_a_new_document(plugin, fake, server):
    fake.window = plugin[1].Window()
    fake.active = fake.createDocument(64, 64, "a", "RGBA", "U8", "", 72.0)
    panel, view = make_panel(plugin, fake, server.url)
    panel.generate(form(plugin))
    drive(panel)
    panel.open_psd(0)
    opened = fake.window.views[-1]
    assert opened.rootNode().childNodes()[0].name().startswith("TAUE: a red star")
    assert [n.name() for n in opened.rootNode().childNodes()[0].childNodes()] == [
        "Background", "Foreground", "Composite", "Object mask"]


def test_settings_are_kept_in_kritas_settings(plugin, fake, server):
    panel, view = make_panel(plugin, fake, "http://127.0.0.1:1")
    panel.save_connection(f"  {server.url}/ ", " tok ")
    assert fake.readSetting("taue_layers", "url", None) == f"{server.url}/"
    assert fake.readSetting("taue_layers", "token", None) == "tok"
    drive(panel)
    time.sleep(0.3)
    panel.poll()
    assert view.last("show_connection")[1] is True and "tiny-random" in view.last("show_connection")[2]


# ---------------------------------------------------------------------------------------------------- the docker
def test_docker_widgets_drive_a_job(plugin, fake, server, qapp):
    from taue_layers.docker import TAUEDocker

    fake.writeSetting("taue_layers", "url", server.url)
    fake.active = fake.createDocument(64, 64, "a", "RGBA", "U8", "", 72.0)
    docker = TAUEDocker()
    assert docker.windowTitle() == "TAUE Layers" and docker.url.text() == server.url
    docker.generate_button.click()  # empty prompts: a message, no job
    assert "Describe the foreground" in docker.message.text() and docker.generate_button.text() == "Generate"
    docker.foreground.setText("a red star")
    docker.background.setText("a blue striped background")
    docker.steps.setValue(30)
    docker.generate_button.click()
    assert docker.generate_button.text() == "Cancel"
    deadline = time.monotonic() + 60
    previews = []
    while docker.panel.running or not docker.panel.events.empty():
        assert time.monotonic() < deadline
        qapp.processEvents()  # the docker's own timer polls
        if docker.caption.text().startswith("Preview") and docker.picture.pixmap() is not None:
            previews.append(docker.caption.text())
        time.sleep(0.01)
    qapp.processEvents()
    assert docker.generate_button.text() == "Generate"
    assert docker.progress.value() == 1000 and docker.progress.format() == "Done"
    assert docker.history.count() == 1 and "Added the layer group" in docker.message.text()
    assert docker.last_seed.text() == f"last: {docker.panel.history[0].job['request']['seed']}"
    assert fake.active.rootNode().childNodes()[-1].name().startswith("TAUE: a red star")
    assert previews and all(caption.startswith("Preview: ") for caption in previews)

    # the history shows pictures: the composite as the item's icon and in the picture, the layers in the strip
    item = docker.history.item(0)
    assert not item.icon().isNull() and item.text().startswith("a red star / a blue striped background")
    assert docker.picture.pixmap() is not None and not docker.picture.pixmap().isNull()
    assert docker.picture.pixmap().width() == 256 and docker.caption.text() == item.text()
    strip = [docker.strip.itemAt(i).widget() for i in range(docker.strip.count())]
    layers = [cell for cell in strip if cell is not None]
    assert [cell.toolTip() for cell in layers] == ["Background", "Foreground", "Composite"]
    assert all(not cell.pixmap().isNull() and cell.pixmap().width() == 48 for cell in layers)

    # Insert / New background / Open PSD from the picture: a double click inserts, the context menu has all three
    groups = len(fake.active.rootNode().childNodes())
    docker.history.itemDoubleClicked.emit(item)
    assert len(fake.active.rootNode().childNodes()) == groups + 1
    assert [text for text, _ in docker.history_actions()] == ["Insert", "New background", "Open PSD"]
    docker.background.setText("a white background")
    dict(docker.history_actions())["New background"]()
    assert docker.panel.running and docker.panel.run.new_background_of == docker.panel.history[0].id
    deadline = time.monotonic() + 60
    while docker.panel.running or not docker.panel.events.empty():
        assert time.monotonic() < deadline
        qapp.processEvents()
        time.sleep(0.01)
    qapp.processEvents()
    assert docker.history.count() == 2 and "/ a white background (seed " in docker.history.item(0).text()
    assert docker.caption.text() == docker.history.item(0).text() and "white background" in docker.caption.text()
    docker.timer.stop()


@pytest.fixture(scope="module")
def choosing(tmp_path_factory):
    from tests.helpers.live import choices_server

    with choices_server(tmp_path_factory.mktemp("choices")) as live:
        yield live


def test_the_docker_sends_the_chosen_model_style_lora_sampler_and_steps_and_remembers_them(plugin, fake, choosing,
                                                                                             qapp):
    """The lists come from the server's /health and /styles; the job's record shows what was chosen, the server ran
    it (result.json), and a new docker starts with the same choices (Krita's settings)."""
    from taue_layers.docker import TAUEDocker

    fake.writeSetting("taue_layers", "url", choosing.url)
    fake.active = fake.createDocument(64, 64, "a", "RGBA", "U8", "", 72.0)
    docker = TAUEDocker()
    deadline = time.monotonic() + 30
    while docker.model_box.count() < 3:  # the offer arrives on the docker's timer
        assert time.monotonic() < deadline, "no offer arrived"
        qapp.processEvents()
        time.sleep(0.01)
    items = lambda box: [box.itemData(i) for i in range(box.count())]  # noqa: E731
    assert items(docker.model_box) == ["", "toy-a", "toy-b"] and "default" in docker.model_box.itemText(1)
    assert items(docker.style_box) == ["", "paper", "few-step", "pink"]
    assert "the pink LoRA" in docker.style_box.itemData(3, plugin[0].docker.Qt.ItemDataRole.ToolTipRole)
    assert items(docker.lora_box) == ["toy-pink", "toy-pink-kohya"] and "dpmpp_2m" in items(docker.sampler_box)
    assert docker.steps.text() == "Default"

    docker.model_box.setCurrentIndex(2)
    docker.lora_box.setCurrentIndex(0)
    docker.lora_scale.setValue(0.8)
    assert docker.panel.add_lora(docker.lora_box.currentData(), docker.lora_scale.value())
    assert docker.loras_label.text() == "toy-pink 0.8"
    docker.sampler_box.setCurrentIndex(items(docker.sampler_box).index("dpmpp_2m"))
    docker.steps.setValue(4)
    docker.foreground.setText("a pink star")
    docker.background.setText("a white background")
    docker.generate_button.click()
    deadline = time.monotonic() + 120
    while docker.panel.running or not docker.panel.events.empty():
        assert time.monotonic() < deadline, docker.message.text()
        qapp.processEvents()
        time.sleep(0.01)
    qapp.processEvents()
    assert docker.history.count() == 1, docker.message.text()
    result = docker.panel.history[0]
    request = result.job["request"]
    assert request["model"] == "toy-b" and request["loras"] == [{"name": "toy-pink", "scale": 0.8}]
    assert request["steps"] == 4 and request["settings"]["scheduler"] == "dpmpp_2m"
    assert Path(result.metadata["model"]).name == "toy-b" and result.metadata["scheduler"] == "dpmpp_2m"
    assert [(lora["name"], lora["scale"]) for lora in result.metadata["loras"]] == [("toy-pink", 0.8)]
    assert not any("does not know" in w for w in result.warnings)  # the LoRA teaches the toy "pink"
    docker.timer.stop()

    again = TAUEDocker()  # Krita's settings keep the choices
    deadline = time.monotonic() + 30
    while again.model_box.count() < 3:
        assert time.monotonic() < deadline
        qapp.processEvents()
        time.sleep(0.01)
    form = again.form()
    assert (form.model, form.scheduler, form.steps) == ("toy-b", "dpmpp_2m", 4)
    assert again.panel.loras == [{"name": "toy-pink", "scale": 0.8}] and again.loras_label.text() == "toy-pink 0.8"
    again.style_box.setCurrentIndex(3)  # a style: its LoRA and sampler, the form's model
    again.panel.clear_loras()
    again.sampler_box.setCurrentIndex(0)
    again.foreground.setText("a pink star")
    again.background.setText("a white background")
    styled = again.panel._request(again.form(), fake.active)
    assert styled["style"] == "pink" and styled["model"] == "toy-b" and "loras" not in styled
    assert "scheduler" not in styled and styled["steps"] == 4
    again.timer.stop()


def test_a_model_that_is_loading_shows_as_such(plugin, fake, qapp):
    from taue_layers.docker import TAUEDocker
    from taue_layers.taue_client import server_offer

    fake.writeSetting("taue_layers", "url", "http://127.0.0.1:1")
    docker = TAUEDocker()
    docker.timer.stop()
    health = {"models": [{"name": "photo", "loaded": True, "default": True}, {"name": "turbo", "loaded": False}],
              "loading_model": "turbo", "schedulers": ["euler"], "scheduler": "euler", "loras": []}
    docker.show_offer(server_offer(health), docker.panel.remembered_choice())
    assert [docker.model_box.itemText(i) for i in range(3)] == ["Server default (photo)", "photo (default)",
                                                                 "turbo (loading\u2026)"]
    panel, view = make_panel(plugin, fake, "http://127.0.0.1:1")
    panel._apply("health", {"state": "ready", "loading_model": "turbo", "device": "cuda", "model": None})
    assert view.last("show_connection")[1:] == (True, "Connected: loading model turbo on cuda")
