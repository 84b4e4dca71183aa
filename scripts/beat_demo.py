"""The product rung: the built-in model dances to music that is not from SynthDance.

Writes a drum-and-bass loop made here (not SynthDance's synthesiser: other drums, a swung
hi-hat, a tempo of its own), runs ``python -m dabfusion generate`` on it with the example dancer,
and draws the figure the README shows: the video's motion speed against the music's beats, its
kinematic beats, and frames taken on the beats and half-way between them. Prints the 2D-MM Align
of the video against its music and against the music delayed by half a beat.

    python scripts/beat_demo.py --out out/beat_demo --bpm 104 --seconds 8
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

SR = 22050


def drum_loop(bpm: float, seconds: float, *, lead_in: float = 0.35, seed: int = 0) -> np.ndarray:
    """Mono float32: kick on 1 and 3, snare on 2 and 4, swung eighth hi-hats, a walking bass."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n, np.float32)
    period = 60.0 / bpm

    def add(t0: float, sig: np.ndarray) -> None:
        i = int(round(t0 * SR))
        if 0 <= i < n:
            m = min(len(sig), n - i)
            out[i:i + m] += sig[:m]

    t = np.arange(int(0.25 * SR)) / SR
    kick = np.sin(2 * np.pi * (50 + 90 * np.exp(-t / 0.03)) * t) * np.exp(-t / 0.12)
    snare = (rng.normal(0, 1, t.size) * 0.6 + np.sin(2 * np.pi * 190 * t) * 0.4) * np.exp(-t / 0.07)
    hat = rng.normal(0, 1, int(0.04 * SR)) * np.exp(-np.arange(int(0.04 * SR)) / SR / 0.01) * 0.25
    bass_notes = (55.0, 55.0, 65.4, 73.4, 55.0, 82.4, 73.4, 65.4)
    k = 0
    b = lead_in
    while b < seconds:
        add(b, (kick if k % 2 == 0 else snare).astype(np.float32) * 0.8)
        add(b, hat.astype(np.float32))
        add(b + period * 0.62, hat.astype(np.float32) * 0.7)  # swung off-beat
        tb = np.arange(int(period * 0.9 * SR)) / SR
        f = bass_notes[k % len(bass_notes)]
        add(b, (np.sin(2 * np.pi * f * tb) * np.exp(-tb / 0.25) * 0.35).astype(np.float32))
        k += 1
        b += period
    return np.clip(out / max(1.0, float(np.abs(out).max())), -1, 1).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    import soundfile as sf

    from dabfusion.demo import EXAMPLE_IMAGE
    from dabfusion.media.video import read_video_frames
    from dabfusion.metrics.mm_align import mm_align, music_beat_times

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="out/beat_demo")
    p.add_argument("--bpm", type=float, default=104.0)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", default=None, help="where to write the figure (default: OUT/beat_demo.png)")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    music = out / f"drum_loop_{a.bpm:g}bpm.wav"
    wave = drum_loop(a.bpm, a.seconds + 0.5)
    sf.write(music, wave, SR)
    video = out / "beat_demo.mp4"
    subprocess.run([sys.executable, "-m", "dabfusion", "generate", "--image", str(EXAMPLE_IMAGE), "--music", str(music),
                    "--out", str(video), "--seconds", str(a.seconds), "--seed", str(a.seed), "--quiet"], check=True)
    frames, fps = read_video_frames(video)
    beats = music_beat_times(wave, SR)
    res = mm_align(frames, fps, beat_times=beats)
    late = mm_align(frames, fps, beat_times=beats + 30.0 / a.bpm)
    print(f"2D-MM Align against its music {res.score:.3f}; against the music half a beat later {late.score:.3f}; "
          f"kinematic beats {res.kinematic_beats.size}, music beats {res.music_beats.size}")
    figure = Path(a.figure) if a.figure else out / "beat_demo.png"
    draw(figure, frames, fps, res, a.bpm)
    print(figure.resolve())
    return 0


def draw(path: Path, frames: np.ndarray, fps: float, res, bpm: float) -> None:
    """Speed against the beats on top; frames on the beats (top row) and half-way (bottom row)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dabfusion.metrics.alignment import smooth_gaussian

    beats = [b for b in res.music_beats if 1 <= b < len(frames) - 1][:8]
    half = [b + 30.0 / bpm * fps for b in beats if b + 30.0 / bpm * fps < len(frames)][:len(beats)]
    fig = plt.figure(figsize=(12, 6.5))
    ax = fig.add_axes([0.06, 0.58, 0.92, 0.38])
    t = np.arange(len(res.speed))
    ax.plot(t, res.speed, color="0.7", lw=1, label="motion speed")
    ax.plot(t, smooth_gaussian(res.speed, 2.0), color="k", lw=1.5, label="smoothed (minima = kinematic beats)")
    for i, b in enumerate(res.music_beats):
        ax.axvline(b, color="tab:blue", lw=1, label="music beat" if i == 0 else None)
    ks = res.kinematic_beats
    ax.plot(ks, smooth_gaussian(res.speed, 2.0)[ks], "v", color="tab:orange", ms=9, label="kinematic beat")
    ax.set_xlabel("frame")
    ax.set_ylabel("px / s")
    ax.set_title(f"built-in model on a {bpm:g} bpm drum loop (not SynthDance): 2D-MM Align {res.score:.3f}")
    ax.legend(fontsize=7, ncol=4, loc="upper right")
    for row, picks, label in ((0, beats, "on the beat"), (1, half, "half-way")):
        for j, f in enumerate(picks):
            sub = fig.add_axes([0.06 + j * 0.115, 0.28 - row * 0.26, 0.11, 0.24])
            sub.imshow(frames[int(round(f))])
            sub.set_xticks([])
            sub.set_yticks([])
            if j == 0:
                sub.set_ylabel(label, fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
