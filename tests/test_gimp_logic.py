"""The GIMP plug-in's logic outside GIMP: arguments to request, and the watcher that cancels a job when GIMP kills
the plug-in. Imported from the folder tools/package_plugins.py builds (with its embedded taue_client)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from taue_client import TAUEError
from tests.helpers.live import live_server

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gimp_plugin(packager, tmp_path_factory):
    folder, archive = packager.build_gimp(tmp_path_factory.mktemp("dist"))
    sys.path.insert(0, str(folder))
    try:
        import arguments
        import cancel_watch
        yield arguments, cancel_watch, folder, archive
    finally:
        for name in ("arguments", "cancel_watch"):
            sys.modules.pop(name, None)
        sys.path.remove(str(folder))


def values(**changes):
    base = {"foreground-prompt": "a red star", "objects": "", "background-prompt": "a blue striped background",
            "composite-prompt": "", "negative-prompt": "", "key-color": "green", "seed": -1, "steps": 30, "width": 0,
            "height": 0, "use-selection": True, "server-url": "http://127.0.0.1:7860", "token": "", "model": "",
            "style": "", "loras": "", "sampler": ""}
    base.update(changes)
    return base


def test_folder_is_a_gimp_plugin(gimp_plugin):
    _, _, folder, archive = gimp_plugin
    assert folder.name == "taue-layers" and (folder / "taue-layers.py").stat().st_mode & 0o111
    assert (folder / "taue_client" / "api.py").read_bytes() == (REPO / "taue_client" / "api.py").read_bytes()
    import zipfile

    names = zipfile.ZipFile(archive).namelist()
    assert "taue-layers/taue-layers.py" in names and "taue-layers/taue_client/jobs.py" in names
    source = (folder / "taue-layers.py").read_text()
    assert "<Image>/Filters/Render/" in source and "<Image>/File/Create/" in source


def test_request_from_image_size_selection_and_seed(gimp_plugin):
    arguments = gimp_plugin[0]
    request = arguments.request_from(values(), (100, 75), (20, 10, 50, 40), seed=1234)
    assert (request["width"], request["height"]) == (96, 72)
    assert request["layout"] == {"cx": 0.45, "cy": 0.4, "w": 0.5, "h": 0.5333}
    assert request["seed"] == 1234 and request["steps"] == 30
    assert "composite_prompt" not in request and "negative_prompt" not in request
    fixed = arguments.request_from(values(seed=7, width=64, height=72, **{"use-selection": False}), (100, 75),
                                   (20, 10, 50, 40), seed=1234)
    assert (fixed["seed"], fixed["width"], fixed["height"], fixed.get("layout")) == (7, 64, 72, None)
    whole = arguments.request_from(values(), (100, 75), (0, 0, 100, 75), seed=1)
    assert "layout" not in whole  # selecting everything places nothing
    assert "objects" not in request and "key_color" not in request  # one object, green: the v1 request


def test_model_style_loras_sampler_and_steps_go_with_the_job_and_empty_ones_are_left_out(gimp_plugin):
    arguments = gimp_plugin[0]
    chosen = arguments.request_from(values(model="photo", style="pink", loras="toy-pink:0.8, ink", sampler="dpmpp_2m",
                                           steps=6), (64, 64), None, seed=1)
    assert (chosen["model"], chosen["style"], chosen["scheduler"], chosen["steps"]) == ("photo", "pink", "dpmpp_2m", 6)
    assert chosen["loras"] == [{"name": "toy-pink", "scale": 0.8}, {"name": "ink", "scale": 1.0}]
    plain = arguments.request_from(values(steps=0), (64, 64), None, seed=1)
    assert not {"model", "style", "loras", "scheduler", "steps"} & set(plain)  # the style's, else the model's
    for text, words in (("ink:strong", "is not NAME or NAME:SCALE"), ("ink:9", "a scale in -4..4"),
                        ("ink, ink:0.5", "listed twice")):
        with pytest.raises(TAUEError) as caught:
            arguments.request_from(values(loras=text), (64, 64), None, seed=1)
        assert words in caught.value.message and caught.value.field == "loras"
    assert "No TAUE server answers" in arguments.offer_text("http://127.0.0.1:9", "", timeout=1)
    assert "correct the server URL" in arguments.offer_text("localhost:78x0", "")  # the dialog opens all the same


def test_a_remembered_choice_survives_odd_lora_names_and_a_broken_setting():
    import json

    from taue_client import Choice

    kept = Choice(model="photo", loras=[{"name": "ink, wash", "scale": 0.5}], scheduler="dpmpp_2m")
    assert Choice.from_setting(kept.to_setting()) == kept
    assert Choice.from_setting("{not json") == Choice()
    assert Choice.from_setting(json.dumps({"model": "photo", "loras": [5, {"scale": 1}]})) == Choice(model="photo")


def test_the_dialog_says_what_the_server_offers(gimp_plugin, tmp_path):
    from tests.helpers.live import choices_server

    with choices_server(tmp_path) as live:
        text = gimp_plugin[0].offer_text(live.url, "")
    assert text.startswith("This server offers")
    assert "Models: toy-a (default), toy-b" in text and "Styles: paper, few-step, pink" in text
    assert "LoRAs: toy-pink, toy-pink-kohya" in text and "dpmpp_2m" in text


def test_more_objects_go_behind_the_foreground(gimp_plugin):
    arguments = gimp_plugin[0]
    lines = "a yellow moon @ 0.25, 0.3, 0.4, 0.5\n\n  a green tree  \n"
    request = arguments.request_from(values(objects=lines, **{"key-color": "magenta"}), (100, 75), (20, 10, 50, 40),
                                     seed=1)
    assert request["objects"] == [{"prompt": "a yellow moon", "layout": {"cx": 0.25, "cy": 0.3, "w": 0.4, "h": 0.5}},
                                  {"prompt": "a green tree"},  # no box: the server places it
                                  {"prompt": "a red star", "layout": {"cx": 0.45, "cy": 0.4, "w": 0.5, "h": 0.5333}}]
    assert request["key_color"] == "magenta" and "foreground_prompt" not in request and "layout" not in request
    alone = arguments.request_from(values(objects="a yellow moon @ 0.5,0.5,1,1", **{"foreground-prompt": ""}),
                                   (64, 64), None, seed=1)
    assert alone["foreground_prompt"] == "a yellow moon"  # one object is the single-object request
    assert alone["layout"] == {"cx": 0.5, "cy": 0.5, "w": 1.0, "h": 1.0}


@pytest.mark.parametrize("lines, words", [
    ("a moon\na tree @ 0.5,0.5,0.3", "line 2 ('a tree @ 0.5,0.5,0.3'): give four numbers CX,CY,W,H"),
    ("a moon @ left", "line 1 ('a moon @ left'): give four numbers"),
    ("@ 0.5,0.5,0.3,0.3", "line 1 ('@ 0.5,0.5,0.3,0.3'): describe the object before the @"),
    ("\n\na moon @ 0.5,0.5,0,0.3", "line 3 ('a moon @ 0.5,0.5,0,0.3'): the box is four numbers"),
    ("a moon @ 1.5,0.5,0.3,0.3", "fractions 0..1 of the image), with the width and height above 0"),
])
def test_bad_object_lines_are_named(gimp_plugin, lines, words):
    with pytest.raises(TAUEError) as caught:
        gimp_plugin[0].request_from(values(objects=lines), (64, 64), None, seed=1)
    assert words in caught.value.message and caught.value.field == "objects"


def test_new_background_request(gimp_plugin):
    arguments = gimp_plugin[0]
    request = arguments.background_request_from(values(**{"background-prompt": " a sunny beach ",
                                                          "negative-prompt": "people"}), seed=9)
    assert request == {"background_prompts": ["a sunny beach"], "seeds": [9], "negative_prompt": "people"}
    assert arguments.background_request_from(values(seed=3))["seeds"] == [3]
    with pytest.raises(TAUEError) as caught:
        arguments.background_request_from(values(**{"background-prompt": ""}))
    assert "Describe the new background" in caught.value.message


@pytest.mark.parametrize("changes, words", [
    ({"foreground-prompt": ""}, "Describe the foreground"),
    ({"background-prompt": "  "}, "Describe the background"),
    ({"width": 100, "height": 64}, "multiples of 8"),
    ({"width": 64, "height": 0}, "both width and height"),
    ({"key-color": "red"}, "The key colour must be one of green, blue, magenta"),
])
def test_bad_arguments_say_what_to_change(gimp_plugin, changes, words):
    with pytest.raises(TAUEError) as caught:
        gimp_plugin[0].request_from(values(**changes), (64, 64), None, seed=1)
    assert words in caught.value.message


def test_arguments_are_described_once(gimp_plugin):
    from taue_client import KEY_COLORS

    arguments = gimp_plugin[0]
    names = [a.name for a in arguments.ARGUMENTS]
    assert len(names) == len(set(names))
    assert set(values()) == set(names)
    own = [a for a in arguments.BACKGROUND_ARGUMENTS if a not in arguments.ARGUMENTS]
    assert own == [arguments.BACKGROUND_SERVER]  # only its Server URL differs (empty: the result's server)
    assert {a.name for a in arguments.BACKGROUND_ARGUMENTS} < set(names)
    [key] = [a for a in arguments.ARGUMENTS if a.name == "key-color"]
    assert key.choices == KEY_COLORS and key.default == "green"


def test_watcher_cancels_the_job_when_the_plugin_dies(gimp_plugin, pipe, tmp_path):
    cancel_watch = gimp_plugin[1]
    with live_server(tmp_path, pipe) as server:
        job = server.submit(foreground_prompt="a red star", background_prompt="a blue striped background",
                            width=64, height=64, steps=200)
        server.wait(job["id"], states=("running",))
        plugin = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        outcome = {}
        watcher = threading.Thread(target=lambda: outcome.setdefault(
            "cancelled", cancel_watch.watch(server.url, job["id"], plugin.pid)))
        watcher.start()
        time.sleep(0.5)
        assert server.job(job["id"])["state"] == "running"  # a live plug-in: the job goes on
        plugin.kill()
        plugin.wait()
        watcher.join(timeout=10)
        assert outcome == {"cancelled": True}
        assert server.wait(job["id"], timeout=30)["state"] == "cancelled"


def test_the_servers_warning_reaches_the_messages_gimp_shows(gimp_plugin, pipe, tmp_path):
    from taue_client import Client, JobRun, warning_messages

    arguments = gimp_plugin[0]
    pipe.known_words = frozenset("a an red star on blue striped background".split())
    try:
        with live_server(tmp_path, pipe) as server:
            request = arguments.request_from(values(**{"foreground-prompt": "a red vintage bicycle", "steps": 2}),
                                             (64, 64), None)
            client = Client(server.url)
            result = JobRun(client, request).run()
    finally:
        pipe.known_words = None
    words, *found = warning_messages(result)
    assert words.startswith("TAUE Layers: the tiny-random model does not know the words vintage, bicycle")
    # and what its foreground run found: random weights paint no key backdrop
    assert any("the key backdrop did not form" in line for line in found), found


def test_new_background_goes_to_the_server_that_made_the_result(gimp_plugin):
    arguments = gimp_plugin[0]
    record = {"job": "abc", "server": "http://10.0.0.5:7860"}
    assert arguments.background_server({"server-url": ""}, record) == "http://10.0.0.5:7860"
    assert arguments.background_server({"server-url": "  "}, record) == "http://10.0.0.5:7860"
    assert arguments.background_server({"server-url": "http://other:1"}, record) == "http://other:1"
    assert arguments.background_server({"server-url": ""}, {"job": "abc", "server": ""}) == "http://127.0.0.1:7860"
    defaults = {a.name: a.default for a in arguments.BACKGROUND_ARGUMENTS}
    assert defaults["server-url"] == "" and list(defaults) == [
        "background-prompt", "composite-prompt", "negative-prompt", "seed", "server-url", "token"]


def test_a_repeated_layer_name_gets_the_results_prompt_not_a_number():
    from taue_client.layers import distinct_layer_name

    metadata = {"prompts": {"background": "a sunny beach"}, "seed": 5}
    assert distinct_layer_name("Background", metadata, set()) == "Background"
    taken = {"Background", "a red star"}
    assert distinct_layer_name("Background", metadata, taken) == "Background (a sunny beach)"
    assert distinct_layer_name("a red star", metadata, taken) == "a red star (a sunny beach)"
    taken |= {"Background (a sunny beach)"}
    assert distinct_layer_name("Background", metadata, taken) == "Background (a sunny beach, seed 5)"
    taken |= {"Background (a sunny beach, seed 5)"}
    assert distinct_layer_name("Background", metadata, taken) == "Background (a sunny beach, seed 5) 2"
