"""Previews while a job runs: the engine's picture of each step (the clean estimate through a latent-to-RGB map fitted
to the model's VAE) and GET /api/v1/jobs/<id>/preview.png on a live server (404 before, PNG during, 410 after)."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from taue_engine.previews import PREVIEW_SIDE, preview_size
from tests.helpers.live import live_server

SLOW_JOB = {"foreground_prompt": "a red star", "background_prompt": "a blue striped background", "seed": 3,
            "width": 64, "height": 64, "steps": 200}


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), dtype=np.float64) / 255
    y = np.asarray(b.convert("RGB"), dtype=np.float64) / 255
    return float(10 * np.log10(1 / max(((x - y) ** 2).mean(), 1e-12)))


def test_preview_size_keeps_the_aspect_and_never_grows():
    assert preview_size(1024, 1024) == (PREVIEW_SIDE, PREVIEW_SIDE)
    assert preview_size(1216, 832) == (256, 175)
    assert preview_size(64, 96) == (64, 96)


def test_the_map_fits_a_latent_that_holds_colour_non_linearly():
    """A VAE whose latent holds green as its square root (colour is then a polynomial of the latent, as in a VAE that
    bends its colour space): the cubic map gives the colours back exactly, where a linear one cannot."""
    import torch

    from taue_engine.previews import fit_latent_to_rgb

    def encode(image, factor=8):
        rgb = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255)
        cells = rgb.reshape(rgb.shape[0] // factor, factor, rgb.shape[1] // factor, factor, 3).mean(dim=(1, 3))
        r, g, b = cells.unbind(-1)
        return torch.stack([r, g.sqrt(), b, r.sqrt()])[None]

    cubic, linear = fit_latent_to_rgb(encode, 8), fit_latent_to_rgb(encode, 8, degree=1)
    assert cubic.fit_psnr >= 45.0 and linear.fit_psnr < cubic.fit_psnr - 10, (cubic.fit_psnr, linear.fit_psnr)
    latent = encode(Image.new("RGB", (16, 8), (40, 160, 220)))
    assert np.abs(np.asarray(cubic(latent, (16, 8)), dtype=int) - (40, 160, 220)).max() <= 2


def test_each_step_offers_a_preview_of_its_phase(pipe, config):
    seen = []

    def record(tick):
        image = tick.preview()
        seen.append((tick.phase, tick.step, image.size))

    pipe("a red star", "a blue striped background", seed=1, width=96, height=64, config=config,
         progress_callback=record)
    assert [phase for phase, _, _ in seen] == ["foreground"] * 10 + ["composite"] * 10 + ["background"] * 10
    assert {size for _, _, size in seen} == {(96, 64)}


def test_the_last_preview_looks_like_the_layer_it_becomes(toy):
    """On the toy: the map reproduces its fitting colours, and each phase's last preview is within reach of the
    picture that phase decodes (a preview has one colour per latent cell, so it is blurred, not wrong). Toy 2's
    AutoencoderTiny latent is further from linear in colour than toy 1's (the map's fit: 16.1 dB, toy 1's 18+)."""
    assert toy.latent_to_rgb().fit_psnr >= 15.5
    last = {}

    def record(tick):
        if tick.step == tick.phase_steps:
            last[tick.phase] = tick.preview()

    result = toy("a red star", "a blue striped background", seed=1, progress_callback=record)
    size = last["composite"].size
    def blurred(layer):  # one colour per 8x8 cell, as a preview has
        return layer.convert("RGB").resize((size[0] // 8, size[1] // 8), Image.BOX).resize(size, Image.BILINEAR)

    # measured on toy 2: composite 15.5, background 17.2, object on its key 11.9 dB (seed 1; seed 2: 15.0, 14.5,
    # 11.9); the wrong layer is far (5.1 dB)
    for phase, layer, floor in (("composite", result.composite, 14.0), ("background", result.background, 14.0),
                                ("foreground", result.objects[0].on_key, 10.5)):
        assert psnr(last[phase], blurred(layer)) >= floor, phase
    assert psnr(last["foreground"], blurred(result.background)) < 8.0


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_preview_endpoint_states(pipe, tmp_path):
    with live_server(tmp_path, pipe, preview_seconds=0) as live:
        running = live.submit(**SLOW_JOB)
        queued = live.submit(**{**SLOW_JOB, "steps": 2})
        assert running["urls"]["preview"] == f"/api/v1/jobs/{running['id']}/preview.png"
        waiting = live.get(queued["urls"]["preview"])
        assert waiting.status_code == 404 and waiting.json()["error"]["code"] == "no_preview"
        assert "queued" in waiting.json()["error"]["message"]

        job = wait_for(lambda: (lambda j: j if (j["progress"] or {}).get("preview") else None)(
            live.job(running["id"])))
        answer = live.get(running["urls"]["preview"])
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/png"
        assert answer.headers["Cache-Control"] == "no-store"
        image = Image.open(io.BytesIO(answer.content))
        shown = job["progress"]["preview"]
        assert image.size == (64, 64) == (shown["width"], shown["height"])
        assert shown["phase"] == "foreground" and 1 <= shown["step"] <= 200 and shown["phase_steps"] == 200

        # it follows the job: a later step, then the composite phase
        later = wait_for(lambda: (lambda p: p if p["phase"] == "composite" else None)(
            live.job(running["id"])["progress"]["preview"]), timeout=120)
        assert later["step"] >= 1

        live.session.post(live.api + f"/jobs/{running['id']}/cancel", timeout=30)
        live.wait(running["id"])
        gone = live.get(running["urls"]["preview"])
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "gone"
        assert "preview" not in live.job(running["id"])["urls"]
        done = live.wait(queued["id"])
        assert done["state"] == "succeeded"
        gone = live.get(queued["urls"]["preview"])
        assert gone.status_code == 410 and "urls.layers" in gone.json()["error"]["message"]
        assert live.jobs.get(queued["id"]).preview is None  # no picture kept in memory after the job


def test_preview_needs_the_token_and_can_be_turned_off(pipe, tmp_path):
    with live_server(tmp_path / "guarded", pipe, token="preview-token") as guarded:
        headers = {"Authorization": "Bearer preview-token"}
        job = guarded.session.post(guarded.api + "/jobs", json=SLOW_JOB, headers=headers, timeout=30).json()
        refused = guarded.get(job["urls"]["preview"])
        assert refused.status_code == 401
        guarded.session.headers.update(headers)
        wait_for(lambda: (guarded.job(job["id"])["progress"] or {}).get("preview"))
        assert guarded.get(job["urls"]["preview"]).status_code == 200
        guarded.session.post(guarded.api + f"/jobs/{job['id']}/cancel", timeout=30)
        guarded.wait(job["id"])

    with live_server(tmp_path / "off", pipe, preview_seconds=None) as off:
        job = off.submit(**SLOW_JOB)
        wait_for(lambda: (off.job(job["id"])["progress"] or {}).get("step", 0) >= 3)
        answer = off.get(job["urls"]["preview"])
        assert answer.status_code == 404 and "--no-previews" in answer.json()["error"]["message"]
        assert off.job(job["id"])["progress"]["preview"] is None
        off.session.post(off.api + f"/jobs/{job['id']}/cancel", timeout=30)
        off.wait(job["id"])
        document = off.get("/api/v1/openapi.json").json()
        assert "410" in document["paths"]["/jobs/{job_id}/preview.png"]["get"]["responses"]


def test_taue_server_takes_the_preview_flags():
    from server.cli import build_parser

    assert build_parser().parse_args([]).preview_seconds == 0.5
    args = build_parser().parse_args(["--no-previews", "--preview-seconds", "2"])
    assert args.no_previews and args.preview_seconds == 2.0
