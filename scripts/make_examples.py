"""Make the bundled example inputs with the project's own SynthDance code (reproducible).

    python scripts/make_examples.py            # writes dabfusion/assets/examples/

- ``dance_any_beat_dancer.png``: the first frame (128x128) of a SynthDance video whose music is a
  held-out test track, so the demo shows the model a dancer/music pairing it did not train on;
- ``dance_any_beat_music.ogg``: the first seconds of that test track (mono, 22.05 kHz, Vorbis);
- ``dance_any_beat_person.png``: another dancer as a transparent cut-out (RGBA, the person small
  and off-centre on a non-square canvas), for the "choreograph anyone" workflow: SegmentPerson
  takes the person from the alpha channel and stands them where the training dancers stand.

The workflows under ``workflows/`` and ``make demo`` use these two files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "dabfusion" / "assets" / "examples"
IMAGE_NAME = "dance_any_beat_dancer.png"
MUSIC_NAME = "dance_any_beat_music.ogg"
PERSON_NAME = "dance_any_beat_person.png"


def make_examples(out: Path = OUT, *, preset: str = "small", seed: int = 0, genre: str = "HO",
                  camera: str = "c01", seconds: float = 8.0, sample_rate: int = 22050) -> tuple[Path, Path]:
    import numpy as np
    import soundfile as sf
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from dabfusion.media.audio import resample
    from dabfusion.synth import GENRES, SAMPLE_RATE, build_world, render_track
    from dabfusion.synth import sequence

    world = build_world(preset, seed)
    test_track = GENRES[genre].track_id(GENRES[genre].test_k)
    jobs = [j for j in world.videos if j.music == test_track]
    if not jobs:
        raise SystemExit(f"no video of {test_track} in the {preset!r} world")
    job = next((j for j in jobs if j.camera == camera), jobs[0])
    frame = next(iter(sequence.frames(world, job)))
    out.mkdir(parents=True, exist_ok=True)
    image_path = out / IMAGE_NAME
    Image.fromarray(np.asarray(frame, np.uint8)).save(image_path, optimize=True)

    wave = render_track(world.tracks[test_track], SAMPLE_RATE)
    wave = np.asarray(wave, np.float32)[: int(seconds * SAMPLE_RATE)]
    wave = resample(wave, SAMPLE_RATE, sample_rate)
    fade = int(0.05 * sample_rate)  # no click at the cut
    wave[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    music_path = out / MUSIC_NAME
    sf.write(str(music_path), wave, sample_rate, format="OGG", subtype="VORBIS")
    print(f"{image_path}: {job.stem} frame 0 ({frame.shape[1]}x{frame.shape[0]})")
    print(f"{music_path}: {test_track} (test track), {len(wave) / sample_rate:.1f} s, {sample_rate} Hz")
    other = next((j for j in world.videos if j.dancer != job.dancer and j.music != test_track), jobs[-1])
    person_path = make_person_cutout(world, other, out / PERSON_NAME)
    print(f"{person_path}: {other.stem} frame 0 as a transparent cut-out")
    return image_path, music_path


def make_person_cutout(world, job, path: Path, *, render_size: int = 256) -> Path:
    """The job's first pose drawn without background or shadow, with exact alpha (difference matte)."""
    import numpy as np
    from PIL import Image

    from dabfusion.synth import sequence
    from dabfusion.synth.render import FigureRenderer

    points = sequence.pixel_points(world, job)[0] * (render_size / world.preset.size)
    renderer = FigureRenderer(world.dancers[job.dancer], world.cameras[job.camera], render_size)
    renderer.floor_y = -1e6  # the floor shadow belongs to the studio, not to the person
    layers = []
    for colour in ((0, 0, 0), (255, 255, 255)):
        renderer.bg = Image.new("RGB", renderer.bg.size, colour)
        layers.append(renderer.frame(points).astype(np.float32))
    on_black, on_white = layers
    alpha = np.clip(1.0 - (on_white - on_black).mean(-1) / 255.0, 0.0, 1.0)
    rgb = np.where(alpha[..., None] > 1e-3, on_black / np.maximum(alpha[..., None], 1e-3), 0.0)
    rgba = np.concatenate([np.clip(rgb, 0, 255), alpha[..., None] * 255.0], -1).astype(np.uint8)
    ys, xs = np.nonzero(alpha > 0.5)
    person = rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = person.shape[:2]
    canvas = np.zeros((int(h * 1.6), int(w * 3.2), 4), np.uint8)  # a wide "photo", person left of centre
    top, left = int(h * 0.15), int(w * 0.4)
    canvas[top:top + h, left:left + w] = person
    Image.fromarray(canvas, "RGBA").save(path, optimize=True)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--preset", default="small", help="SynthDance preset whose world the example comes from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--genre", default="HO", help="genre whose test track is used (BR PO LO MH LH HO WA KR JS JB)")
    p.add_argument("--seconds", type=float, default=8.0)
    args = p.parse_args(argv)
    make_examples(args.out, preset=args.preset, seed=args.seed, genre=args.genre, seconds=args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
