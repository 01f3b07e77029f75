"""`taue doctor`: the toy is usable, tiny-random's random weights are not (no key backdrop), the findings as JSON,
and the VAE check's verdicts on a VAE that overflows in float16."""

import contextlib
import io
import json
from types import SimpleNamespace

import pytest
import torch

from taue_engine.cli import main


def run_doctor(*argv: str) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["doctor", *argv])
    return status, out.getvalue().splitlines(), err.getvalue()


@pytest.fixture(scope="module")
def toy_doctor(tmp_path_factory):
    path = tmp_path_factory.mktemp("doctor") / "toy.json"
    return (*run_doctor("--model", "toy", "--quiet", "--write-config", str(path)), path)


@pytest.fixture(scope="module")
def tiny_doctor(tmp_path_factory):
    path = tmp_path_factory.mktemp("doctor") / "tiny.json"
    return (*run_doctor("--model", "tiny-random", "--quiet", "--write-config", str(path)), path)


def test_the_toy_is_usable(toy_doctor):
    status, lines, err, _ = toy_doctor
    assert status == 0, lines
    assert "verdict: usable for TAUE" in lines, lines
    assert not err.strip(), err  # --quiet: nothing on stderr
    by_name = {line.split(":")[0].split(maxsplit=1)[1]: line.split()[0] for line in lines
               if line[:1].isalpha() and not line.startswith(("taue doctor", "verdict", "flags", "findings"))}
    assert by_name["phase 1"] == "ok" and by_name["vae precision"] == "ok", lines
    assert set(by_name) == {"vae precision", "vocabulary", "key colours", "phase 1", "previews", "time"}, by_name
    # the toy knows shapes and colours only: the jobs use its words, and every backdrop formed
    assert any("'a red circle'" in line and "backdrop formed" in line for line in lines), lines
    assert any(line.startswith("info  time:") and "128x128, 20 steps" in line for line in lines), lines


def test_tiny_random_is_not_usable_for_its_backdrop(tiny_doctor):
    status, lines, _, _ = tiny_doctor
    assert status == 1, lines
    verdict = lines[-2] if lines[-1].startswith("findings written") else lines[-1]
    assert verdict.startswith("verdict: NOT usable for TAUE: the key backdrop did not form on"), lines
    assert any(line.startswith("fail  phase 1:") for line in lines), lines
    assert sum("backdrop NOT formed" in line for line in lines) >= 2, lines


def test_write_config_holds_the_findings_and_settings_a_config_loads(toy_doctor, tiny_doctor):
    from taue_engine.config import TAUEConfig

    for status, lines, _, path in (toy_doctor, tiny_doctor):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["usable"] is (status == 0)
        assert f"verdict: {data['verdict']}" in lines
        assert [c["name"] for c in data["checks"]] == ["vae precision", "vocabulary", "key colours", "phase 1",
                                                       "previews", "time"]
        phase = next(c for c in data["checks"] if c["name"] == "phase 1")
        assert len(phase["jobs"]) == 3 and all("backdrop_fraction" in j for j in phase["jobs"])
        assert data["config"]["key_color"] in ("green", "blue", "magenta")
        TAUEConfig().replace(**data["config"])  # loadable as it is: each field also passes as --set FIELD=VALUE
    assert json.loads(tiny_doctor[3].read_text())["reasons"][0].startswith("the key backdrop did not form")


@pytest.mark.parametrize("argv, flag", [
    (["--model", "./no/such/model"], "--model"),
    (["--write-config", "/no/such/folder/doctor.json"], "--write-config"),
    (["--dtype", "float8"], "--dtype"),
])
def test_bad_flags_are_one_line_before_any_model_loads(argv, flag):
    status, lines, err = run_doctor(*argv)
    assert status == 2 and not lines
    assert err.strip().splitlines() == [err.strip()] and err.startswith(f"taue: error: {flag}"), err


class FakeVae(torch.nn.Module):
    """A VAE whose float16 decode overflows, as SDXL's own does on many pictures."""

    def __init__(self, dtype, force_upcast):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1, dtype=dtype))
        self.config = SimpleNamespace(force_upcast=force_upcast)

    @property
    def dtype(self):
        return self.weight.dtype

    def decode(self, latent):
        picture = latent[:, :3].repeat_interleave(8, -1).repeat_interleave(8, -2).float().tanh().to(self.dtype)
        return SimpleNamespace(sample=picture * (float("inf") if self.dtype == torch.float16 else 1))


@pytest.mark.parametrize("runs_in, force_upcast, status", [
    (torch.float32, False, "warn"),  # float32 runs are fine: a warning for float16
    (torch.float16, True, "warn"),  # SDXL's own VAE asks to decode in float32: slower, still right
    (torch.float16, False, "fail"),  # a float16 decode gives NaN pictures: not usable without --vae
])
def test_a_vae_that_overflows_in_float16_is_named_with_the_fixed_vae(runs_in, force_upcast, status):
    from taue_engine.doctor import vae_precision
    from taue_engine.models.loading import FP16_FIXED_SDXL_VAE

    pipe = SimpleNamespace(vae=FakeVae(runs_in, force_upcast), unet=SimpleNamespace(dtype=runs_in),
                           vae_scale_factor=8, latent_scale=lambda device: (0.0, 1.0))
    check = vae_precision(pipe, torch.randn(1, 4, 4, 4))
    assert check.status == status, check.line
    assert "overflows" in check.line and f"--vae {FP16_FIXED_SDXL_VAE}" in check.line
    assert (check.reason is not None) is (status == "fail")
