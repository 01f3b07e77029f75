"""Loading: built-in name, a saved diffusers folder, a single-file checkpoint, and the errors when it fails."""

import pytest

from taue_engine import TAUEConfig, TAUEPipeline
from taue_engine.models import ModelLoadError
from taue_engine.models.single_file import save_single_file

CONFIG = TAUEConfig(num_inference_steps=4)
REQUEST = dict(foreground_prompt="a red star", background_prompt="a blue background", seed=5, width=64, height=64,
               config=CONFIG)


@pytest.fixture(scope="module")
def saved(pipe, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    pipe.save_pretrained(root / "tiny")
    save_single_file(pipe, root / "tiny.safetensors")
    return root


def _composite_bytes(result, tmp_path, name):
    return result.save(tmp_path / name)["composite"].read_bytes()


def test_folder_and_single_file_load_the_same_model(pipe, saved, tmp_path):
    reference = _composite_bytes(pipe(**REQUEST), tmp_path, "builtin")
    folder = TAUEPipeline.from_pretrained(str(saved / "tiny"), device="cpu")
    single = TAUEPipeline.from_pretrained(str(saved / "tiny.safetensors"), device="cpu",
                                          single_file_config=str(saved / "tiny"))
    for loaded in (folder, single):
        assert isinstance(loaded, TAUEPipeline)
        loaded.set_progress_bar_config(disable=True)
    assert _composite_bytes(folder(**REQUEST), tmp_path, "folder") == reference
    assert _composite_bytes(single(**REQUEST), tmp_path, "single") == reference
    assert single.model_name.endswith("tiny.safetensors")


@pytest.mark.parametrize("model, words", [
    ("./no/such/folder", "does not exist"),
    ("missing.safetensors", "does not exist"),
    ("nobody/no-such-model", "hub"),
])
def test_missing_models_give_one_clear_error(model, words):
    with pytest.raises(ModelLoadError) as info:
        TAUEPipeline.from_pretrained(model, device="cpu")
    assert words in str(info.value)
    assert "tiny-random" in str(info.value)


def test_folder_without_model_index_is_explained(tmp_path):
    with pytest.raises(ModelLoadError, match="model_index.json"):
        TAUEPipeline.from_pretrained(str(tmp_path), device="cpu")


def test_fp16_on_cpu_is_refused_with_advice():
    with pytest.raises(ValueError, match="float32"):
        TAUEPipeline.from_pretrained("tiny-random", device="cpu", dtype="float16")


def test_tokenizer_keeps_known_words_whole(pipe):
    tokens = pipe.tokenizer.tokenize("a red vintage bicycle on a cobblestone street")
    assert tokens == ["a</w>", "red</w>", "vintage</w>", "bicycle</w>", "on</w>", "a</w>", "cobblestone</w>",
                      "street</w>"]
    assert pipe.tokenizer.unk_token_id not in pipe.tokenizer("zebra greenest").input_ids[1:-1]
