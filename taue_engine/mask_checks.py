"""What phase 1 found that the user should hear about: a key backdrop that did not form, an object mask that is
implausibly large or small, or one that had to drop one of its two signals. The job still gives its layers; each
finding is one line in the result's `warnings` (taue.json), which the CLI prints and the server and plug-ins show,
saying what happened and what to try."""

from __future__ import annotations

from typing import Any

MIN_BACKDROP = 0.5
"""OURS: the share of the picture outside an object's gate that must be key-coloured (keying's MIN_KEY_EXCESS) for
the backdrop to count as formed. Measured: tiny-random's random weights paint none (0.05 of "a red circle" at
128 px); the toy's 14 CI testbed pairs are all 1.00."""
MASK_FRACTION_RANGE = (0.002, 0.8)
"""OURS: an object mask covering less than 0.2% of the picture (two 1024 px latent cells) holds almost nothing in
the composite; one covering more than 80% took the backdrop for the object. Measured: the toy's 14 CI testbed
pairs cover 9-31% (none warned); tiny-random's "a red circle" 85%."""


def phase_one_warnings(objects: list[dict[str, Any]], asked_key: str | None = None) -> list[str]:
    """One line per finding, from each object's entry in taue.json's `objects` (its prompt, mask_source,
    mask_fraction and the keying's key and backdrop_fraction); `asked_key`: the key colour the job asked for."""
    lines = []
    for number, entry in enumerate(objects, 1):
        name = f"object {number} ({entry['prompt']!r})" if len(objects) > 1 else f"the object ({entry['prompt']!r})"
        painted = entry.get("key")
        if asked_key and painted and painted != asked_key:
            lines.append(f"{name}: asked for a {asked_key} backdrop, the model painted {painted}, so its layer is "
                         f"keyed on {painted}; check its edges, or ask for the {painted} key")
        backdrop = entry.get("backdrop_fraction")
        if backdrop is not None and backdrop < MIN_BACKDROP:
            lines.append(f"{name}: the key backdrop did not form (only {backdrop:.0%} of the picture around it is the "
                         "key colour), so its layer may keep parts of the backdrop and its mask may be wrong; try "
                         "another seed, a simpler object prompt, or another key colour (blue or magenta)")
        fraction = entry.get("mask_fraction")
        low, high = MASK_FRACTION_RANGE
        if fraction is not None and fraction > high:
            lines.append(f"{name}: its mask covers {fraction:.0%} of the picture, so the backdrop was read as the "
                         "object and the composite holds nearly all of the foreground run; try another seed or a "
                         "layout box")
        elif fraction is not None and fraction < low:
            lines.append(f"{name}: its mask covers only {fraction:.2%} of the picture, so the object may be missing "
                         "from the composite; try another seed or a simpler object prompt")
        source = entry.get("mask_source")
        if source == "key (attention dropped)":
            lines.append(f"{name}: its words drew no attention where it stands off the key, so its mask is the key "
                         "signal alone; name the object in the prompt's first words")
        elif source == "attention (key dropped)":
            lines.append(f"{name}: no part of the picture stood off the key colour, so its mask is the attention "
                         "alone; the backdrop may not have formed (try another seed or key colour)")
    return lines
