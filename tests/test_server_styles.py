"""Styles: presets of a job's model, LoRAs and sampling, built in or JSON files in <data_dir>/styles; listed by
GET /styles, applied by a job's `style`, overridden by the job's own fields; a bad style file is skipped with a log
line."""

from __future__ import annotations

import base64
import io
import json
import logging
import shutil
from pathlib import Path

import pytest
from PIL import Image

from server.styles import STYLE_FIELDS, load_styles
from taue_engine import TAUEPipeline
from tests.helpers.live import live_server

LORAS = Path(__file__).parent / "data" / "loras"
JOB = {"foreground_prompt": "a pink star", "background_prompt": "a white background", "seed": 3, "width": 64,
       "height": 64}
PINK = {"description": "the pink LoRA, a few dpmpp_2m steps", "loras": [{"name": "toy-pink", "scale": 0.8}],
        "steps": 6, "scheduler": "dpmpp_2m", "guidance_composite": 4.0}


def styles_folder(data: Path) -> Path:
    folder = data / "styles"
    folder.mkdir(parents=True)
    (folder / "pink.json").write_text(json.dumps(PINK))
    (folder / "elsewhere.json").write_text(json.dumps({"model": "photo", "steps": 20}))
    (folder / "broken.json").write_text("{not json")
    (folder / "odd.json").write_text(json.dumps({"sampler": "euler"}))
    (folder / "few.json").write_text(json.dumps({"steps": 0}))
    (folder / "paper.json").write_text(json.dumps({"steps": 30}))
    (folder / "notes.txt").write_text("not a style")
    return folder


def test_the_styles_are_the_built_in_ones_then_the_folders_and_a_bad_file_is_skipped_once(tmp_path, caplog):
    folder = styles_folder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="taue.server"):
        styles = load_styles(folder)
        load_styles(folder)  # read again: no new lines
    assert list(styles) == ["paper", "few-step", "elsewhere", "pink"]
    assert styles["paper"].fields == {"steps": 50, "scheduler": "euler", "timestep_spacing": "model",
                                      "guidance_foreground": 7.5, "guidance_composite": 5.0,
                                      "guidance_background": 5.0, "crop_ratio": 0.5}
    few = styles["few-step"]
    assert (few.fields["steps"], few.fields["guidance_composite"], few.fields["timestep_spacing"]) == (8, 1.0,
                                                                                                      "trailing")
    assert "needs such weights" in few.description and few.builtin
    assert styles["pink"].fields == {k: v for k, v in PINK.items() if k != "description"}
    assert set(styles["pink"].fields) <= set(STYLE_FIELDS) and not styles["pink"].builtin
    skipped = [r.getMessage() for r in caplog.records if "styles: skipped" in r.getMessage()]
    assert len(skipped) == 4, skipped
    for name, says in (("broken", "not a JSON file"), ("odd", "unknown field 'sampler'"),
                       ("few", "num_inference_steps"), ("paper", "is taken")):
        assert any(f"{name}.json" in line and says in line for line in skipped), (name, skipped)


@pytest.fixture()
def toy():
    pipe = TAUEPipeline.from_pretrained("toy", device="cpu")
    pipe.set_progress_bar_config(disable=True)
    yield pipe
    pipe.load_loras([])


def test_a_jobs_style_fills_what_it_does_not_send_and_its_own_fields_win(toy, tmp_path):
    data = tmp_path / "data"
    styles_folder(data)
    loras = tmp_path / "loras"
    loras.mkdir()
    shutil.copy(LORAS / "toy-pink.safetensors", loras / "toy-pink.safetensors")
    with live_server(data, toy, lora_dir=loras) as live:
        listed = {s["name"]: s for s in live.get("/api/v1/styles").json()["styles"]}
        assert list(listed) == ["paper", "few-step", "elsewhere", "pink"]
        assert listed["pink"]["loras"] == PINK["loras"] and listed["pink"]["problem"] is None
        assert "'photo' is not served here" in listed["elsewhere"]["problem"]
        assert listed["few-step"]["builtin"] and listed["few-step"]["steps"] == 8

        styled = live.submit(**JOB, style="pink")
        assert styled["request"]["style"] == "pink" and styled["request"]["loras"] == PINK["loras"]
        assert styled["request"]["steps"] == 6 and styled["request"]["settings"] == {
            "scheduler": "dpmpp_2m", "guidance_composite": 4.0}
        assert styled["warnings"] == []  # the style's LoRA teaches "pink"
        own = live.submit(**JOB, style="pink", steps=4, scheduler="euler", loras=[])
        assert own["request"]["steps"] == 4 and own["request"]["loras"] == []
        assert own["request"]["settings"] == {"scheduler": "euler", "guidance_composite": 4.0}
        few = live.submit(**JOB, style="few-step")
        for job, scheduler, steps, loras_ran in ((styled, "dpmpp_2m", 6, ["toy-pink"]), (own, "euler", 4, []),
                                                (few, "euler", 8, [])):
            done = live.wait(job["id"], timeout=300)
            assert done["state"] == "succeeded", done["error"]
            record = live.get(f"/api/v1/jobs/{job['id']}/result.json").json()
            assert (record["scheduler"], record["config"]["num_inference_steps"]) == (scheduler, steps)
            assert [lora["name"] for lora in record["loras"]] == loras_ran
        few_record = live.get(f"/api/v1/jobs/{few['id']}/result.json").json()
        assert few_record["config"]["timestep_spacing"] == "trailing"
        assert few_record["config"]["guidance_composite"] == few_record["config"]["guidance_foreground"] == 1.0

        child = live.session.post(live.api + f"/jobs/{styled['id']}/backgrounds",
                                  json={"background_prompts": ["a blue background"], "seeds": [1]},
                                  timeout=30).json()["jobs"][0]
        assert child["request"]["style"] == "pink" and child["request"]["loras"] == PINK["loras"]

        layer = io.BytesIO()
        star = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
        star.paste((255, 0, 255, 255), (20, 20, 44, 44))
        star.save(layer, format="PNG")
        brought = live.session.post(live.api + "/backgrounds", json={
            "objects": [{"prompt": "a pink star", "png": base64.b64encode(layer.getvalue()).decode()}],
            "background_prompts": ["a white background"], "style": "pink", "guidance_background": 2.0},
            timeout=30)
        assert brought.status_code == 202, brought.text[:600]
        request = brought.json()["jobs"][0]["request"]
        assert request["style"] == "pink" and request["loras"] == PINK["loras"] and request["steps"] == 6
        assert request["settings"] == {"scheduler": "dpmpp_2m", "guidance_composite": 4.0, "guidance_background": 2.0}
        live.session.post(live.api + f"/jobs/{brought.json()['jobs'][0]['id']}/cancel", timeout=30)

        for style, status, says in (("nope", 400, "no style 'nope' on this server; it has: paper, few-step"),
                                    (5, 400, "no style 5"),
                                    ("elsewhere", 400, "the style 'elsewhere' sets model: ")):
            response = live.session.post(live.api + "/jobs", json={**JOB, "style": style}, timeout=30)
            assert response.status_code == status and says in response.json()["error"]["message"], response.text
        live.wait(child["id"], timeout=300)
