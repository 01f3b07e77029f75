"""Attention processors on the UNet's cross-attention layers (`attn2`): capture (phase 1) and shearing (phase 2).

Both compute what diffusers' `AttnProcessor2_0` computes, so a layer's output is unchanged unless shearing asks
otherwise. They are installed with `unet.set_attn_processor` on the `attn2` layers only; self-attention keeps its
processor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import cast

import torch
import torch.nn.functional as F

from .masks import front_to_back, normalize, resize_mask


def block_of(layer_name: str) -> str:
    """'down', 'mid' or 'up' for a processor name such as
    'up_blocks.0.attentions.1.transformer_blocks.0.attn2.processor'."""
    return layer_name.split("_", 1)[0]


def cross_attention_layers(unet) -> list[str]:
    """Processor names of the cross-attention (`attn2`) layers, the only ones TAUE touches."""
    return [name for name in unet.attn_processors if name.endswith("attn2.processor")]


def level_sizes(height: int, width: int, levels: int = 8) -> dict[int, tuple[int, int]]:
    """Feature-map size at each downsampling factor of the UNet (stride-2 convs round up)."""
    sizes, h, w, factor = {}, height, width, 1
    for _ in range(levels):
        sizes[factor] = (h, w)
        h, w, factor = math.ceil(h / 2), math.ceil(w / 2), factor * 2
    return sizes


@dataclass
class AttentionState:
    """What the processors of one phase share: the latent size, the step, the CFG layout, masks and captures."""

    latent_size: tuple[int, int]
    cfg: bool = True
    step: int = 0
    capture_until: int = 0
    capture_factors: tuple[int, ...] = ()
    token_indices: list[int] = field(default_factory=list)
    shear_mask: torch.Tensor | None = None  # [H, W] (one object) or [K, H, W] (K objects, later in front), latent size
    shear_context: torch.Tensor | None = None  # T_fg (T_1 .. T_K) then T_bg encoder states, stacked along the batch
    _sums: dict = field(default_factory=dict)
    _levels: dict = field(default_factory=dict)
    _weights: dict = field(default_factory=dict)
    _mask_cache: dict = field(default_factory=dict)

    def factor_of(self, sequence_length: int) -> tuple[int, tuple[int, int]]:
        if sequence_length not in self._levels:
            for factor, (h, w) in level_sizes(*self.latent_size).items():
                if h * w == sequence_length:
                    self._levels[sequence_length] = (factor, (h, w))
                    break
            else:
                raise ValueError(f"no UNet level of a {self.latent_size} latent has {sequence_length} positions")
        return self._levels[sequence_length]

    # -- capture
    @property
    def capturing(self) -> bool:
        return self.step < self.capture_until and bool(self.token_indices)

    def token_weights(self, like: torch.Tensor) -> torch.Tensor:
        """[T] weights averaging the object tokens; a tensor on the GPU, so that no step waits on a host copy."""
        key = (like.device, like.shape[-1])
        if key not in self._weights:
            weights = torch.zeros(like.shape[-1], dtype=torch.float32)
            weights[self.token_indices] = 1.0 / len(self.token_indices)
            self._weights[key] = weights.to(like.device)
        return self._weights[key]

    def add_map(self, token_map: torch.Tensor, size: tuple[int, int]) -> None:
        """Accumulate a [N] map of one layer; maps are summed per resolution and resized once, at the end."""
        total, count = self._sums.get(size, (0, 0))
        self._sums[size] = (total + token_map.float(), count + 1)

    def attention_map(self) -> torch.Tensor | None:
        """A_fg: each resolution's mean map at the latent size, those means averaged with equal weight (SDXL has
        60 cross-attention layers at 32x32 and 10 at 64x64: a mean over maps would be the coarse one's), min-max
        normalised; None if none was captured."""
        if not self._sums:
            return None
        means = [resize_mask(s.view(*size) / count, *self.latent_size) for size, (s, count) in self._sums.items()]
        return normalize(cast(torch.Tensor, sum(means)) / len(means))

    @property
    def captured_maps(self) -> int:
        return sum(count for _, count in self._sums.values())

    # -- shearing
    @property
    def shear_objects(self) -> int:
        return 1 if self.shear_mask is None or self.shear_mask.ndim == 2 else self.shear_mask.shape[0]

    def weights_at(self, size: tuple[int, int], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each object's prompt weight [K, 1, 1, N, 1] and the background's [1, 1, N, 1] at a layer's size."""
        key = (size, like.device, like.dtype)
        if key not in self._mask_cache:
            assert self.shear_mask is not None, "weights_at is for shearing, which has a mask"
            masks = self.shear_mask if self.shear_mask.ndim == 3 else self.shear_mask[None]
            resized = torch.stack([resize_mask(m, *size) for m in masks]).clamp(0, 1)
            weights, remainder = front_to_back(resized.float())
            self._mask_cache[key] = (weights.reshape(len(masks), 1, 1, -1, 1).to(like.device, like.dtype),
                                     remainder.reshape(1, 1, -1, 1).to(like.device, like.dtype))
        return self._mask_cache[key]


class _CrossAttention:
    """The steps of AttnProcessor2_0, split so that subclasses can attend to several prompts with one query."""

    def __init__(self, state: AttentionState, layer_name: str):
        self.state = state
        self.layer_name = layer_name

    def _begin(self, attn, hidden_states, temb):
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        shape = None
        if hidden_states.ndim == 4:
            shape = hidden_states.shape
            b, c, h, w = shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        return hidden_states, residual, shape

    @staticmethod
    def _split_heads(attn, x, batch):
        head_dim = x.shape[-1] // attn.heads
        return x.view(batch, -1, attn.heads, head_dim).transpose(1, 2)

    def _key_value(self, attn, context, batch):
        if attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        key = self._split_heads(attn, attn.to_k(context), batch)
        value = self._split_heads(attn, attn.to_v(context), batch)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        return key, value

    def _query(self, attn, hidden_states, batch):
        query = self._split_heads(attn, attn.to_q(hidden_states), batch)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        return query

    def _end(self, attn, out, residual, shape, batch, query_dtype):
        out = out.transpose(1, 2).reshape(batch, -1, out.shape[1] * out.shape[-1]).to(query_dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if shape is not None:
            out = out.transpose(-1, -2).reshape(shape)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor

    def _mask(self, attn, attention_mask, sequence_length, batch):
        if attention_mask is None:
            return None
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch)
        return attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])


class AttentionCaptureProcessor(_CrossAttention):
    """Phase 1: the layer's usual output, plus the object tokens' attention map of the conditional half."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        hidden_states, residual, shape = self._begin(attn, hidden_states, temb)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        batch = context.shape[0]
        mask = self._mask(attn, attention_mask, context.shape[1], batch)
        query = self._query(attn, hidden_states, batch)
        key, value = self._key_value(attn, context, batch)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=0.0, is_causal=False)
        if self.state.capturing:
            factor, size = self.state.factor_of(query.shape[2])
            if factor in self.state.capture_factors:
                self._record(query, key, attn.scale, size)
        return self._end(attn, out, residual, shape, batch, query.dtype)

    def _record(self, query, key, scale, size):
        half = query.shape[0] // 2 if self.state.cfg else 0
        logits = query[half:] @ key[half:].transpose(-1, -2) * scale  # [b, heads, N, T]
        probs = torch.softmax(logits, dim=-1, dtype=torch.float32)
        token_map = (probs @ self.state.token_weights(probs)).mean(dim=(0, 1))  # [N]
        self.state.add_map(token_map, size)


class AttentionShearingProcessor(_CrossAttention):
    """Phase 2: A_mix = m * Attn(T_fg) + (1 - m) * Attn(T_bg), inside CFG's batch.

    `state.shear_context` holds T_fg's and T_bg's encoder states stacked along the batch, each in CFG's order
    ([uncond, cond] for T_fg, then the same for T_bg), so both prompts take one projection and one attention call.
    The blend uses the object mask resized to this layer's own resolution. The encoder states the UNet passes in
    (T_all) are not used here; layers that do not shear keep their own processor and attend to T_all.
    With K objects (`shear_mask` [K, H, W], context T_1 .. T_K, T_bg), each object's prompt rules where its mask is
    visible, later objects in front: sum_k w_k * Attn(T_k) + (1 - sum_k w_k) * Attn(T_bg) (masks.front_to_back).
    """

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if attention_mask is not None or encoder_hidden_states is None:
            raise ValueError("attention shearing is for cross-attention layers without attention masks")
        context = self.state.shear_context
        hidden_states, residual, shape = self._begin(attn, hidden_states, temb)
        batch = hidden_states.shape[0]
        prompts = self.state.shear_objects + 1
        if context is None or context.shape[0] != prompts * batch:
            raise ValueError(f"shear_context must stack {prompts - 1} object prompt(s) and T_bg for a batch of {batch}")
        query = self._query(attn, hidden_states, batch)
        key, value = self._key_value(attn, context, prompts * batch)
        out = F.scaled_dot_product_attention(torch.cat([query] * prompts), key, value)
        _, size = self.state.factor_of(query.shape[2])
        weights, remainder = self.state.weights_at(size, out)
        objects = out[: (prompts - 1) * batch].unflatten(0, (prompts - 1, batch))
        out = out[(prompts - 1) * batch:] * remainder + (objects * weights).sum(0)
        return self._end(attn, out, residual, shape, batch, query.dtype)


def install_processors(unet, make_processor) -> dict:
    """Put `make_processor(name)` on every cross-attention layer (None keeps the layer's own); returns the old ones.

    Memory helpers (attention slicing, fused QKV, some offload paths) swap processors silently, so the pipeline
    installs its own last, right before each phase, and checks them with `check_installed`.
    """
    previous = dict(unet.attn_processors)
    cross = set(cross_attention_layers(unet))
    processors = {}
    for name, proc in previous.items():
        mine = make_processor(name) if name in cross else None
        processors[name] = proc if mine is None else mine
    unet.set_attn_processor(processors)
    return previous


def check_installed(unet, kind: type, layers=None) -> None:
    """Raise if any cross-attention layer (of `layers`, default all) lost its `kind` processor."""
    processors = unet.attn_processors
    wrong = [n for n in (cross_attention_layers(unet) if layers is None else layers)
             if not isinstance(processors[n], kind)]
    if wrong:
        raise RuntimeError(f"{len(wrong)} cross-attention layers lost their {kind.__name__} (e.g. {wrong[0]}): "
                           "a memory helper replaced them; enable it before calling the pipeline")
