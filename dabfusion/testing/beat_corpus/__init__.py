"""A beat-tracking corpus with exactly known beats and downbeats, made by the project.

Why: a beat tracker can only be scored against beats that are known exactly, and the failure
modes that matter here (off-beat locks on house hats, tempo octaves on drum and bass and trap,
phase lost in drumless intros, ramps, 3/4 and 6/8) need music built to expose them. Each module
has one job:

- :mod:`.compose`: style patterns -> notes on an integer-tick tempo map + the exact beat grid;
- :mod:`.midi`: a small Standard MIDI File writer;
- :mod:`.render`: fluidsynth (FluidR3 GM samples) and a numpy synthesiser, as drum/tonal stems;
- :mod:`.gridcheck`: the audio's attacks must sit on the annotated beats (10 ms);
- :mod:`.corpus`: the excerpt list, the fixed dev/test split, the cache, :func:`load_corpus`,
  and the committed :func:`short_corpus` for the test suite.

``python -m dabfusion.testing.beat_corpus build|report|write-short`` (see ``README.md`` here for
sources and licences). Nothing in the product imports this package.
"""

from __future__ import annotations

from .corpus import Excerpt, build_corpus, load_corpus, short_corpus, split_of

__all__ = ["Excerpt", "build_corpus", "load_corpus", "short_corpus", "split_of"]
