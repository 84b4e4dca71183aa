"""Helpers for tests and lab experiments (toy worlds with known answers); the product never imports this.

- :mod:`.beat_toy`: the circle-per-beat toy that a design must learn to follow (the beat rung);
- :mod:`.dance_toy`: click tracks and a square dancing on them, as an AIST++-layout data set;
- :mod:`.shapes_toy`: moving shapes for the flow auto-encoder's tests and ``--toy`` training;
- :mod:`.random_bundle`: a model folder with random weights in the real checkpoint layouts;
- :mod:`.eval_weights`: random-weight I3D / LPIPS / Wav2CLIP files in their official layouts;
- :mod:`.unets`: small random U-Nets.
"""
