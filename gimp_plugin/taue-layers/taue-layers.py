#!/usr/bin/env python3
"""TAUE Layers for GIMP 3: foreground objects, a matching background and the harmonised composite, as layers.

Filters > Render > TAUE Layers... adds them to the image; File > Create > TAUE Layers... makes a new image;
Filters > Render > TAUE Layers: New Background... puts the objects of a result already in the image into a new
scene. All speak to a TAUE server (taue-server) through taue_client, the client shared with the Krita plug-in; the
server is only contacted when a procedure runs, never when GIMP registers them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from arguments import (  # noqa: E402
    ARGUMENTS,
    BACKGROUND_ARGUMENTS,
    background_request_from,
    background_server,
    offer_text,
    request_from,
)
from gi.repository import Gimp, GimpUi, GLib, GObject, Gtk  # noqa: E402

from taue_client import Client, JobResult, JobRun, TAUEError, warning_messages  # noqa: E402

PROC_LAYERS = "python-fu-taue-layers"
PROC_NEW = "python-fu-taue-layers-new"
PROC_BACKGROUND = "python-fu-taue-layers-background"
NEW_IMAGE_SIZE = (1024, 1024)  # File > Create with width and height left at 0
HERE = os.path.dirname(os.path.abspath(__file__))


def add_arguments(procedure, arguments) -> None:
    flags = GObject.ParamFlags.READWRITE
    for a in arguments:
        if a.kind in ("string", "text"):
            procedure.add_string_argument(a.name, a.nick, a.blurb, a.default, flags)
        elif a.kind == "choice":
            choice = Gimp.Choice.new()
            for number, nick in enumerate(a.choices):
                choice.add(nick, number, nick.capitalize(), "")
            procedure.add_choice_argument(a.name, a.nick, a.blurb, choice, a.default, flags)
        elif a.kind == "int":
            procedure.add_int_argument(a.name, a.nick, a.blurb, a.low, a.high, a.default, flags)
        else:
            procedure.add_boolean_argument(a.name, a.nick, a.blurb, a.default, flags)


def ask(procedure, config, title: str, arguments) -> bool:
    """The procedure dialog (it remembers the last values); False when the user cancels. Above the Model field it
    says what the server of the last run offers (its models, styles, LoRAs and samplers: a GIMP procedure's fields
    are fixed when GIMP starts, so they cannot be menus of one server's)."""
    GimpUi.init("taue-layers")
    dialog = GimpUi.ProcedureDialog.new(procedure, config, title)
    names = []
    for a in arguments:
        if a.name == "model":
            dialog.get_label("offer-label", offer_text(config.get_property("server-url"),
                                                       config.get_property("token")), False, False)
            names.append("offer-label")
        if a.kind == "text":  # several lines: a text box (it has no label of its own) in a frame titled by the nick
            dialog.get_label(f"{a.name}-label", a.nick, False, True)
            dialog.get_widget(a.name, Gtk.TextView.__gtype__)
            dialog.fill_frame(f"{a.name}-frame", f"{a.name}-label", False, a.name)
            names.append(f"{a.name}-frame")
        else:
            names.append(a.name)
    dialog.fill(names)
    accepted = dialog.run()
    dialog.destroy()
    return accepted


class CancelWatch:
    """A watcher process that cancels the job if GIMP kills this plug-in (cancel_watch.py)."""

    def __init__(self):
        self.process = None

    def start(self, client: Client, job_id: str) -> None:
        if self.process is None:
            env = dict(os.environ, TAUE_TOKEN=client.token)
            self.process = subprocess.Popen(
                [sys.executable, os.path.join(HERE, "cancel_watch.py"), client.url, job_id, str(os.getpid())],
                cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=5)


def follow(client: Client, run: JobRun, title: str, image=None) -> JobResult:
    """Run the job with GIMP's progress and, in `image`, a preview layer of the running phase (removed when the job
    ends, however it ends); the job is cancelled on the server if GIMP kills the plug-in meanwhile."""
    import gimp_host

    watch = CancelWatch()
    progress = gimp_host.Progress(title)
    preview = gimp_host.PreviewLayer(image)
    shown = {"fraction": 0.0}

    def on_progress(fraction: float, text: str) -> None:
        if run.job_id is not None:
            watch.start(client, run.job_id)
        shown["fraction"] = fraction
        progress(fraction, text)

    def on_preview(png: bytes, caption: str) -> None:
        preview.show(png)
        progress(shown["fraction"], caption)

    try:
        return run.run(on_progress, on_preview)
    finally:
        watch.stop()
        preview.remove()
        progress.end()


def generate(config, image):
    """Run one job for `image` (None: a new image) and insert it; returns the image."""
    import gimp_host

    values = {a.name: config.get_property(a.name) for a in ARGUMENTS}
    size = gimp_host.image_size(image) if image is not None else NEW_IMAGE_SIZE
    selection = gimp_host.selection_box(image) if image is not None else None
    request = request_from(values, size, selection)  # seed -1: taue_client draws one
    client = Client(values["server-url"], values["token"])
    result = follow(client, JobRun(client, request), "TAUE Layers", image)
    if image is None:
        image = Gimp.Image.new(request["width"], request["height"], Gimp.ImageBaseType.RGB)
    gimp_host.insert(image, result, server=client.url)
    tell_warnings(result)
    return image


def new_background(config, image, source, record: dict) -> None:
    """A new background for the objects of the result group `source` (made by job record["job"] on the server
    record["server"]), inserted above it. An empty Server URL means that server."""
    import gimp_host

    values = {a.name: config.get_property(a.name) for a in BACKGROUND_ARGUMENTS}
    request = background_request_from(values)  # seed -1: taue_client draws one
    client = Client(background_server(values, record), values["token"])
    result = follow(client, JobRun(client, request, new_background_of=record["job"]), "TAUE New Background", image)
    gimp_host.insert(image, result, above=source, server=client.url)
    tell_warnings(result)


def tell_warnings(result) -> None:
    """The server's warnings for the job (e.g. prompt words the model does not know), in GIMP's message area."""
    for message in warning_messages(result):
        Gimp.message(message)


def failure(procedure, message: str):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def guarded(procedure, work):
    """Run `work`; every failure becomes an execution error whose message says what to do, never a traceback."""
    try:
        return work()
    except TAUEError as error:
        return failure(procedure, f"TAUE Layers: {error.message}")
    except Exception as error:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        return failure(procedure, f"TAUE Layers: unexpected error ({type(error).__name__}: {error}); please report it")


class TAUELayers(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROC_LAYERS, PROC_NEW, PROC_BACKGROUND]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        arguments = ARGUMENTS
        if name == PROC_BACKGROUND:
            arguments = BACKGROUND_ARGUMENTS
            procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run_background, None)
            procedure.set_image_types("RGB*")
            procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE
                                           | Gimp.ProcedureSensitivityMask.DRAWABLES)
            procedure.set_menu_label("TAUE Layers: New Background...")
            procedure.add_menu_path("<Image>/Filters/Render/")
            procedure.set_documentation(
                "A new background for the objects of a TAUE result in the image",
                "Select a layer of a TAUE result group (or the group): the server puts the same objects into a new "
                "scene from the background prompt, and the new result arrives as a group above it (object layers "
                "identical, new Background and Composite).", name)
        elif name == PROC_LAYERS:
            procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run_on_image, None)
            procedure.set_image_types("*")
            procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE
                                           | Gimp.ProcedureSensitivityMask.DRAWABLES
                                           | Gimp.ProcedureSensitivityMask.NO_DRAWABLES)
            procedure.set_menu_label("TAUE Layers...")
            procedure.add_menu_path("<Image>/Filters/Render/")
            procedure.set_documentation(
                "Foreground, background and composite layers from two prompts (TAUE)",
                "Asks a TAUE server for a foreground with a clean alpha (and one layer per object given under More "
                "objects, each with its mask), a background plate without the objects and the harmonised composite, "
                "and adds them as a layer group. The selection's bounds place the Foreground.",
                name)
        else:
            procedure = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run_new, None)
            procedure.set_menu_label("TAUE Layers...")
            procedure.add_menu_path("<Image>/File/Create/")
            procedure.set_documentation(
                "A new image of TAUE layers (foreground, background, composite) from two prompts",
                "Like Filters > Render > TAUE Layers, in a new image (width and height 0: 1024 x 1024).", name)
            procedure.add_enum_argument("run-mode", "Run mode", "The run mode", Gimp.RunMode,
                                        Gimp.RunMode.NONINTERACTIVE, GObject.ParamFlags.READWRITE)
            procedure.add_image_return_value("image", "Image", "The new image", False, GObject.ParamFlags.READWRITE)
        procedure.set_attribution("TAUE Layers", "TAUE Layers (Apache-2.0)", "2026")
        add_arguments(procedure, arguments)
        return procedure

    def run_on_image(self, procedure, run_mode, image, drawables, config, data):
        if run_mode == Gimp.RunMode.INTERACTIVE and not ask(procedure, config, "TAUE Layers", ARGUMENTS):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())

        def work():
            generate(config, image)
            return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

        return guarded(procedure, work)

    def run_new(self, procedure, config, data):
        run_mode = config.get_property("run-mode")
        if run_mode == Gimp.RunMode.INTERACTIVE and not ask(procedure, config, "TAUE Layers: new image", ARGUMENTS):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())

        def work():
            image = generate(config, None)
            if run_mode == Gimp.RunMode.INTERACTIVE:
                Gimp.Display.new(image)
            return Gimp.ValueArray.new_from_values([
                GObject.Value(Gimp.PDBStatusType, Gimp.PDBStatusType.SUCCESS), GObject.Value(Gimp.Image, image)])

        return guarded(procedure, work)

    def run_background(self, procedure, run_mode, image, drawables, config, data):
        def work():
            import gimp_host

            source, record = gimp_host.result_group(drawables)  # before the dialog: no prompts asked in vain
            if run_mode == Gimp.RunMode.INTERACTIVE and not ask(procedure, config, "TAUE Layers: New Background",
                                                                BACKGROUND_ARGUMENTS):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
            new_background(config, image, source, record)
            return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

        return guarded(procedure, work)


Gimp.main(TAUELayers.__gtype__, sys.argv)
