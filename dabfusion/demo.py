"""`make demo`: the project's main job from a fresh clone.

Until the generator's built-in model lands, the demo makes a tiny SynthDance set and a preview
video of it: each clip plays with its own music track, so one can see and hear the dancers move on
the beat. It prints the MP4's path as its last line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _synthdance(out: Path, preset: str, seed: int) -> Path:
    from dabfusion.synth import MANIFEST_NAME, generate

    manifest = out / MANIFEST_NAME
    if manifest.is_file():
        meta = json.loads(manifest.read_text())
        if meta.get("preset") == preset and meta.get("seed") == seed:
            return out
    return Path(generate(out, preset, seed, progress=True))


def synthdance_preview(data: Path, out_file: Path, *, clips: int = 4, seconds: float = 4.0) -> Path:
    """One MP4 of the first `clips` videos, `seconds` each, each over its own music."""
    from dabfusion.data.aist_names import parse_video_name
    from dabfusion.media.audio import load_audio
    from dabfusion.media.video import read_video_frames, write_mp4

    videos = sorted((data / "videos").glob("*.mp4"))
    picked, seen_tracks = [], set()
    for v in videos:  # one clip per music track, so the preview shows several genres
        track = parse_video_name(v).music
        if track not in seen_tracks:
            picked.append(v)
            seen_tracks.add(track)
        if len(picked) == clips:
            break
    sr, frames, audio, fps = 44100, [], [], 30.0
    for video in picked:
        clip, fps = read_video_frames(video, fps=fps, duration=seconds)
        wave, _ = load_audio(data / "music" / f"{parse_video_name(video).music}.wav", sample_rate=sr,
                             duration=len(clip) / fps)
        n = int(round(len(clip) / fps * sr))
        frames.append(clip)
        audio.append(np.pad(wave[0], (0, max(0, n - wave.shape[1])))[:n])
    return write_mp4(out_file, np.concatenate(frames), fps, audio=np.concatenate(audio), sample_rate=sr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dabfusion.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    data = _synthdance(out / "synthdance_tiny", "tiny", args.seed)
    path = synthdance_preview(data, out / "synthdance_preview.mp4")
    print(path.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
