"""Write a SynthDance world to disk, in parallel, in AIST++'s layout.

    DIR/synthdance.json                 manifest (written last: its presence means "complete")
    DIR/music/m{G}{k}.wav, .json        track (mono 16-bit PCM) and its beat annotation
    DIR/videos/{stem}.mp4               h264, 30 fps, no audio track (AIST++ pairs videos with
                                        separate music files; ``mux_audio=True`` adds it)
    DIR/keypoints2d/{stem}.json         per-frame COCO-17 joints in video pixels

Every file is written under a temporary name and renamed into place, so an interrupted run
never leaves a truncated file behind; re-running overwrites. Files of an earlier, different
world in the same folder are not removed (readers that glob would see them): use one folder
per preset and seed.
"""

from __future__ import annotations

import json
import os
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import sequence
from .music import SAMPLE_RATE, render_track
from .skeleton import JOINT_NAMES, SKELETON_EDGES
from .world import MANIFEST_NAME, World, build_world, manifest, music_annotation

_WORLD: World | None = None


def dumps(obj, *, compact: bool = False) -> str:
    """The JSON style of SynthDance files (stable bytes for a given content); ``compact`` for
    the large per-frame keypoint files."""
    if compact:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=True) + "\n"
    return _pretty(obj, 0) + "\n"


def _pretty(obj, level: int) -> str:
    """Indented JSON that keeps lists of numbers/strings on one line (readable manifests)."""
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(str(k))}: {_pretty(v, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)) and obj and any(isinstance(v, (dict, list, tuple)) for v in obj):
        return "[\n" + ",\n".join(inner + _pretty(v, level + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=True, separators=(", ", ": "))


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_track(world: World, track_id: str, out: Path) -> None:
    import soundfile as sf

    track = world.tracks[track_id]
    wave = render_track(track, SAMPLE_RATE)
    path = out / "music" / f"{track_id}.wav"
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.partial.wav")
    try:
        sf.write(str(tmp), wave, SAMPLE_RATE, subtype="PCM_16")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _atomic_write_text(out / "music" / f"{track_id}.json", dumps(music_annotation(track)))


def keypoints_json(world: World, job, joints: np.ndarray) -> dict:
    """``keypoints2d/{stem}.json``: per-frame joints ``[N][17][x, y]`` in pixels (2 decimals)."""
    pr = world.preset
    return {
        "video": job.stem,
        "fps": pr.fps,
        "width": pr.size,
        "height": pr.size,
        "num_frames": int(joints.shape[0]),
        "format": "COCO-17",
        "coordinates": "pixels; origin at the top-left corner of the frame, x right, y down",
        "joint_names": list(JOINT_NAMES),
        "skeleton_edges": [list(e) for e in SKELETON_EDGES],
        "genre": job.genre,
        "situation": f"s{job.situation}",
        "camera": job.camera,
        "dancer": job.dancer,
        "music": job.music,
        "choreo": f"ch{job.choreo:02d}",
        "keypoints": np.round(joints, 2).tolist(),
    }


def write_video(world: World, stem: str, out: Path, mux_audio: bool = False) -> None:
    from ..media.video import write_mp4

    job = next(v for v in world.videos if v.stem == stem)
    pts = sequence.pixel_points(world, job)
    audio = None
    if mux_audio:
        audio = render_track(world.tracks[job.music], SAMPLE_RATE)[None]
    write_mp4(out / "videos" / f"{stem}.mp4", sequence.frames(world, job, pts), world.preset.fps,
              audio=audio, sample_rate=SAMPLE_RATE if mux_audio else None, crf=18,
              metadata={"comment": f"SynthDance {world.preset.name} seed {world.seed}"})
    joints = sequence.coco_joints(pts)
    _atomic_write_text(out / "keypoints2d" / f"{stem}.json", dumps(keypoints_json(world, job, joints), compact=True))


def _init_worker(preset: str, seed: int) -> None:
    global _WORLD
    _WORLD = build_world(preset, seed)


def _run(task: tuple[str, str], out: str, mux_audio: bool) -> str:
    kind, name = task
    assert _WORLD is not None
    if kind == "music":
        write_track(_WORLD, name, Path(out))
    else:
        write_video(_WORLD, name, Path(out), mux_audio)
    return name


def generate(out: str | os.PathLike, preset: str = "small", seed: int = 0, *, workers: int | None = None,
             progress: bool = True, mux_audio: bool = False) -> Path:
    """Create (or overwrite) a SynthDance data set in ``out``; returns its path.

    ``workers`` processes render in parallel (default: all CPUs; 1 = in this process).
    """
    out = Path(out).expanduser().resolve()
    world = build_world(preset, seed)
    try:
        for sub in ("music", "videos", "keypoints2d"):
            (out / sub).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"Cannot create the SynthDance output folder {out}: {e}") from None
    if not os.access(out, os.W_OK):
        raise DataError(f"The SynthDance output folder {out} is not writable; choose another --out.")
    # longest videos first, so the last tasks to finish are short ones
    videos = sorted(world.videos, key=lambda v: -v.n_frames)
    tasks = [("music", t) for t in world.tracks] + [("video", v.stem) for v in videos]
    workers = max(1, int(workers or os.cpu_count() or 1))
    bar = _progress(len(tasks), f"SynthDance {world.preset.name}", progress)
    try:
        if workers == 1:
            _init_worker(preset, seed)
            for task in tasks:
                _run(task, str(out), mux_audio)
                bar.update(1)
        else:
            with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(preset, seed)) as pool:
                futures = [pool.submit(_run, task, str(out), mux_audio) for task in tasks]
                for fut in as_completed(futures):
                    fut.result()
                    bar.update(1)
    finally:
        bar.close()
    _atomic_write_text(out / MANIFEST_NAME, dumps(manifest(world)))
    return out


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="file", disable=not enabled, dynamic_ncols=True)
