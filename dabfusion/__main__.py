"""``python -m dabfusion generate --image IMG --music AUDIO --out OUT.mp4``: make a person dance.

``python -m dabfusion beats AUDIO [--preview grid.png]``: the beat grid the dance would follow (tempo,
beat times as a beat file, a picture), to check it, and fix it with the beat grid options (the same
in both commands: ``--beat-offset``, ``--tempo``, ``--bpm``, ``--beats``) before generating.

The MP4's path is printed as the last line of the output (scripts can take it with ``tail -1``).
Errors in the inputs (a missing file, silent music, an unknown sampler, a model folder that does
not fit together) print one clear message and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .errors import EXIT_USER_ERROR, call_for_cli

__all__ = ["EXIT_USER_ERROR", "ProgressBar", "beat_edit_from_args", "beats_main", "build_parser", "generate_main",
           "main"]


def _number(convert, *, minimum: float, strict: bool, what: str = "a number"):
    """An argparse type: `convert` the text and check it against `minimum` (> when strict, else >=)."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not (value > minimum if strict else value >= minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else 'at least'} {minimum:g}, got {text}")
        return value

    return parse


_positive_float = _number(float, minimum=0, strict=True)
_non_negative_float = _number(float, minimum=0, strict=False)
_positive_int = _number(int, minimum=1, strict=False, what="a whole number")


def _finite_float(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _tempo_choice(text: str) -> str:
    value = text.strip().lower().replace("-", " ").replace("_", " ")
    if value not in ("as tracked", "halve", "double"):
        raise argparse.ArgumentTypeError(f"choose from as-tracked, halve, double (got {text!r})")
    return value


def add_beat_grid_options(parser: argparse.ArgumentParser) -> None:
    """The beat grid options (the same in ``generate`` and ``beats``)."""
    g = parser.add_argument_group(
        "beat grid (the beats the dance follows: check them with 'python -m dabfusion beats MUSIC --preview "
        "grid.png'; applied in this order: --beats or --bpm, then --tempo, then --beat-offset)")
    g.add_argument("--beat-offset", type=_finite_float, default=0.0, metavar="BEATS",
                   help="move the beat grid by this many beats: 0.5 puts it on the off-beat (when the tracker locked "
                   "onto the hi-hats between the kicks), -0.5 back (default 0)")
    g.add_argument("--tempo", type=_tempo_choice, default="as tracked", metavar="{as-tracked,halve,double}",
                   help="halve: every other beat (the ones on the bar starts); double: a beat between each pair")
    g.add_argument("--bpm", type=_positive_float, default=None,
                   help="a steady grid at this tempo over the whole music, placed where the attacks are strongest")
    g.add_argument("--beats", default=None, metavar="FILE",
                   help="your own beat times, replacing the tracker: one time in seconds per line (# comments, a "
                   "label after the time; 'downbeat' or 'bar' marks a bar start; Audacity label tracks and "
                   "time,label CSV work) or a JSON list; times in seconds of the whole music file")


def build_parser() -> argparse.ArgumentParser:
    from .pipeline import sampler_names

    p = argparse.ArgumentParser(prog="python -m dabfusion", description="Dance Any Beat (DabFusion): make the "
                                "person in one image dance to a piece of music.")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="image + music -> MP4 with the music",
                       description="Make the person in IMAGE dance to AUDIO and write an MP4 with the music. "
                       "Without --checkpoint the built-in demo model is used (a model of the synthetic "
                       "SynthDance world; train on AIST++ for real people).")
    g.add_argument("--image", required=True, help="reference image (png/jpg/webp...; a transparent PNG is cut out)")
    g.add_argument("--music", required=True, help="music file (wav/flac/ogg/mp3/m4a, or a video's audio track)")
    g.add_argument("--out", required=True, help="output video file (.mp4)")
    length = g.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=_positive_float, default=None,
                        help="length of the video in seconds (default: the music from --start to its end; a length "
                        "past the music's end is cut to the music, with a warning)")
    length.add_argument("--frames", type=_positive_int, default=None,
                        help="length of the video in frames (cut to the music the same way)")
    g.add_argument("--fps", type=_positive_float, default=None, help="frame rate (default: the model's)")
    g.add_argument("--start", type=_non_negative_float, default=0.0, help="start time in the music, seconds")
    g.add_argument("--steps", type=_positive_int, default=None, help="denoising steps (default: the model's "
                   "recommendation when you use its sampler, else the sampler's: dpm++ 25, ddim 50, ddpm 1000)")
    g.add_argument("--sampler", default=None, help=f"one of {', '.join(sampler_names())} (dpmpp is accepted); "
                   "default: the model's recommendation, else dpm++")
    g.add_argument("--guidance", type=_non_negative_float, default=None,
                   help="classifier-free guidance scale on the music (1 = none; default: the model's, else 1)")
    g.add_argument("--seed", type=int, default=0, help="random seed (same seed, same dance)")
    g.add_argument("--overlap", type=int, default=None,
                   help="samples shared by consecutive windows of a long video (frames; beat-grid samples for a "
                   "beat-time model; default: the model's)")
    g.add_argument("--checkpoint", default=None,
                   help="model folder (flow_ae.safetensors + diffusion.safetensors [+ bundle.json]); "
                   "default: the built-in demo model")
    g.add_argument("--device", default="auto", help="auto (GPU if there is one), cpu, cuda, cuda:1 ...")
    seg = g.add_argument_group("choreograph anyone (optional: cut the person out of any photo)")
    seg.add_argument("--mask", default=None, help="mask image of the person (white = person)")
    seg.add_argument("--background", default=None,
                     help="background for the cut-out person: 'studio' (default when cutting out), a colour "
                     "('white', '#rrggbb') or an image file")
    seg.add_argument("--yolo", default=None, help="ultralytics YOLO .pt file that finds the person")
    seg.add_argument("--sam", default=None, help="SAM checkpoint that cuts the person out (with --yolo)")
    seg.add_argument("--fit", choices=("crop", "pad"), default="crop",
                     help="make a non-square image square by cropping (default) or padding")
    g.add_argument("--clap-dir", action="append", default=[], help="folder with CLAP checkpoints (if the model uses CLAP)")
    g.add_argument("--wav2clip-dir", action="append", default=[], help="folder with Wav2CLIP.pt (if the model uses it)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    add_beat_grid_options(g)

    b = sub.add_parser("beats", help="the beat grid of a piece of music (tempo, beat times, a picture)",
                       description="Print the beat grid a dance to AUDIO would follow, as a beat file (comment "
                       "lines with the tempo, then one beat time per line, 'downbeat' on a bar's first beat; "
                       "seconds of the music file, so it can be edited and given back with --beats), and draw it "
                       "with --preview: check that the grid sits on the kicks before generating.")
    b.add_argument("music", help="music file (wav/flac/ogg/mp3/m4a, or a video's audio track)")
    b.add_argument("--start", type=_non_negative_float, default=0.0, help="start time in the music, seconds")
    b.add_argument("--seconds", type=_positive_float, default=None,
                   help="seconds of music from --start (default: to its end)")
    b.add_argument("--preview", default=None, metavar="PNG", help="write a picture of the grid on the music here")
    b.add_argument("--width", type=_positive_int, default=1024, help="width of the picture in pixels")
    add_beat_grid_options(b)
    return p


class ProgressBar:
    """A tqdm bar on stderr driven by ``progress(done, total)`` calls; outside a terminal (a log
    file, CI) a plain line every tenth of the way instead of a redraw per step."""

    def __init__(self, enabled: bool, stream=None) -> None:
        self.enabled, self.bar = enabled, None
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last_tenth = -1

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if not self.tty:
            tenth = int(10 * done / max(total, 1))
            if tenth > self.last_tenth:
                self.last_tenth = tenth
                print(f"dancing: {10 * tenth}% ({done}/{total} steps)", file=self.stream, flush=True)
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="dancing", unit="step", file=self.stream, dynamic_ncols=True)
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def beat_edit_from_args(args: argparse.Namespace):
    """The beat grid options as a :class:`~dabfusion.music.beat_grid.BeatGridEdit` (beat list times in the
    music file's seconds), or None for the tracker's grid. A bad beat file fails here, before any work."""
    from .music.beat_grid import BeatGridEdit, read_beat_file

    listed = None
    if args.beats is not None:
        from .media.audio import audio_duration

        listed = read_beat_file(args.beats, audio_duration(args.music))
    edit = BeatGridEdit(offset_beats=args.beat_offset, tempo=args.tempo, bpm=args.bpm,
                        beats=None if listed is None else listed.beats,
                        downbeat=0 if listed is None else listed.downbeat,
                        source="" if listed is None else listed.source)
    return None if edit.is_identity else edit


def beats_main(args: argparse.Namespace) -> str:
    """``beats``: print the grid as a beat file (and draw it); returns the text printed."""
    from .errors import MediaError
    from .music.beat_grid import format_beat_list, tracked_analysis
    from .pipeline import load_music

    if not Path(args.music).is_file():
        raise MediaError(f"music: file not found: {args.music}")
    preview = None
    if args.preview is not None:
        preview = Path(args.preview)
        if preview.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
            raise MediaError(f"--preview must be an image file (.png), got {preview}")
        try:
            preview.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MediaError(f"cannot create the folder {preview.parent} for --preview ({e.strerror or e})") from None
    edit = beat_edit_from_args(args)
    wave, sr = load_music(args.music, start=args.start, seconds=args.seconds)
    seconds = wave.shape[-1] / sr
    if edit is not None:
        edit = edit.cut(args.start, seconds)
    raw = tracked_analysis(wave, sr)
    grid = raw if edit is None else edit.apply(raw)
    beats = grid.beats
    if beats.size >= 2:
        bars = grid.downbeats.size
        head = f"{grid.tempo:.1f} BPM, {beats.size} beats, {bars} bar{'s' * (bars != 1)} of {grid.beats_per_bar}"
    else:
        head = "no beats found (give --bpm or --beats)"
    span = f"{args.start:g} .. {args.start + seconds:.2f} s"
    lines = [f"# {Path(args.music).name} ({span}): {head}",
             f"# grid: {'as tracked' if edit is None else edit.describe()}"
             + (f" (tracker: {raw.tempo:.1f} BPM, {raw.beats.size} beats)" if edit is not None else "")]
    if preview is not None:
        from PIL import Image

        from .music.beat_grid_preview import draw_beat_grid

        picture = draw_beat_grid(grid, wave, sr, edit=edit, tracked_tempo=raw.tempo, width=args.width)
        try:
            Image.fromarray(picture).save(preview)
        except OSError as e:
            raise MediaError(f"cannot write --preview {preview} ({e.strerror or e})") from None
        lines.append(f"# preview: {preview.resolve()}")
    text = "\n".join(lines) + "\n" + format_beat_list(grid, shift=args.start)
    print(text, end="")
    return text


def generate_main(args: argparse.Namespace) -> Path:
    from .errors import MediaError
    from .pipeline import check_sampler, generate_video

    if args.sampler is not None:
        check_sampler(args.sampler)
    for what, value in (("image", args.image), ("music", args.music), ("mask", args.mask)):
        if value is not None and not Path(value).is_file():
            raise MediaError(f"--{what}: file not found: {value}")
    from .pipeline import DabFusionPipeline, check_output_path, resolve_device

    check_output_path(args.out)
    beat_edit = beat_edit_from_args(args)
    search = {"clap": args.clap_dir, "wav2clip": args.wav2clip_dir}
    pipe = DabFusionPipeline.from_folder(args.checkpoint, device=resolve_device(args.device), search_dirs=search)
    # the settings the run samples with, resolved once by the pipeline (an option given wins, else the model
    # folder's recommendation); the same values go on to generate_video
    settings = pipe.settings(sampler=args.sampler, steps=args.steps, guidance=args.guidance, seed=args.seed,
                             overlap=args.overlap)
    if not args.quiet:
        print(pipe.describe(), file=sys.stderr, flush=True)
        chosen = pipe.from_model(settings, sampler=args.sampler, steps=args.steps, guidance=args.guidance)
        print(f"sampling: {settings.describe(from_model=chosen)}", file=sys.stderr, flush=True)
    bar = ProgressBar(not args.quiet)
    try:
        return generate_video(args.image, args.music, args.out, pipeline=pipe, start=args.start,
                              seconds=args.seconds, frames=args.frames, fps=args.fps,
                              sampler=settings.sampler, steps=settings.steps, guidance=settings.guidance,
                              seed=settings.seed, overlap=settings.overlap, mask=args.mask, background=args.background, fit=args.fit,
                              yolo_model=args.yolo, sam_model=args.sam, search_dirs=search, progress=bar,
                              beat_edit=beat_edit)
    finally:
        bar.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub
    if args.command == "beats":
        code, _ = call_for_cli(beats_main, args)
        return code
    code, path = call_for_cli(generate_main, args)
    if code:
        return code
    sys.stdout.flush()
    print(Path(path).resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
