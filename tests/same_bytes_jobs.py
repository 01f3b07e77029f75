"""Fixed jobs whose PNG bytes must not change when the code is moved around (tests/test_same_bytes.py).

Each case runs what a user runs (the `taue` command, or the server's HTTP API) on the toy and on tiny-random: one
object, two objects, a new background for the first result, a brought layer, and (CLI) a moved object. The SHA-256 of
every PNG written was recorded before the code was reorganised and held through it (tests/data/same-bytes-sha256.json);
recorded again when the keying began to model the backdrop per pixel and the key latents came to be measured away
from the image's edge (the object layers changed, and the composites of moved and brought layers, which start from
them; nothing else); recorded again when the defaults came to be measured on the model (the key injected as the
model's own step from grey, the mask's key distance measured from the job's backdrop, A_fg from the object's words
with each resolution alike, the high-pass inside the held object only, and the toy's folder reduced to its sampling
choices: every picture changed); recorded again when the held objects came to be released keyed over the
composite's background (the composites changed, nothing else), and when only the down blocks came to shear (the
composites and backgrounds changed), and when the toy's folder came to set guidance 3 in all three phases and
the release to key a band inside m_obj's edge (the toy's pictures changed; tiny-random's composites). Run this
module as a script to print today's, after a change that is meant to change pictures:

    python -m tests.same_bytes_jobs > tests/data/same-bytes-sha256.json
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from pathlib import Path

MODELS = {"toy": 128, "tiny-random": 64}  # each at a size it runs at; few steps keep the whole check short
STEPS = "6"
FOREGROUND, BACKGROUND = "a red star", "a blue striped background"
TWO = ["a red circle@0.3,0.5,0.35,0.4", "a yellow square@0.7,0.5,0.35,0.4"]
NEW_BACKGROUND = "a purple checkered background"


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every PNG under `folder`, by its path relative to it."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*.png"))}


def cli_cases(model: str, work: Path) -> dict[str, dict[str, str]]:
    """The `taue` command's fixed jobs on `model`, run in this process as the console script runs them."""
    from taue_engine.cli import main

    size = str(MODELS[model])
    common = ["--model", model, "--steps", STEPS, "--width", size, "--height", size, "--quiet"]
    runs = {
        "one": ["generate", "--foreground", FOREGROUND, "--background", BACKGROUND, "--seed", "2", *common,
                "--out", str(work / "one")],
        "two": ["generate", *sum((["--object", o] for o in TWO), []), "--background", "a white background",
                "--seed", "3", *common, "--out", str(work / "two")],
        "new-background": ["background", "--from", str(work / "one"), "--background", NEW_BACKGROUND, "--seed", "4",
                           "--quiet", "--out", str(work / "new-background")],
        "moved": ["background", "--from", str(work / "two"), "--background", NEW_BACKGROUND, "--seed", "5",
                  "--move", "2@0.6,0.4,0.3,0.3", "--quiet", "--out", str(work / "moved")],
        "brought-layer": ["background", "--layer", str(work / "one" / "object-1.png"), "--object", FOREGROUND,
                          "--background", NEW_BACKGROUND, "--seed", "6", "--model", model, "--steps", STEPS,
                          "--quiet", "--out", str(work / "brought-layer")],
    }
    results = {}
    for name, argv in runs.items():
        code = main(argv)
        if code != 0:
            raise AssertionError(f"taue {' '.join(argv)} exited {code}")
        results[name] = digests(work / name)
    return results


def server_cases(engine, model: str, work: Path) -> dict[str, dict[str, str]]:
    """The server's fixed jobs on a loaded pipeline: every layer of each job as the API serves it."""
    from tests.helpers.live import live_server

    size = MODELS[model]
    common = {"width": size, "height": size, "steps": int(STEPS)}
    results = {}
    with live_server(work / "data", engine, preview_seconds=None) as live:
        def layers(job: dict) -> dict[str, str]:
            job = live.wait(job["id"], timeout=600)
            assert job["state"] == "succeeded", job
            return {name: hashlib.sha256(live.get(url).content).hexdigest()
                    for name, url in sorted(job["urls"]["layers"].items())}

        one = live.submit(foreground_prompt=FOREGROUND, background_prompt=BACKGROUND, seed=2, **common)
        results["one"] = layers(one)
        objects = [{"prompt": o.split("@")[0], "layout": dict(zip(("cx", "cy", "w", "h"),
                                                                   map(float, o.split("@")[1].split(","))))}
                   for o in TWO]
        two = live.submit(objects=objects, background_prompt="a white background", seed=3, **common)
        results["two"] = layers(two)
        response = live.session.post(f"{live.api}/jobs/{one['id']}/backgrounds",
                                     json={"background_prompts": [NEW_BACKGROUND], "seeds": [4]}, timeout=30)
        assert response.status_code == 202, response.text
        results["new-background"] = layers(response.json()["jobs"][0])
        png = live.get(live.job(one["id"])["urls"]["layers"]["object-1"]).content
        response = live.session.post(f"{live.api}/backgrounds", timeout=30, json={
            "objects": [{"prompt": FOREGROUND, "png": base64.b64encode(png).decode("ascii")}],
            "background_prompts": [NEW_BACKGROUND], "seeds": [6], "steps": int(STEPS)})
        assert response.status_code == 202, response.text
        results["brought-layer"] = layers(response.json()["jobs"][0])
    return results


THREADS = 2  # the bytes were recorded with torch on 2 threads: a float sum split another way rounds another way


def all_cases(work: Path) -> dict[str, dict[str, dict[str, str]]]:
    """Every case, keyed 'cli/<model>' and 'server/<model>', with torch on THREADS threads."""
    import torch

    from taue_engine import TAUEPipeline

    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        cases = {}
        for model in MODELS:
            cases[f"cli/{model}"] = cli_cases(model, work / "cli" / model)
            pipe = TAUEPipeline.from_pretrained(model, device="cpu")
            pipe.set_progress_bar_config(disable=True)
            cases[f"server/{model}"] = server_cases(pipe, model, work / "server" / model)
        return cases
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        print(json.dumps(all_cases(Path(folder)), indent=1, sort_keys=True))
