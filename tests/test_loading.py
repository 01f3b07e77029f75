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
    assert len(str(info.value)) < 400 and "stacktrace" not in str(info.value), str(info.value)


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


def test_device_and_dtype_defaults_and_overrides():
    import torch

    from taue_engine.models import choose_device_and_dtype

    assert choose_device_and_dtype("cpu") == ("cpu", torch.float32)
    assert choose_device_and_dtype("cpu", "bfloat16") == ("cpu", torch.bfloat16)
    with pytest.raises(ValueError, match="dtype must be one of"):
        choose_device_and_dtype("cpu", "float8")


def test_small_gpu_options_keep_the_method_working():
    pipe = TAUEPipeline.from_pretrained("tiny-random", device="cpu", vae_tiling=True, vae_slicing=True)
    pipe.set_progress_bar_config(disable=True)
    pipe.enable_attention_slicing()  # a memory helper that swaps every attention processor
    sliced = {name: type(p) for name, p in pipe.unet.attn_processors.items()}
    result = pipe(**REQUEST)
    assert result.metadata["attention_maps_captured"] > 0  # our processors were installed over the helper's
    assert {name: type(p) for name, p in pipe.unet.attn_processors.items()} == sliced  # and the helper's restored


def test_prompts_are_encoded_once_per_job(pipe):
    """The text encoders run once per job on the three prompts and the negative together, not once per phase."""
    batches = []
    hooks = [encoder.register_forward_hook(lambda module, args, out: batches.append(args[0].shape[0]))
             for encoder in (pipe.text_encoder, pipe.text_encoder_2)]
    try:
        pipe(**REQUEST)
        assert batches == [3, 3]
        batches.clear()
        pipe(**REQUEST, negative_prompt="blurry")
        assert batches == [4, 4]
    finally:
        for hook in hooks:
            hook.remove()
