"""FlowDiffusion Sampler: latent flows for any number of frames, conditioned on the music."""

from __future__ import annotations

from dabfusion.diffusion.schedule import DEFAULT_STEPS, SAMPLERS
from dabfusion.errors import DabFusionError
from dabfusion.pipeline import SAMPLING_DEFAULTS

from . import comfy_compat as compat
from .common import CATEGORY, FLOWS, LATENT, MODEL, MUSIC

UNITS = ("seconds", "frames")


class FlowDiffusionSampler:
    """Samples latent flows and occlusions for the whole clip, window after window."""

    DESCRIPTION = ("Generates the dance: latent optical flows and occlusion maps for every frame, conditioned "
                   "on the music and the reference latent. Any length works: long clips are made in overlapping "
                   "windows that all warp the original reference (no drift from chaining). DPM-Solver++ with "
                   "~25 steps is fast; DDPM with 1000 steps is the paper's sampler. With 'candidates' > 1 it "
                   "draws that many seeds (seed, seed + 1, ...), scores each dance's motion against the music's "
                   "beats (2D-MM Align) and keeps the best; 'scores' lists every seed's score.")
    CATEGORY = f"{CATEGORY}/generate"
    RETURN_TYPES = (FLOWS, "STRING")
    RETURN_NAMES = ("flows", "scores")
    OUTPUT_TOOLTIPS = ("Latent flows + occlusions for Warp and Decode (the best candidate's).",
                       "Each candidate seed's 2D-MM Align against the music, best first (one line per seed).")
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The DabFusion model."}),
                "latent": (LATENT, {"tooltip": "The reference latent from FlowAE Encode (same model)."}),
                "music": (MUSIC, {"tooltip": "The music from Music Encoder (same model)."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                                 "tooltip": "Random seed: the same seed gives the same dance."}),
                "steps": ("INT", {"default": DEFAULT_STEPS[SAMPLING_DEFAULTS.sampler], "min": 1, "max": 1000,
                                  "tooltip": "Denoising steps (dpm++: 15-30, ddim: 50, ddpm: 1000)."}),
                "sampler": (list(SAMPLERS), {"default": SAMPLING_DEFAULTS.sampler,
                                             "tooltip": "dpm++ (DPM-Solver++ 2M), ddim, or ddpm (the paper's)."}),
                "guidance": ("FLOAT", {"default": SAMPLING_DEFAULTS.guidance, "min": 0.0, "max": 20.0, "step": 0.1,
                                       "tooltip": "Classifier-free guidance on the music: 1 = off (fastest); "
                                                  "higher follows the music more strongly (twice the compute)."}),
                "length": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 100000.0, "step": 0.1,
                                     "tooltip": "Length of the video in 'length_unit'; 0 = as long as the music."}),
                "length_unit": (list(UNITS), {"default": "seconds", "tooltip": "Unit of 'length'."}),
                "fps": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 120.0, "step": 0.01,
                                  "tooltip": "Frame rate of the video; 0 = the rate the model was trained at."}),
            },
            "optional": {
                "overlap": ("INT", {"default": -1, "min": -1, "max": 256,
                                    "tooltip": "Samples shared by consecutive windows of a long clip (frames, "
                                               "or beat-grid samples for a beat-time model); -1 = the model's "
                                               "default (a quarter window; half for beat time)."}),
                "candidates": ("INT", {"default": 1, "min": 1, "max": 64,
                                       "tooltip": "Best of N: draw this many seeds (seed, seed + 1, ...), decode "
                                                  "each, and keep the dance whose motion follows the music's beats "
                                                  "best (2D-MM Align). 1 = just the seed (no scoring); N costs N "
                                                  "samplings."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, sampler, length_unit="seconds"):
        if sampler not in SAMPLERS:
            return f"sampler must be one of {SAMPLERS}, got {sampler!r}"
        if length_unit not in UNITS:
            return f"length_unit must be one of {UNITS}, got {length_unit!r}"
        return True

    def sample(self, model, latent, music, seed, steps, sampler, guidance, length, length_unit, fps, overlap=-1,
               candidates=1):
        from dabfusion.pipeline import describe_candidates, resolve_length

        fps = float(fps) or model.fps
        length = float(length)
        if length < 0:
            raise DabFusionError(f"length must be >= 0, got {length}")
        if length == 0:
            n = resolve_length(fps=fps, music_seconds=music.duration)
        elif length_unit == "frames":
            if length != int(length):
                raise DabFusionError(f"length in frames must be a whole number, got {length}")
            n = resolve_length(fps=fps, frames=int(length))
        else:
            n = resolve_length(fps=fps, seconds=length)
        settings = model.settings(sampler=sampler, steps=int(steps), guidance=float(guidance), seed=int(seed),
                                  overlap=None if int(overlap) < 0 else int(overlap))
        # the U-Net and the music encoder (a clip's windows may need its networks again); best of N decodes too
        compat.load_models(model, ("diffusion", "music") + (("flow_ae",) if int(candidates) > 1 else ()))
        if int(candidates) <= 1:
            bar = compat.ProgressBar(model.sampling_units(n, settings))
            flows = model.sample_flows(latent, music, n_frames=n, fps=fps, settings=settings, progress=bar)
            return (flows, f"seed {settings.seed} (not scored: candidates = 1)")
        bar = compat.ProgressBar(1)  # sample_best_of reports its own total
        flows, drawn = model.sample_best_of(latent, music, n_frames=n, candidates=int(candidates), fps=fps,
                                            settings=settings, progress=bar)
        return (flows, describe_candidates(drawn))
