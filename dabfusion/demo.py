"""`make demo`: the project's main job from a fresh clone.

Makes the bundled example dancer dance to the bundled example track with the built-in demo model
(a model of SynthDance, trained by scripts/train_demo_model.sh), writes an MP4 with the music and
a strip of frames beside it, and prints the MP4's path as its last line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parent / "assets" / "examples"
EXAMPLE_IMAGE = EXAMPLES / "dance_any_beat_dancer.png"
EXAMPLE_MUSIC = EXAMPLES / "dance_any_beat_music.ogg"


def frame_strip(video: Path, out_png: Path, *, count: int = 8) -> Path:
    """Evenly spaced frames of `video` side by side: the picture the README shows."""
    from PIL import Image

    from dabfusion.media.video import read_video_frames

    frames, _ = read_video_frames(video)
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    Image.fromarray(np.concatenate([frames[i] for i in picks], axis=1)).save(out_png)
    return out_png


def main(argv: list[str] | None = None) -> int:
    from dabfusion.__main__ import ProgressBar
    from dabfusion.pipeline import generate_video

    p = argparse.ArgumentParser(prog="python -m dabfusion.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--seconds", type=float, default=6.0, help="length of the video (default 6)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    bar = ProgressBar(enabled=True)
    video = generate_video(EXAMPLE_IMAGE, EXAMPLE_MUSIC, out / "dance_any_beat_demo.mp4", seconds=args.seconds,
                           seed=args.seed, progress=bar)
    bar.close()
    frame_strip(video, out / "dance_any_beat_demo_strip.png")
    print(video.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
