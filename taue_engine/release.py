"""The held objects let go over the composite's own background, not over the key colour they grew on.

Phase 2 holds each object's seedling in whole latent cells. A rim cell is part object and part the key backdrop of
phase 1, and what is held at the cut is released as it is: the key colour in the rim survives the composite's last
steps as a fringe around the object and a trace of the key in the background plate. At the cut, the held region's
clean part is therefore replaced by its seedling (phase 1's clean estimate, decoded) laid over the composite's own
background there (the composite's clean estimate, filled into the held cells from the free cells around them):
as it is inside m_obj (less a thin band inside its edge, `release_erosion`), and elsewhere as far as the keying
finds object (keyed as the layer is: partial alpha, unmixed from the key). The swap is made in pixels, where the
object's edge is exact, and enters the latent as E(seedling over background) - E(seedling), so that what the VAE
does not reproduce cancels and only the rim changes. Keying the inside too (the clean estimate at the cut is
blurred, and a keyed alpha there is partial) lightened whole objects and lost small ones in the toy's several-object
scenes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .config import TAUEConfig
from .keying import foreground_rgba
from .masks import erode, resize_mask

FILL_REACH = 2
"""Latent cells a fill step reaches: each held cell takes the average of the free cells this near, repeated
outwards until every held cell has a value (the decoder draws a pixel from the cells around it, in cells)."""


def fill_from(latent: torch.Tensor, free: torch.Tensor, reach: int = FILL_REACH) -> torch.Tensor:
    """`latent` [1, C, h, w] with every cell outside `free` ([h, w], 1 where the value is known) set to the
    average of the known cells within `reach`, growing outwards until all are set; unchanged where free."""
    latent, known = latent.float(), free.float()[None, None].to(latent.device)
    filled = latent * known
    size = 2 * reach + 1
    for _ in range(max(latent.shape[-2:])):
        if bool(known.min() > 0.5):
            break
        total = F.avg_pool2d(filled * known, size, stride=1, padding=reach)
        share = F.avg_pool2d(known, size, stride=1, padding=reach)
        new = (share > 1e-6) & (known < 0.5)
        filled = torch.where(new, total / share.clamp_min(1e-6), filled)
        known = torch.maximum(known, new.float())
    if bool(known.min() < 0.5):  # nothing free at all
        return latent
    return torch.where(free[None, None].to(latent.device) > 0.5, latent, filled)


def kept_inside(m_obj: torch.Tensor, size: tuple[int, int], erosion: float) -> torch.Tensor:
    """Where the release keeps the object as it is: m_obj at the image size (bool [H, W]), shrunk by `erosion` x the
    shorter side, so that the key a blurred clean estimate leaves just inside m_obj's edge is keyed."""
    inside = (resize_mask(m_obj.float().cpu(), *size) > 0.5).float()
    return erode(inside, round(erosion * min(size))) > 0.5


def _image(pixels: torch.Tensor) -> Image.Image:
    return Image.fromarray((pixels.clamp(0, 1).numpy() * 255).round().astype(np.uint8), mode="RGB")


class KeyedRelease:
    """What the held region's clean part gains at the cut: E(the objects over the composite's background: inside
    m_obj as they are, outside it keyed) - E(the seedlings as held). Built from each object's clean estimate at the
    cut, its m_obj at the image size (None: its held cells stand in), its held cells, the key it grew on, and its
    share of the held region (`weights`, masks.front_to_back: later objects in front). `decode` and `encode` are
    the pipeline's VAE in the UNet's units (vae_io.VaeIOMixin.decode_latent / encode_pixels)."""

    def __init__(self, cleans: Sequence[torch.Tensor | None], fine_masks: Sequence[torch.Tensor | None],
                 held_masks: Sequence[torch.Tensor], key_names: Sequence[str], weights: torch.Tensor,
                 union: torch.Tensor, config: TAUEConfig, decode: Callable[[torch.Tensor], torch.Tensor],
                 encode: Callable[[Image.Image], torch.Tensor], device: torch.device | str = "cpu"):
        if any(c is None for c in cleans):
            raise ValueError("every held object needs its clean estimate at the cut to be released keyed")
        self.cleans = [c.float().cpu() for c in cleans if c is not None]
        self.weights, self.union = weights.float().cpu(), union.float().cpu()
        self.gates = [m if m is not None else h.float() for m, h in zip(fine_masks, held_masks)]
        self.key_names, self.config = list(key_names), config
        self.decode, self.encode, self.device = decode, encode, device

    def __call__(self, composite_clean: torch.Tensor) -> torch.Tensor:
        """The latent step [1, C, h, w] (clean units, float32 on the CPU) for the composite's clean estimate at the
        cut; meant for the held cells only (HeldRegion masks it)."""
        union = self.union
        seedlings = [self.decode(c) for c in self.cleans]
        if len(seedlings) == 1:
            as_held = seedlings[0]
        else:  # the held target's clean part; the first object's backdrop around it
            held = sum(w[None, None] * c for w, c in zip(self.weights, self.cleans)) / union.clamp_min(1e-6)
            as_held = self.decode(torch.where(union[None, None] > 0, held, self.cleans[0]))
        background = self.decode(fill_from(composite_clean.float().cpu(), 1 - union).to(composite_clean.dtype))
        over = background
        for pixels, gate, key in zip(seedlings, self.gates, self.key_names):  # back to front
            layer, _ = foreground_rgba(_image(pixels), gate.to(self.device), self.config, self.device, key)
            rgba = torch.from_numpy(np.asarray(layer, dtype=np.float32) / 255.0)
            height, width = pixels.shape[:2]
            inside = kept_inside(gate, (height, width), self.config.release_erosion)[..., None]
            alpha = torch.where(inside, torch.ones_like(rgba[..., 3:]), rgba[..., 3:])
            colour = torch.where(inside, pixels, rgba[..., :3])
            over = alpha * colour + (1 - alpha) * over
        return self.encode(_image(over)) - self.encode(_image(as_held))
