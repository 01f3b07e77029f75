"""Every hyperparameter of TAUE in one validated dataclass.

Values the paper gives are marked PAPER; values it leaves open are marked UNKNOWN, with the reason for our default.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, cast

from .schedulers import SCHEDULERS, TIMESTEP_SPACINGS, check_steps, scheduler_name

SHEAR_BLOCKS = ("down", "mid", "up")
MODEL_CARD_FIELDS = ("num_inference_steps", "scheduler", "timestep_spacing", "guidance_foreground",
                     "guidance_composite", "guidance_background", "crop_ratio")
"""The settings a model folder's taue_config.json may choose: the sampling choices a model card gives (SDXL-Turbo's
tells its users steps, guidance and spacing). Thresholds, injection and keying are measured on the model itself,
so that every model runs the defaults an SDXL user gets."""
MIN_SIZE, MAX_SIZE, SIZE_MULTIPLE = 64, 4096, 8  # image width and height, in pixels
MASK_SIGNALS = ("latent", "decoded")  # where m_obj's key distance is read (TAUEConfig.mask_signal)
KEY_COLORS: dict[str, tuple[float, float, float]] = {
    "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0), "magenta": (1.0, 0.0, 1.0)}
"""The backdrops phase 1 paints and keying removes, by the name TAUEConfig.key_color takes, as RGB in 0..1: green
(the paper's), or blue / magenta for a green object. The one table of key colours: the config's validation, the
keying, the pipeline's key latents, the CLI's choices and the lab's world all read it."""


@dataclass(frozen=True)
class LayoutBox:
    """Where the object goes: centre (cx, cy) and size (w, h), all fractions of the image (0..1)."""

    cx: float
    cy: float
    w: float
    h: float

    def __post_init__(self) -> None:
        for name in ("cx", "cy"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"layout.{name} must be a number in 0..1 (got {value!r})")
        for name in ("w", "h"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
                raise ValueError(f"layout.{name} must be a number in (0, 1] (got {value!r})")

    @classmethod
    def parse(cls, text: str) -> LayoutBox:
        """Parse 'CX,CY,W,H' (the CLI's form)."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 4:
            raise ValueError(f"layout must be four numbers CX,CY,W,H in 0..1 (got {text!r})")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"layout must be four numbers CX,CY,W,H in 0..1 (got {text!r})") from None
        return cls(*values)

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TAUEConfig:
    """Hyperparameters of the three phases. Construct with keywords; `replace(**changes)` re-validates."""

    # --- sampling (PAPER) ---
    num_inference_steps: int = 50
    """PAPER: 50 denoising steps per phase. Allowed: 2..1000."""
    scheduler: str = "euler"
    """PAPER: 'euler' (diffusers' EulerDiscreteScheduler, built from the checkpoint's scheduler config). Also
    'dpmpp_2m', 'dpmpp_2m_karras', 'ddim', 'unipc' and 'lcm' (LCM-distilled weights, 2-12 steps); the cut and
    the hold work in each one's own noise space (schedulers.NoiseLevels). Ancestral samplers (euler_a, dpmpp_2s_a,
    SDE) add fresh noise at every step and are refused with the one to use."""
    timestep_spacing: str = "model"
    """OURS: how the steps are spread over the training timesteps: 'model' keeps the checkpoint's scheduler config
    (SDXL: 'leading'); few-step models (SDXL-Lightning, Hyper-SD, Turbo) want 'trailing', which starts at the
    last timestep (with 4 'leading' steps the first is t = 751, not 999). Allowed: model, leading, trailing,
    linspace."""
    guidance_foreground: float = 7.5
    """PAPER: classifier-free guidance scale of phase 1 (foreground on green). Allowed: 0..50 (<=1 turns CFG off)."""
    guidance_composite: float = 5.0
    """PAPER: guidance of phase 2 (composite). Allowed: 0..50."""
    guidance_background: float = 5.0
    """PAPER: guidance of phase 3 (background). Allowed: 0..50."""
    crop_ratio: float = 0.5
    """PAPER: r_crop. The paper cuts the seedling at timestep t_crop = floor(T (1 - r_crop)); timesteps count down
    from T, so the cut comes after T - t_crop denoising steps (`crop_step`): 13, 25 and 38 steps of 50 at r_crop
    0.25, 0.5 and 0.75. A larger r_crop cuts later (its ablation agrees: PSNR_fg 21.12 / 23.82 / 24.33 dB at
    0.25 / 0.5 / 0.75, as a later cut holds a more finished object). Higher favours fidelity to the foreground,
    lower harmonisation. Allowed: open interval (0, 1), and it must leave at least one step on each side of the
    cut."""

    # --- phase 1: green latent injection (TKG-DM) ---
    green_latent: tuple[float, ...] = ()
    """CALIBRATION (the paper's C_gb is SDXL's green, (0, 1, 1, 0)). Empty (the default): phase 1 injects
    C = E(key) - E(grey), the model's own step from a mid grey to a solid key colour (E: the VAE's mean latent of a
    solid image, measured once per model and VAE), so that every key and every VAE gets its own green point. On
    the toy (14 testbed pairs, decoded mask): alpha IoU 0.885 with this step (|C| = 3.15 for green, within 14
    degrees of (0, 1, 1, 0)); 0.822 with the same direction at the paper's norm sqrt 2 ('a white ring' painted no
    backdrop); 0.876 with the toy's E(green) itself (|C| = 3.97). `taue doctor` prints a model's C next to the
    paper's. A list of one value per latent channel injects exactly that for the green key (the paper's literal
    C_gb on SDXL: [0, 1, 1, 0]); channels with 0 are left untouched. Allowed: empty, or one finite value per latent
    channel, not all zero."""
    key_color: str = "green"
    """OURS (not in the paper, which keys on green only). The backdrop colour of phase 1, used alike by the
    injection, the object mask and the keying: 'green' (default), or 'blue' / 'magenta' for a green object."""
    green_alpha: float = 0.22
    """UNKNOWN (alpha). z = (1-alpha) z_T + alpha C on the green channels where M = 1. 0.22 raises the fraction of
    positive values on those channels from 0.50 to 0.61 (Phi(0.22/0.78) = 0.61), exactly the +0.11 shift that
    TKG-DM, the foreground method TAUE builds on, publishes. Allowed: 0..1."""
    mask_std: float = 0.5
    """TKG-DM: std s of the centred Gaussian on a [-1,1]^2 grid that keeps the object area free of green when no
    layout box is given. Allowed: > 0 (at most 10)."""
    layout_mask_std: float = 0.85
    """UNKNOWN (s with a layout box). 0.85 = 1/sqrt(2 ln 2) puts P = 0.5 on the box's edge, so the box outline
    is the line where the dithered mask is half green: the object fills its box. Allowed: > 0 (at most 10)."""
    layout_mask_power: float = 4.0
    """OURS (1 = the paper's Gaussian): with a layout box, P = exp(-(r^2 / (2 s^2))^power), so that P is nearly
    1 inside the box and falls fast outside it. With the paper's Gaussian, dithered green reaches well inside the
    box and un-greened cells well outside it: on the toy (8 single objects boxed in the corners, 3 two-object
    scenes), 52% / 69% of the object's alpha landed in its box at power 1, 66% / 80% at power 4, 66% / 78% with a
    hard box mask (no Gaussian at all). Allowed: 1..16."""
    mask_p_min: float = 0.0
    """UNKNOWN (p_min). P is rescaled to [p_min, p_max]; M = 1 where uniform R > P. p_min = 0 makes the far
    background fully green. Allowed: 0..1, below mask_p_max."""
    mask_p_max: float = 1.0
    """UNKNOWN (p_max). p_max = 1 keeps the object centre free of green. Allowed: 0..1, above mask_p_min."""

    # --- object mask m_obj (phase 2) ---
    tau_bg: float = 0.5
    """UNKNOWN (tau_bg), OURS in its units. The paper thresholds the green signal of the seedling; we read it off
    the seedling's clean estimate x0-hat (the same step's own prediction: at the cut the seedling's noise, sigma
    about 1.5, outweighs its signal) as the distance of each position from the key colour's latent E(key), the
    model's VAE encoding of a solid key colour, in units of ||E(key) - E(grey)||: 0 is the key itself, 1 as far from
    it as a mid grey. The object is where the distance exceeds tau_bg. A distance, not the paper's projection on
    the key direction, because some object colours (the toy's yellow and black) project onto it as strongly as
    the half-formed backdrop does; a unit from the model, not a min-max, so that two noisy extremes cannot move
    the threshold. Allowed: 0..2."""
    mask_signal: str = "latent"
    """OURS, by measured comparison. Where the key distance that tau_bg thresholds is read, both measured from the
    backdrop this job painted (vae_io.key_distance_map: its median where the injection turned the noise to the key
    and the object's attention is low; the pure key where too little of it is near the key). 'latent' (the paper
    reads the seedling's latent): the distance from that backdrop's latent, in units of its distance from E(grey).
    'decoded': the clean estimate decoded by the VAE (one decode per object), 1 - each pixel's key excess over the
    backdrop's. Measured on the toy (14 testbed pairs, `python -m lab.benchmarks.key_injection --pairs 14 --set
    mask_signal=...`): latent PSNR_fg 13.82 dB, mask coverage 0.951; decoded 12.70 dB, 0.907; alpha IoU 0.885 both.
    Before the backdrop was measured per job, the toy's UNet painted its backdrop "greener than green" at the cut
    ([0.8, 4.6, 4.9, -1.0] where E(green) is [-0.1, 2.6, 2.7, -0.8]) and the latent reading took it for the
    object. Allowed: 'latent', 'decoded'."""
    tau_attention: float = 0.3
    """UNKNOWN (tau_A). Threshold on the min-max normalised object-token attention: object where above it. 0.3 is
    the value prompt-to-prompt's local blending uses on the same kind of map. Allowed: 0..1."""
    mask_blur: float = 0.004
    """UNKNOWN (sigma of G_sigma), as a fraction of the image's shorter side, so that it means the same at 64 and
    at 1024 px: the Gaussian that smooths the key distance before thresholding (0.004: 4 px, half a latent cell,
    on SDXL at 1024 px). The clean estimate needs little smoothing: this only rounds the cell grid off. Allowed:
    0..0.1."""
    mask_dilation: float = 0.0
    """OURS: m_obj is grown by this fraction of the image's shorter side after thresholding (0: not grown).
    Allowed: 0..0.25."""
    hold_fraction: float = 0.25
    """OURS: m_obj is found at image resolution (the clean estimate interpolated), but the transplant holds whole
    latent cells: a cell is held when at least this fraction of it is object. Holding more of the rim keeps more
    of the object and more of the key colour around it, which the composite may not repaint after the release.
    Measured on the toy (8 pairs where the mask lost most against the true mask; PSNR_fg over the opaque pixels /
    PSNR_bg): 0.5: 17.6 / 17.8 dB, 0.25: 19.8 / 13.9 dB, 0.1: 22.1 / 7.5 dB (the true mask: 22.7 / 11.9 dB).
    Allowed: (0, 1]."""
    hold_dilation: int = 1
    """OURS: the held cells are grown by this many latent cells around m_obj, into cells whose clean estimate is
    not the key colour (hold_growth_key_distance):
    the transplant must carry the object's whole rim, and the decoder draws each pixel from the cells around it,
    but bare backdrop held into the composite stays key-coloured there (two objects side by side came out on a
    green composite when the growth went everywhere). Measured on the toy (16 pairs, cells at least half object,
    grown everywhere), PSNR_fg over the opaque pixels 11.9 dB holding m_obj's cells, 18.6 dB grown by one cell;
    on 8 hard pairs, growing only into cells off the key: PSNR_fg 18.0 against 19.8, PSNR_bg 19.5 against 13.9. In
    cells, not in fractions of the image, because that reach is the decoder's, in cells, at any image size. Allowed:
    0..8."""
    hold_growth_key_distance: float = 1.0
    """OURS: the grown cells (hold_dilation) must be off the key colour: at least hold_fraction of the cell with a
    key distance above this many times tau_bg. 0 grows everywhere. The trade-off, measured on the toy's 56 pairs:
    at 0, PSNR_fg 18.25 dB (the true mask: 18.82), PSNR_bg 11.96 dB, the visible stack against the composite
    13.06 dB, and two objects side by side left on a green composite; at 1, PSNR_fg 14.84 dB (the true mask:
    15.91), PSNR_bg 21.01 dB, the stack 17.24 dB, no key colour left, though the demo's star is repainted away.
    At 0 a new background's composite stayed key green (0% of the new colour around one object), so 1 is the
    default. Allowed: 0..2."""
    attention_resolutions: tuple[int, ...] = (2, 4)
    """UNKNOWN. Which cross-attention maps build A_fg, as downsampling factors of the latent: SDXL's 64x64 and
    32x32 blocks at 1024 px (its only attention blocks). Averaged over heads, object tokens and the steps before
    the cut. Allowed: powers of two 1..64, at least one."""

    # --- attention shearing (phase 2) ---
    shear_blocks: tuple[str, ...] = ("down",)
    """UNKNOWN (which layers shear), measured sweep: the UNet blocks whose cross-attention layers use T_fg inside
    m_obj and T_bg outside; layers not listed attend to the composite prompt T_all; an empty tuple turns shearing
    off. Our reading of the paper sheared all three. On the toy (14 CI pairs, `python -m lab.testbed --pairs 14
    --no-plain --no-layout --no-scenes --set shear_blocks=B`; ring / PSNR_fg / several-object composite colour):
    down, mid, up 0.126 / 13.66 / 0.697; down 0.116 / 14.56 / 0.737; none 0.169 / 14.99 / 0.683 (mid, up, down+mid:
    lab/notes/sweeps.md). On the 56 pairs, down against all three: PSNR_fg 15.06 / 13.79 dB, the composite's
    foreign ring 0.188 / 0.225, a new background's colour 0.816 / 0.490. Shearing the up blocks cost the layer's
    fidelity most (up alone: PSNR_fg 13.83). Allowed: a subset of 'down', 'mid', 'up'."""

    # --- transplant and two-stage blending (phases 2 and 3) ---
    highpass: bool = True
    """PAPER: the seedling is Laplacian high-pass filtered before transplanting (the paper's ablation removes it)."""
    highpass_strength: float = 0.2
    """UNKNOWN (k), OURS in where it acts: f(L) = L + k * HP(x0-hat), HP(x) = -Laplacian(x), a mild sharpening of
    the seedling's signal (its clean estimate x0-hat) that leaves its noise alone, inside the held object only (its
    held cells eroded by one: a rim cell's Laplacian reaches the key backdrop). Measured sweep on the toy (14 pairs,
    `python -m lab.benchmarks.key_injection --pairs 14 --set highpass_strength=K`), k = 0 / 0.05 / 0.2: PSNR_fg
    13.75 / 13.82 / 14.00 dB, foreign ring in the composite 0.178 / 0.181 / 0.202, copies of the object far from it
    at most 0.003 of the picture at every k (the paper's claim that the filter prevents duplicates: none to prevent
    on the toy). Applied to the noisy seedling,
    x - k Laplacian(x) multiplies white noise's std by 1.84 at k = 0.2, and the region would be released far
    noisier than sigma(t_crop); the paper's ablation (0.1 dB without the filter) allows nothing of the kind.
    k = 0.2 lifts a one-cell peak of the signal by 80% of its height. Allowed: 0..2."""
    release_keyed: bool = True
    """OURS (not in the paper), measured: at the cut, the held objects are released over the composite's own
    background (release.KeyedRelease): as they are inside m_obj, and outside it as far as the keying finds object,
    not with the key colour their rim cells carry. On the toy's 14 CI pairs (`python -m lab.testbed --pairs 14
    --no-plain --no-layout --no-scenes --set release_keyed=B`, today's defaults), off / on: the composite's foreign
    ring around the object 0.156 / 0.055; the background layer against the composite outside m_obj (PSNR_bg) 20.2
    / 22.8 dB; the stacked layers against the composite 17.8 / 19.4 dB; PSNR_fg 15.22 / 15.26 dB. Measured when
    phase 1 ran at 7.5 and every block sheared, ring / PSNR_fg: off 0.202 / 14.0, on 0.126 / 13.7; keying inside
    m_obj too, 0.077 / 12.7 (whole objects lightened, small ones lost: the several-object scenes' composite colour
    0.697 -> 0.475); outside m_obj replaced unkeyed, 0.125 / 13.4; (1 - a) * (B - K) in the latent while held,
    0.138 / 13.0. Costs two VAE decodes, two encodes and one keying per job (one more decode per further object)."""
    release_erosion: float = 0.008
    """OURS, measured (release.kept_inside): the part of m_obj the release keeps as it is, m_obj shrunk by this
    fraction of the image's shorter side; a band this wide inside its edge, where the blurred clean estimate at
    the cut still carries the key, is keyed with the outside (8 px, one latent cell, at 1024 px). On the toy's 14
    CI pairs (`--set release_erosion=E`, 128 px), 0 / 0.008 / 0.016 / 0.03: the composite's foreign ring 0.073 /
    0.055 / 0.050 / 0.044; PSNR_fg 15.24 / 15.26 / 15.07 / 14.96 dB; PSNR_bg 22.5 / 22.8 / 23.0 / 23.3 dB; the
    several-object scenes' composite colour 0.718 / 0.712 / 0.705 (keying all of m_obj: 0.475). Allowed: 0..0.1."""
    transplant_noise: float = 1.0
    """UNKNOWN (lambda). While held, the transplanted region is f(L) + lambda * sqrt(sigma_t^2 - sigma_crop^2) * n
    with n fixed: lambda = 1 keeps the region at the noise level of the rest of the latent (the known-region
    rule of RePaint-style inpainting, so the UNet never sees a region at another noise level); the added noise
    shrinks to 0 at the cut, where the region is exactly f(L). lambda = 0 holds the bare seedling from
    the start (the literal reading). Allowed: 0..2."""

    # --- RGBA foreground (not in the paper; ours) ---
    key_low: float = 0.1
    """Keying (measured sweep): a pixel whose key excess (green: G - max(R, B)) is at most key_low times that of the
    backdrop behind it (keying.backdrop_colour: lit here, in shade there) is opaque; between key_low and key_high
    alpha falls linearly, which keeps soft shadows and strands as partial alpha (a neutral colour at alpha a has
    1 - a of the backdrop's excess). On synthetic 1024 px plates with a known alpha (tests/helpers/plates.py: a
    graded backdrop, strands, a soft shadow, a white object with spill), mean alpha error on the hard pixels:
    0.25 / 0.6 (the thresholds before the backdrop was modelled per pixel): 0.165 / 0.152 / 0.208 / 0.248;
    0.1 / 0.9: 0.169 / 0.140 / 0.065 / 0.216; 0 / 1: 0.140 / 0.132 / 0.036 / 0.204 but four times the error on the
    whole plate (backdrop grain reads as haze). Allowed: 0..1, below key_high."""
    key_high: float = 0.9
    """Keying (measured sweep, with key_low): a pixel whose key excess is at least key_high times the backdrop's
    behind it is fully transparent. With one key colour for the whole picture a backdrop in shade needed 0.6, at
    the cost of every partial alpha. Allowed: 0..1, above key_low."""
    gate_dilation: float = 0.08
    """Keying: m_obj, grown by this fraction of the image's shorter side and softened, gates the key, so that stray
    non-key specks far from the object stay transparent while the object's edge, which moves a little after the
    cut, stays inside (0.08: 82 px at 1024, 5 px on the toy's 64). Allowed: 0..0.5."""
    despill: bool = True
    """Keying: remove the cast of the key colour that the backdrop leaves on edge pixels."""
    despill_strength: float = 1.0
    """Keying: 1 caps the key's channels at the others' maximum (green: G at max(R, B)) where the key can spill;
    0 leaves colours alone. Allowed: 0..1."""
    despill_band: float = 0.01
    """Keying: where the key can spill: pixels within this fraction of the image's shorter side of the backdrop
    (at least 1 px; 0.01: 10 px at 1024) and partly transparent pixels. The object's interior keeps its colours,
    even those with more green than red and blue. Allowed: 0..0.25."""
    feather_px: float = 1.0
    """Keying: Gaussian softening of the alpha edge, in image pixels. Allowed: 0..50."""

    def __post_init__(self) -> None:
        # normalise sequences given as lists (e.g. from JSON) to tuples
        for name in ("green_latent", "attention_resolutions", "shear_blocks"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if isinstance(self.scheduler, str):  # 'DPM++ 2M', 'euler_discrete' (version 1's name): the canonical name
            try:
                object.__setattr__(self, "scheduler", scheduler_name(self.scheduler))
            except ValueError:
                pass  # validate() says why
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        _int_in("num_inference_steps", self.num_inference_steps, 2, 1000)
        if scheduler_name(self.scheduler) != self.scheduler:
            raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)} (got {self.scheduler!r})")
        check_steps(self.scheduler, self.num_inference_steps)
        if self.timestep_spacing not in TIMESTEP_SPACINGS:
            raise ValueError(f"timestep_spacing must be one of {', '.join(TIMESTEP_SPACINGS)} (got "
                             f"{self.timestep_spacing!r}); few-step models want trailing")
        for name in ("guidance_foreground", "guidance_composite", "guidance_background"):
            _float_in(name, getattr(self, name), 0.0, 50.0)
        _float_in("crop_ratio", self.crop_ratio, 0.0, 1.0, open_low=True, open_high=True)
        t_crop = self.crop_step
        if not 1 <= t_crop <= self.num_inference_steps - 1:
            raise ValueError(
                f"crop_ratio {self.crop_ratio} cuts at step {t_crop} of {self.num_inference_steps}: it must leave at "
                f"least one step on each side; choose crop_ratio in (0, {1 - 1 / self.num_inference_steps:.3f}] or "
                f"more steps"
            )
        if not isinstance(self.green_latent, tuple):
            raise ValueError("green_latent must be a list of numbers, one per latent channel (e.g. [0, 1, 1, 0]), "
                             "or empty to measure it on the model")
        for value in self.green_latent:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"green_latent must hold finite numbers (got {self.green_latent!r})")
        if self.green_latent and all(v == 0 for v in self.green_latent):
            raise ValueError("green_latent must have at least one non-zero channel (the paper's is [0, 1, 1, 0]), "
                             "or be empty to measure it on the model")
        if self.mask_signal not in MASK_SIGNALS:
            raise ValueError(f"mask_signal must be one of {', '.join(MASK_SIGNALS)} (got {self.mask_signal!r})")
        if self.key_color not in KEY_COLORS:
            raise ValueError(f"key_color must be one of {', '.join(KEY_COLORS)} (got {self.key_color!r}); choose "
                             "blue or magenta for a green object")
        _float_in("green_alpha", self.green_alpha, 0.0, 1.0)
        _float_in("mask_std", self.mask_std, 0.0, 10.0, open_low=True)
        _float_in("layout_mask_std", self.layout_mask_std, 0.0, 10.0, open_low=True)
        _float_in("layout_mask_power", self.layout_mask_power, 1.0, 16.0)
        _float_in("mask_p_min", self.mask_p_min, 0.0, 1.0)
        _float_in("mask_p_max", self.mask_p_max, 0.0, 1.0)
        if self.mask_p_min >= self.mask_p_max:
            raise ValueError(
                f"mask_p_min must be below mask_p_max (got {self.mask_p_min} and {self.mask_p_max})"
            )
        _float_in("tau_bg", self.tau_bg, 0.0, 2.0)
        _float_in("tau_attention", self.tau_attention, 0.0, 1.0)
        _float_in("mask_blur", self.mask_blur, 0.0, 0.1)
        _float_in("mask_dilation", self.mask_dilation, 0.0, 0.25)
        _float_in("hold_fraction", self.hold_fraction, 0.0, 1.0, open_low=True)
        _int_in("hold_dilation", self.hold_dilation, 0, 8)
        _float_in("hold_growth_key_distance", self.hold_growth_key_distance, 0.0, 2.0)
        if not isinstance(self.attention_resolutions, tuple) or not self.attention_resolutions:
            raise ValueError("attention_resolutions must list at least one downsampling factor, e.g. [2, 4]")
        for f in self.attention_resolutions:
            if isinstance(f, bool) or not isinstance(f, int) or f < 1 or f > 64 or f & (f - 1):
                raise ValueError(
                    f"attention_resolutions must hold powers of two in 1..64 (got {self.attention_resolutions!r})"
                )
        if not isinstance(self.shear_blocks, tuple) or any(b not in SHEAR_BLOCKS for b in self.shear_blocks):
            raise ValueError(
                f"shear_blocks must be a subset of {list(SHEAR_BLOCKS)} (got {self.shear_blocks!r})"
            )
        _bool("highpass", self.highpass)
        _float_in("highpass_strength", self.highpass_strength, 0.0, 2.0)
        _bool("release_keyed", self.release_keyed)
        _float_in("transplant_noise", self.transplant_noise, 0.0, 2.0)
        _float_in("release_erosion", self.release_erosion, 0.0, 0.1)
        _float_in("key_low", self.key_low, 0.0, 1.0)
        _float_in("key_high", self.key_high, 0.0, 1.0)
        if self.key_low >= self.key_high:
            raise ValueError(f"key_low must be below key_high (got {self.key_low} and {self.key_high})")
        _float_in("gate_dilation", self.gate_dilation, 0.0, 0.5)
        _bool("despill", self.despill)
        _float_in("despill_strength", self.despill_strength, 0.0, 1.0)
        _float_in("despill_band", self.despill_band, 0.0, 0.25)
        _float_in("feather_px", self.feather_px, 0.0, 50.0)

    # ------------------------------------------------------------------ derived values
    @property
    def t_crop(self) -> int:
        """The paper's t_crop = floor(T (1 - r_crop)), counted down from T = num_inference_steps."""
        return int(math.floor(self.num_inference_steps * (1.0 - self.crop_ratio) + 1e-9))

    @property
    def crop_step(self) -> int:
        """The cut as a step index: the seedling is the latent after T - t_crop steps."""
        return self.num_inference_steps - self.t_crop

    @staticmethod
    def crop_ratio_cutting_after(crop_step: int, num_inference_steps: int) -> float:
        """A crop_ratio whose cut comes after `crop_step` of `num_inference_steps` steps (e.g. to match kept
        seedlings): the middle of the interval of ratios that cut there."""
        return (crop_step - 0.5) / num_inference_steps

    def replace(self, **changes: Any) -> TAUEConfig:
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown TAUEConfig field(s): {', '.join(unknown)}; known: {', '.join(field_names())}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TAUEConfig:
        return cls().replace(**data)


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TAUEConfig)]


def _float_in(name: str, value: Any, low: float, high: float, open_low: bool = False, open_high: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and (value < high if open_high else value <= high)
    if not ok:
        left = "(" if open_low else "["
        right = ")" if open_high else "]"
        raise ValueError(f"{name} must be a number in {left}{low:g}, {high:g}{right} (got {value!r})")


def _int_in(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number in {low}..{high} (got {value!r})")


def _bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false (got {value!r})")


def field_docs() -> dict[str, str]:
    """Each field's docstring (the string literal under it in TAUEConfig), for generated documentation (OpenAPI)."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(TAUEConfig)))
    body = cast(ast.ClassDef, tree.body[0]).body
    docs = {}
    for node, following in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant) and isinstance(following.value.value, str)):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs
