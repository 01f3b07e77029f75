"""Write an SDXL pipeline as one original-format (.safetensors) checkpoint, as A1111/ComfyUI users share them.

The inverse of diffusers' single-file conversion, derived from the UNet's and VAE's configs rather than hard-coded
for SDXL's sizes, so the tiny test models round-trip through `from_single_file` exactly like a real checkpoint.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
           ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection")]
_UNET_FIXED = {
    "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
    "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
}
_VAE_ATTENTION = [("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."),
                  ("to_out.0.", "proj_out.")]


def _resnet_part(rest: str) -> str:
    for hf, sd in _RESNET:
        if rest.startswith(hf + "."):
            return sd + rest[len(hf):]
    return rest


def unet_key(key: str, config) -> str:
    stride = config.layers_per_block + 1
    head, _, tail = key.partition(".")
    for hf, sd in _UNET_FIXED.items():
        if key.startswith(hf + "."):
            return sd + key[len(hf):]
    if m := re.match(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        i, j, rest = int(m[1]), int(m[2]), m[3]
        return f"input_blocks.{i * stride + j + 1}.0.{_resnet_part(rest)}"
    if m := re.match(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", key):
        i, j, rest = int(m[1]), int(m[2]), m[3]
        return f"input_blocks.{i * stride + j + 1}.1.{rest}"
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"input_blocks.{(int(m[1]) + 1) * stride}.0.op.{m[2]}"
    if m := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        i, j, rest = int(m[1]), int(m[2]), m[3]
        return f"output_blocks.{i * stride + j}.0.{_resnet_part(rest)}"
    if m := re.match(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", key):
        i, j, rest = int(m[1]), int(m[2]), m[3]
        return f"output_blocks.{i * stride + j}.1.{rest}"
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        i = int(m[1])
        has_attention = "CrossAttn" in config.up_block_types[i]
        return f"output_blocks.{i * stride + stride - 1}.{2 if has_attention else 1}.conv.{m[2]}"
    if m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet_part(m[2])}"
    if m := re.match(r"mid_block\.attentions\.0\.(.*)", key):
        return f"middle_block.1.{m[1]}"
    raise ValueError(f"no single-file name for UNet weight {key!r} ({head}.{tail})")


def vae_key(key: str, config) -> str:
    levels = len(config.block_out_channels)
    key = key.replace("conv_shortcut", "nin_shortcut").replace("conv_norm_out", "norm_out")
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.*)", key):
        return f"encoder.down.{m[1]}.downsample.{m[2]}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"decoder.up.{levels - 1 - int(m[1])}.block.{m[2]}.{m[3]}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.*)", key):
        return f"decoder.up.{levels - 1 - int(m[1])}.upsample.{m[2]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key):
        rest = m[2]
        for hf, sd in _VAE_ATTENTION:
            if rest.startswith(hf):
                rest = sd + rest[len(hf):]
        return f"{m[1]}.mid.attn_1.{rest}"
    return key


def open_clip_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CLIPTextModelWithProjection weights in OpenCLIP's layout (fused q/k/v, transposed projection)."""
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    fixed = {
        "text_model.embeddings.position_embedding.weight": "positional_embedding",
        "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
        "text_model.final_layer_norm.weight": "ln_final.weight",
        "text_model.final_layer_norm.bias": "ln_final.bias",
    }
    for key, value in state.items():
        if key in fixed:
            out[fixed[key]] = value
        elif key == "text_projection.weight":
            out["text_projection"] = value.T.contiguous()
        elif m := re.match(r"text_model\.encoder\.layers\.(\d+)\.(.*)", key):
            layer, rest = m[1], m[2]
            if q := re.match(r"self_attn\.([qkv])_proj\.(weight|bias)", rest):
                fused.setdefault(f"transformer.resblocks.{layer}.attn.in_proj_{q[2]}", {})[q[1]] = value
                continue
            rest = (rest.replace("self_attn.", "attn.").replace("layer_norm1", "ln_1").replace("layer_norm2", "ln_2")
                    .replace("mlp.fc1", "mlp.c_fc").replace("mlp.fc2", "mlp.c_proj"))
            out[f"transformer.resblocks.{layer}.{rest}"] = value
        elif key.endswith("position_ids"):
            continue
        else:
            raise ValueError(f"no single-file name for text encoder 2 weight {key!r}")
    for key, parts in fused.items():
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def single_file_state_dict(pipe) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for key, value in pipe.unet.state_dict().items():
        state["model.diffusion_model." + unet_key(key, pipe.unet.config)] = value
    for key, value in pipe.vae.state_dict().items():
        name = vae_key(key, pipe.vae.config)
        if re.search(r"mid\.attn_1\.(q|k|v|proj_out)\.weight$", name) and value.ndim == 2:
            value = value.reshape(*value.shape, 1, 1)
        state["first_stage_model." + name] = value
    for key, value in pipe.text_encoder.state_dict().items():
        if not key.endswith("position_ids"):  # original checkpoints name them text_model.*, as transformers 4 did
            name = key if key.startswith("text_model.") else "text_model." + key
            state["conditioner.embedders.0.transformer." + name] = value
    for key, value in open_clip_state_dict(pipe.text_encoder_2.state_dict()).items():
        state["conditioner.embedders.1.model." + key] = value
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def save_single_file(pipe, path: str | Path) -> Path:
    """Save `pipe`'s UNet, VAE and both text encoders as one original-format .safetensors checkpoint."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(single_file_state_dict(pipe), str(path))
    return path
