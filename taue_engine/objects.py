"""What a request asks for: its objects, what each is (its prompt) and where it goes (its layout box, or the
default arrangement), and its other arguments checked before any work. What is kept of the objects after a job, to
put them into new scenes, is `transplant.Transplant`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .config import MAX_SIZE, MIN_SIZE, SIZE_MULTIPLE, LayoutBox

MAX_OBJECTS = 8


@dataclass(frozen=True)
class SceneObject:
    """One object of a request: what it is, and where it goes (None: the default arrangement)."""

    prompt: str
    layout: LayoutBox | None = None


def default_layout(index: int, count: int) -> LayoutBox | None:
    """Where object `index` of `count` goes when its box is left out: one object centred as TKG-DM places it (no
    box); several side by side in equal columns, each filling 85% of its column and 60% of the height."""
    if count == 1:
        return None
    width = 1.0 / count
    return LayoutBox(cx=(index + 0.5) * width, cy=0.5, w=0.85 * width, h=0.6)


def as_layout(layout) -> LayoutBox | None:
    """A LayoutBox from None, a LayoutBox, a dict {cx, cy, w, h} or a 4-sequence; ValueError otherwise."""
    if layout is None or isinstance(layout, LayoutBox):
        return layout
    if isinstance(layout, dict):
        missing = [k for k in ("cx", "cy", "w", "h") if k not in layout]
        if missing:
            raise ValueError(f"layout needs cx, cy, w and h in 0..1 (missing {', '.join(missing)})")
        return LayoutBox(**{k: layout[k] for k in ("cx", "cy", "w", "h")})
    if isinstance(layout, (tuple, list)) and len(layout) == 4:
        return LayoutBox(*layout)
    raise ValueError(f"layout must be (cx, cy, w, h) in 0..1 (got {layout!r})")


def scene_objects(objects, foreground_prompt: str | None = None, layout=None) -> list[SceneObject]:
    """The request's objects: `objects` (SceneObjects, dicts {prompt, layout} or prompts), or the one object of a
    single-object request; boxes left out take the default arrangement. ValueError says what to change."""
    if objects is None:
        if not isinstance(foreground_prompt, str) or not foreground_prompt.strip():
            raise ValueError(f"foreground_prompt must be a non-empty string (got {foreground_prompt!r})")
        return [SceneObject(foreground_prompt, as_layout(layout))]
    if foreground_prompt is not None or layout is not None:
        raise ValueError("give either objects or foreground_prompt (and layout), not both")
    if not isinstance(objects, (list, tuple)) or not 1 <= len(objects) <= MAX_OBJECTS:
        raise ValueError(f"objects must be a list of 1..{MAX_OBJECTS} objects (got {objects!r})")
    parsed = []
    for n, item in enumerate(objects, 1):
        if isinstance(item, SceneObject):
            prompt, box = item.prompt, item.layout
        elif isinstance(item, str):
            prompt, box = item, None
        elif isinstance(item, dict):
            unknown = sorted(set(item) - {"prompt", "layout"})
            if unknown:
                raise ValueError(f"object {n}: unknown field(s) {', '.join(unknown)}; an object has prompt and layout")
            prompt, box = item.get("prompt"), item.get("layout")  # type: ignore[assignment]  # checked below
        else:
            raise ValueError(f"object {n} must be {{'prompt': ..., 'layout': ...}} (got {item!r})")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"object {n}: prompt must be a non-empty string (got {prompt!r})")
        try:
            box = as_layout(box)
        except ValueError as error:
            raise ValueError(f"object {n}: {error}") from None
        parsed.append(SceneObject(prompt, box))
    return [obj if obj.layout is not None else replace(obj, layout=default_layout(i, len(parsed)))
            for i, obj in enumerate(parsed)]


def check_request(background_prompt, composite_prompt, negative_prompt, seed, width, height) -> None:
    """ValueError naming the first of a request's prompts, seed and size that is out of range."""
    for name, value, required in (("background_prompt", background_prompt, True),
                                  ("composite_prompt", composite_prompt, False),
                                  ("negative_prompt", negative_prompt, False)):
        if value is None and not required:
            continue
        if not isinstance(value, str) or (required and not value.strip()):
            raise ValueError(f"{name} must be a non-empty string (got {value!r})")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a whole number in 0..2^63-1 (got {seed!r})")
    for name, value in (("width", width), ("height", height)):
        if (isinstance(value, bool) or not isinstance(value, int) or value % SIZE_MULTIPLE
                or not MIN_SIZE <= value <= MAX_SIZE):
            raise ValueError(f"{name} must be a multiple of {SIZE_MULTIPLE} in {MIN_SIZE}..{MAX_SIZE} (got {value!r})")
