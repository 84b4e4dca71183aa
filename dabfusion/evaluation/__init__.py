"""The evaluation suite: the paper's Tables 1-6 over the whole pipeline (``python -m dabfusion.evaluate``).

- :mod:`.generate`: the test split's videos re-generated from their first frames and music, cached;
- :mod:`.scoring`: per-video scores (PSNR, SSIM, LPIPS, CLIP-Score, 2D-MM Align, AV-Align, I3D features);
- :mod:`.tables`: aggregation per camera, genre, length and beat ablation; CSV, Markdown, PNG;
- :mod:`.frechet`, :mod:`.fvd`, :mod:`.i3d`: FVD and its Frechet distance;
- :mod:`.lpips`, :mod:`.clip_score`: the metrics whose networks load from users' weight files
  (:mod:`.weights` names them and says where they come from; :mod:`dabfusion.testing.eval_weights` writes random-weight
  files in the official layouts, for tests and installation checks).

Submodules are imported on use, so importing this package is cheap.
"""
