"""DabFusion: music-conditioned latent flow diffusion that makes the person in one image dance.

This package is the model and data library behind the Dance Any Beat ComfyUI nodes. It never
imports ComfyUI, so it can be used from scripts, notebooks and the training code alike. Its front
door is :class:`dabfusion.pipeline.DabFusionPipeline` (image + music -> frames), which the CLI
(``python -m dabfusion``), the nodes, the evaluations and the trainer's sample videos all use.
"""

__version__ = "0.1.0"
