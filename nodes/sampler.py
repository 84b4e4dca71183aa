"""FlowDiffusion Sampler: latent flows for any number of frames, conditioned on the music."""

from __future__ import annotations

from dabfusion.diffusion.schedule import SAMPLERS
from dabfusion.errors import DabFusionError

from . import comfy_compat as compat
from .common import CATEGORY, FLOWS, LATENT, MODEL, MUSIC

UNITS = ("seconds", "frames")
#: The sampler choice that takes the model folder's recommendation (as steps 0 and guidance -1 do); an
#: explicit value wins. Resolved by DabFusionPipeline.settings, the one place that reads the folder's
#: recommendation. Saved workflows from before keep their explicit values (still valid choices).
MODEL_DEFAULT = "model default"


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
    RETURN_NAMES = ("flows", "report")
    OUTPUT_TOOLTIPS = ("Latent flows + occlusions for Warp and Decode (the best candidate's).",
                       "Each candidate seed's 2D-MM Align against the music, best first (one line per seed), "
                       "then the settings sampled with ('model default' where the model's recommendation was "
                       "used) and, when the length was cut to the music, why.")
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
                "steps": ("INT", {"default": 0, "min": 0, "max": 1000,
                                  "tooltip": "Denoising steps; 0 = the model's recommendation (the report shows "
                                             "the value used). dpm++: 15-30, ddim: 50, ddpm: 1000."}),
                "sampler": ([MODEL_DEFAULT, *SAMPLERS], {"default": MODEL_DEFAULT,
                                                          "tooltip": "'model default' = the sampler the model "
                                                                     "recommends; dpm++ (DPM-Solver++ 2M), ddim, or "
                                                                     "ddpm (the paper's)."}),
                "guidance": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 20.0, "step": 0.1,
                                       "tooltip": "Classifier-free guidance on the music; -1 = the model's "
                                                  "recommendation (the report shows the value used). 1 = off "
                                                  "(fastest); "
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
        if sampler != MODEL_DEFAULT and sampler not in SAMPLERS:
            return f"sampler must be one of {(MODEL_DEFAULT, *SAMPLERS)}, got {sampler!r}"
        if length_unit not in UNITS:
            return f"length_unit must be one of {UNITS}, got {length_unit!r}"
        return True

    def sample(self, model, latent, music, seed, steps, sampler, guidance, length, length_unit, fps, overlap=-1,
               candidates=1):
        from dabfusion.pipeline import clamp_to_music, describe_candidates, resolve_length

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
        n, cut = clamp_to_music(n, fps=fps, music_seconds=music.duration - music.offset)
        given = {"sampler": None if sampler == MODEL_DEFAULT else sampler,
                 "steps": int(steps) if int(steps) > 0 else None,
                 "guidance": float(guidance) if float(guidance) >= 0 else None}
        settings = model.settings(**given, seed=int(seed), overlap=None if int(overlap) < 0 else int(overlap))
        used = f"sampling: {settings.describe(from_model=model.from_model(settings, **given))}; " \
               f"{n} frames at {fps:g} fps ({n / fps:.2f} s)"
        notes = used + (f"\nlength: {cut}" if cut else "")
        # the U-Net and the music encoder (a clip's windows may need its networks again); best of N decodes too
        compat.load_models(model, ("diffusion", "music") + (("flow_ae",) if int(candidates) > 1 else ()))
        if int(candidates) <= 1:
            bar = compat.ProgressBar(model.sampling_units(n, settings))
            flows = model.sample_flows(latent, music, n_frames=n, fps=fps, settings=settings, progress=bar)
            return (flows, f"seed {settings.seed} (not scored: candidates = 1)\n{notes}")
        bar = compat.ProgressBar(1)  # sample_best_of reports its own total
        flows, drawn = model.sample_best_of(latent, music, n_frames=n, candidates=int(candidates), fps=fps,
                                            settings=settings, progress=bar)
        return (flows, f"{describe_candidates(drawn)}\n{notes}")
