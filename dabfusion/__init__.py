"""DabFusion: music-conditioned latent flow diffusion that makes the person in one image dance.

This package is the model and data library behind the Dance Any Beat ComfyUI nodes. It never
imports ComfyUI, so it can be used from scripts, notebooks and the training code alike.
"""

__version__ = "0.1.0"
