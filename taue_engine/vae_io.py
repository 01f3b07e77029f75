"""The VAE's side of TAUE: pictures into the UNet's latent units and back, and the latents of solid colours that
the key is measured and injected with.

Every latent here is in the UNet's units (the VAE's latent scaled as SDXL scales it), so that what is encoded can
be transplanted, and what the scheduler predicts can be decoded, exactly as SDXL's own __call__ would.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .config import KEY_COLORS, TAUEConfig
from .keying import MIN_KEY_PIXELS, key_backdrop, key_excess
from .masks import fine_latent, latent_distance

CALIBRATION_CELLS = 32
"""Latent cells a side of the solid images that E(colour) is measured on (256 px for SDXL)."""
CALIBRATION_BORDER = 8
"""Cells left out at each edge of them: the encoder sees the image's edge this far in (measured: the latent of a
solid colour differs from its inner cells' up to 2 cells in on the toy's VAE and 7 on tiny-random's), and a key
backdrop is measured where it lies, away from the picture's edge."""
GREY = (0.5, 0.5, 0.5)
"""The neutral colour E(key) is measured against: the key distance's unit is ||E(key) - E(grey)||."""


class VaeIOMixin:
    """For a diffusers pipeline with `vae`, `unet` and `vae_scale_factor`. The pipeline's __init__ calls
    `_init_vae_io`."""

    if TYPE_CHECKING:  # the pipeline's own
        vae: Any
        unet: Any
        vae_scale_factor: int
        _execution_device: torch.device

        def register_modules(self, **modules: Any) -> None: ...

    def _init_vae_io(self) -> None:
        self._solid_latents: dict[tuple[int, str], torch.Tensor] = {}  # (VAE, colour name) -> E(colour)
        self.vae_name: str | None = None  # a replacement VAE's name (replace_vae), or None: the model's own

    def replace_vae(self, vae: str | Any, dtype: torch.dtype | None = None) -> None:
        """Decode and encode with `vae` (a folder, .safetensors file, hub id or module; TAUEPipeline.from_pretrained
        says which) instead of the model's own. What was measured with the old VAE is measured again: the solid
        colours' latents here, the previews' map (cached per VAE) on first use.

        Raises:
            ModelLoadError: the VAE cannot be found or read, or makes latents the UNet does not take.
        """
        from .models import loading

        name = vae if isinstance(vae, str) else type(vae).__name__
        if isinstance(vae, str):
            vae = loading.load_vae(vae, dtype or self.vae.dtype, like=self.vae)
        loading.check_vae_fits(vae, self.unet, self.vae, name)
        self.register_modules(vae=vae.to(self.vae.device))
        self._init_vae_io()
        self.vae_name = name

    @contextmanager
    def _vae_for_io(self):
        """The VAE, in float32 for the call if it is a float16 VAE that asks for it (`force_upcast`, as SDXL's own
        __call__ does), back in its own dtype afterwards."""
        vae = self.vae
        dtype = vae.dtype
        upcast = dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
        if upcast:
            vae.to(torch.float32)
        try:
            yield vae
        finally:
            if upcast:
                vae.to(dtype)

    def latent_scale(self, device) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """(offset, scale) with UNet latent = (VAE latent - offset) * scale: the VAE's latents_mean and
        scaling_factor / latents_std when its config has both, else (0, scaling_factor)."""
        config = self.vae.config
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        if mean is not None and std is not None:
            return (torch.tensor(mean, device=device).view(1, -1, 1, 1),
                    config.scaling_factor / torch.tensor(std, device=device).view(1, -1, 1, 1))
        return 0.0, config.scaling_factor

    @torch.no_grad()
    def encode_pixels(self, image: Image.Image) -> torch.Tensor:
        """The VAE's mean latent of an RGB image, in the UNet's units; [1, C, h, w] float32 on the CPU. What a
        brought layer's seedling starts from. (Not `encode_image`: that is SDXL's IP-Adapter image encoder.)"""
        pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0)
        pixels = pixels.permute(2, 0, 1)[None]
        with self._vae_for_io() as vae:
            encoded = vae.encode(pixels.to(self._execution_device, vae.dtype))
            # AutoencoderKL gives a distribution (its mean is the latent), AutoencoderTiny the latent itself
            latent = (encoded.latent_dist.mean if hasattr(encoded, "latent_dist") else encoded.latents).float()
        offset, scale = self.latent_scale(latent.device)
        return ((latent - offset) * scale).cpu()

    @torch.no_grad()
    def decode_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """The VAE's picture of a latent in the UNet's units [1, C, h, w]: [H, W, 3] float32 in 0..1 on the CPU,
        decoded as SDXL's own __call__ decodes (the inverse of `encode_pixels`' scaling)."""
        latent = latent.float().to(self._execution_device)
        offset, scale = self.latent_scale(latent.device)
        with self._vae_for_io() as vae:
            image = vae.decode((latent / scale + offset).to(vae.dtype)).sample
        return ((image[0].float().permute(1, 2, 0) + 1.0) / 2.0).clamp(0.0, 1.0).cpu()

    def solid_latent(self, name: str, rgb: tuple[float, float, float]) -> torch.Tensor:
        """E(colour): the VAE's mean latent of a solid image of that colour (RGB in 0..1) over its inner cells, [C];
        measured once per VAE (a replaced VAE is measured again) and colour name."""
        cached = (id(self.vae), name)
        if cached not in self._solid_latents:
            side = CALIBRATION_CELLS * self.vae_scale_factor
            solid = Image.new("RGB", (side, side), tuple(round(255 * v) for v in rgb))
            inner = slice(CALIBRATION_BORDER, CALIBRATION_CELLS - CALIBRATION_BORDER)
            self._solid_latents[cached] = self.encode_pixels(solid)[0, :, inner, inner].mean(dim=(1, 2))
        return self._solid_latents[cached]

    def key_calibration(self) -> dict[str, torch.Tensor]:
        """What this VAE's solid colours measured so far, by colour name: kept by a server that switches models, so
        that loading this one again measures nothing (restore_key_calibration)."""
        return {name: value for (vae, name), value in self._solid_latents.items() if vae == id(self.vae)}

    def restore_key_calibration(self, values: dict[str, torch.Tensor]) -> None:
        """Put back what key_calibration gave for the same model and VAE."""
        self._solid_latents.update({(id(self.vae), name): value for name, value in values.items()})

    def key_latents(self) -> dict[str, list[float]]:
        """The model's calibration, as each result's taue.json records it: E(colour) of every key colour and of
        grey (what the injection of a non-green key and the object mask's key distance are built from)."""
        colours = {**KEY_COLORS, "grey": GREY}
        return {name: [round(float(v), 4) for v in self.solid_latent(name, rgb)] for name, rgb in colours.items()}

    def key_latent(self, config: TAUEConfig) -> tuple[float, ...]:
        """C, the latent that phase 1 injects for `config.key_color`: E(key) - E(grey), the model's own step from a
        mid grey to a solid key colour (TAUEConfig.green_latent says why); a `green_latent` given in the config is
        injected as it is for the green key.

        Raises:
            ValueError: green_latent has not one value per channel of this model's latent.
        """
        given = config.green_latent
        if given and len(given) != self.unet.config.in_channels:
            raise ValueError(f"green_latent must have {self.unet.config.in_channels} values for this model "
                             f"(got {len(given)})")
        if given and config.key_color == "green":
            return given
        step = self.solid_latent(config.key_color, KEY_COLORS[config.key_color]) - self.solid_latent("grey", GREY)
        return tuple(float(v) for v in step)

    def key_reference(self, key_color: str) -> tuple[torch.Tensor, float]:
        """What the object mask measures against: E(key), the latent a clean key-coloured backdrop has, and the
        unit ||E(key) - E(grey)|| (a mid grey is at distance 1 from the key)."""
        key = self.solid_latent(key_color, KEY_COLORS[key_color])
        grey = self.solid_latent("grey", GREY)
        return key, float((key - grey).norm())

    def key_distance_map(self, clean: torch.Tensor, config: TAUEConfig, size: tuple[int, int],
                         around: torch.Tensor | None = None) -> torch.Tensor:
        """How far each pixel of a clean estimate is from the backdrop this job painted, [H, W] at `size`: 0 on
        it, 1 on a mid grey, read off the latent or the decoded picture as `config.mask_signal` says.

        The backdrop is measured where it should be (`around`, bool [H, W] at `size`: the injection mask on and
        the object's attention low): a model paints its own key colour, rarely the pure one, and the clean estimate
        at the cut is smoother still. Where too little of it is near the key (the backdrop did not form; no
        `around`), the pure key colour stands in (mask_checks warns of that backdrop).
        """
        if config.mask_signal == "latent":
            key, unit = self.key_reference(config.key_color)
            fine = fine_latent(clean, size)
            if around is not None:
                grey = self.solid_latent("grey", GREY)
                near = around & (latent_distance(fine, key) < latent_distance(fine, grey))
                if int(near.sum()) >= MIN_KEY_PIXELS:
                    key = fine[:, near].median(dim=1).values
                    unit = float((key - grey).norm())
            return latent_distance(fine, key, unit)
        rgb = self.decode_latent(clean)
        if tuple(rgb.shape[:2]) != tuple(size):
            rgb = F.interpolate(rgb.permute(2, 0, 1)[None], size=size, mode="bilinear", align_corners=False)[0]
            rgb = rgb.permute(1, 2, 0)
        excess = key_excess(rgb.clamp(0.0, 1.0), config.key_color)
        reference = 1.0
        if around is not None:
            backdrop = key_backdrop(rgb, around, config.key_color)
            if int(backdrop.sum()) >= MIN_KEY_PIXELS:
                reference = float(excess[backdrop].median())
        return 1.0 - excess / reference
