"""A_fg reads the object's own words (marked, or the first clause's without quality tags), each attention
resolution weighted alike."""

import torch

from taue_engine.attention import AttentionState
from taue_engine.prompts import _WORD, object_words, strip_marks


def _chosen(prompt):
    return [w for w, keep in zip(_WORD.findall(strip_marks(prompt)), object_words(prompt)) if keep]


def test_object_words_leave_quality_tags_and_later_clauses_out():
    assert _chosen("a red vintage bicycle, photo, 8k, masterpiece") == ["red", "vintage", "bicycle"]
    assert _chosen("masterpiece, best quality, a cat") == ["cat"]
    assert _chosen("a red circle") == ["red", "circle"]


def test_marked_words_are_the_object_and_are_encoded_without_brackets():
    assert strip_marks("a [red] vintage [bicycle] on a street") == "a red vintage bicycle on a street"
    assert _chosen("a [red] vintage [bicycle] on a street") == ["red", "bicycle"]


def test_token_indices_point_at_the_object_words(pipe):
    tok = pipe.tokenizer
    ids = tok("a red vintage bicycle, photo, 8k").input_ids
    chosen = pipe._object_token_indices("a red vintage bicycle, photo, 8k")
    words = [tok.convert_ids_to_tokens(ids[i]).replace("</w>", "") for i in chosen]
    assert "".join(words) == "redvintagebicycle", words
    assert pipe._object_token_indices("a [bicycle], photo") == pipe._object_token_indices("a bicycle, photo")[-1:]


def test_each_resolution_counts_alike_however_many_layers_it_has():
    state = AttentionState(latent_size=(4, 4), capture_until=5, capture_factors=(1, 2), token_indices=[1])
    fine, coarse = torch.zeros(4, 4), torch.zeros(2, 2)
    fine[0, 0] = 1.0  # one 4x4 map marks the top-left corner
    coarse[1, 1] = 1.0  # six 2x2 maps mark the bottom-right quarter
    state._sums = {(4, 4): (fine.flatten(), 1), (2, 2): (6 * coarse.flatten(), 6)}
    a = state.attention_map()
    assert float(a[0, 0]) == 1.0 and float(a[3, 3]) == 1.0  # equal peaks; a mean over maps gives 1/7 to the first
