"""Write the template thumbnails (workflows/<template>.jpg) from what each template makes.

    python scripts/make_thumbnails.py [--steps 12] [--seconds 3] [--names TEMPLATE ...]

ComfyUI's front-end (1.27) shows a custom pack's template with the picture
``/api/workflow_templates/<pack folder>/<file stem>.jpg``, which ComfyUI serves from the JSON's own
folder (see scripts/make_workflows.py), in a 256 x 256 box. So each thumbnail is a square JPEG
beside its workflow with the same stem.

Each picture is real output: the template's API graph (workflows/api/) runs through the pack's
node classes with the built-in demo model, Load Image reading the pack's example image (the file
the pack places in ComfyUI's input folder). The card shows the template's input image, then frames
of the clip it generated, and beneath them the music's waveform with its beats (ticks) and where the
frames shown sit in time (dots). A template with a Beat Alignment node shows instead what it adds:
its plot of the motion speed against the beat grid and the sampler's score of every seed (the best
of N); a template that previews Load Music's beat grid shows that picture of the grid on the music
under the frames. Steps and length are lowered (--steps, --seconds) so a CPU makes them all in a few minutes;
the graphs themselves (the number of candidates included) are not changed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
EXAMPLES = ROOT / "dabfusion" / "assets" / "examples"
SIZE = 512  # shown at 256 x 256 CSS px: 2x for high-density screens
BG, PANEL, FG, ACCENT, MUTED = (24, 24, 32), (38, 38, 50), (236, 236, 244), (255, 176, 64), (120, 120, 140)


def load_pack():
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_workflows import load_pack as load

    return load()


def run_graph(api: dict, classes: dict, steps: int, seconds: float) -> dict[str, tuple]:
    """Run an API prompt (steps and length lowered) with the core stand-ins; the outputs by node id."""
    from dabfusion.testing.comfy_graph import execute

    for node in api.values():
        inputs = node["inputs"]
        if node["class_type"] == "DabFusionSampler":
            inputs["steps"] = min(inputs["steps"] or steps, steps)  # 0: the model's recommendation, lowered too
            if inputs.get("length"):
                inputs["length"] = min(inputs["length"], seconds * 2)  # still several windows
        if node["class_type"] == "DabFusionLoadMusic" and inputs.get("duration"):
            inputs["duration"] = min(inputs["duration"], seconds)
    results, _ = execute(api, classes, on_node=lambda nid, kind: print(f"  {kind} done", flush=True))
    return results


def font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the small bitmap font
        return ImageFont.load_default()


def to_pil(frame) -> Image.Image:
    return Image.fromarray((np.asarray(frame.cpu().float()).clip(0, 1) * 255).round().astype(np.uint8))


def photo_tile(path: Path) -> Image.Image:
    """The input photo on a checkerboard where it is transparent."""
    img = Image.open(path).convert("RGBA")
    board = Image.new("RGBA", img.size, (90, 90, 100, 255))
    cell = max(4, img.size[0] // 16)
    draw = ImageDraw.Draw(board)
    for y in range(0, img.size[1], cell):
        for x in range((y // cell % 2) * cell, img.size[0], 2 * cell):
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(120, 120, 132, 255))
    return Image.alpha_composite(board, img).convert("RGB")


def waveform_strip(wave: np.ndarray, sr: int, marks: list[float], width: int, height: int,
                   beat_edit=None) -> Image.Image:
    """The music's envelope, its beats (ticks: the grid the graph used) and the times of the frames shown (dots)."""
    from dabfusion.music.beat_grid import edited_analysis

    strip = Image.new("RGB", (width, height), PANEL)
    draw = ImageDraw.Draw(strip)
    mono = np.asarray(wave, np.float32).reshape(-1, wave.shape[-1]).mean(0)
    duration = len(mono) / sr
    cols = np.array_split(np.abs(mono), width)
    env = np.array([c.max() if len(c) else 0.0 for c in cols])
    env = env / (env.max() + 1e-8)
    mid = height // 2
    for x, e in enumerate(env):
        h = max(1, int(e * (height * 0.38)))
        draw.line([x, mid - h, x, mid + h], fill=MUTED)
    for t in edited_analysis(mono, sr, beat_edit).beats:
        x = int(t / duration * (width - 1))
        draw.line([x, 2, x, height - 3], fill=ACCENT, width=2)
    for t in marks:
        x = 4 + int(t / duration * (width - 9))
        draw.ellipse([x - 4, height - 10, x + 4, height - 2], fill=FG)
    return strip


def labelled_tile(card: Image.Image, draw, img: Image.Image, text: str, at: tuple[int, int], tile: int, label,
                  highlight: bool) -> None:
    """``img`` as a ``tile``-pixel square at ``at`` with ``text`` in a box at its foot (the accent colour
    when ``highlight``)."""
    x, y = at
    card.paste(img.resize((tile, tile), Image.Resampling.LANCZOS), (x, y))
    tw = draw.textlength(text, font=label)
    draw.rectangle([x, y + tile - label.size - 8, x + tw + 10, y + tile], fill=BG)
    draw.text((x + 5, y + tile - label.size - 5), text, fill=ACCENT if highlight else FG, font=label)


def image_and_two_frames(frames, fps: float, photo: Path):
    """A new card with its top row: the input image and two frames of the clip; (card, draw, gap, tile)."""
    n = frames.shape[0]
    card = Image.new("RGB", (SIZE, SIZE), BG)
    draw = ImageDraw.Draw(card)
    gap = 8
    tile = (SIZE - 4 * gap) // 3
    label = font(max(12, tile // 9))
    picks = np.linspace(0, n - 1, 4).round().astype(int)[[1, 3]]
    tiles = [(photo_tile(photo), "image")] + [(to_pil(frames[i]), f"{i / fps:.1f} s") for i in picks]
    for k, (img, text) in enumerate(tiles):
        labelled_tile(card, draw, img, text, (gap + k * (tile + gap), gap), tile, label, highlight=k == 0)
    return card, draw, gap, tile


def compose(frames, fps: float, audio: dict, photo: Path, photo_label: str, grid: int) -> Image.Image:
    """A square card: the input image and frames in a grid over the music strip."""
    n = frames.shape[0]
    n_frames = grid * grid - 1
    picks = np.linspace(0, n - 1, n_frames).round().astype(int)
    card = Image.new("RGB", (SIZE, SIZE), BG)
    gap, strip_h = 8, 72
    tile = (SIZE - strip_h - (grid + 2) * gap) // grid
    x0 = (SIZE - grid * tile - (grid - 1) * gap) // 2
    label = font(max(12, tile // 9))
    tiles = [(photo_tile(photo), photo_label)] + [(to_pil(frames[i]), f"{i / fps:.1f} s") for i in picks]
    draw = ImageDraw.Draw(card)
    for k, (img, text) in enumerate(tiles):
        x, y = x0 + (k % grid) * (tile + gap), gap + (k // grid) * (tile + gap)
        labelled_tile(card, draw, img, text, (x, y), tile, label, highlight=text == photo_label)
    from dabfusion.media.comfy import audio_beat_edit

    wave = audio["waveform"][0].cpu().numpy()
    strip = waveform_strip(wave, int(audio["sample_rate"]), [i / fps for i in picks], SIZE - 2 * x0, strip_h - gap,
                           beat_edit=audio_beat_edit(audio))
    card.paste(strip, (x0, SIZE - strip_h))
    return card


def compose_beat_check(frames, fps: float, photo: Path, plot, scores: str) -> Image.Image:
    """A square card for a best-of-N + Beat Alignment template: the input image and two frames of the
    kept clip, Beat Alignment's plot (speed vs beats) and the score of every seed, best first."""
    card, draw, gap, tile = image_and_two_frames(frames, fps, photo)
    chart = to_pil(plot[0])
    width = SIZE - 2 * gap
    height = round(width * chart.height / chart.width)
    top = 2 * gap + tile
    card.paste(chart.resize((width, height), Image.Resampling.LANCZOS), (gap, top))
    lines = scores.splitlines()
    text_font = font(19)
    y = top + height + gap
    step = (SIZE - y - gap) / max(len(lines), 1)
    for i, line in enumerate(lines):
        draw.text((gap + 4, y + i * step), line.strip(), fill=ACCENT if i == 0 else FG, font=text_font)
    return card


def compose_beat_grid(frames, fps: float, photo: Path, audio: dict) -> Image.Image:
    """A square card for a beat grid template: the input image and two frames, and under them the beat grid on
    the music as Load Music's beat_grid output draws it (here at the card's width)."""
    from dabfusion.media.comfy import audio_beat_edit
    from dabfusion.music.beat_grid import edited_analysis, tracked_analysis
    from dabfusion.music.beat_grid_preview import draw_beat_grid

    card, _, gap, tile = image_and_two_frames(frames, fps, photo)
    wave, sr = audio["waveform"][0].cpu().numpy(), int(audio["sample_rate"])
    edit = audio_beat_edit(audio)
    top = 2 * gap + tile
    width, room = SIZE - 2 * gap, SIZE - top - gap
    row_height = room - 2 * 11 - 22 - (11 + 12) - 4  # GridLayout at this width: 11 px type
    picture = draw_beat_grid(edited_analysis(wave, sr, edit), wave, sr, edit=edit, width=width,
                             row_height=row_height, tracked_tempo=tracked_analysis(wave, sr).tempo)
    card.paste(Image.fromarray(picture), (gap, top))
    return card


def make(stem: str, classes: dict, steps: int, seconds: float) -> Path:
    api = json.loads((WORKFLOWS / "api" / f"{stem}.json").read_text(encoding="utf-8"))
    print(f"{stem}:", flush=True)
    results = run_graph(api, classes, steps, seconds)
    by_type = {node["class_type"]: nid for nid, node in api.items()}
    frames, fps = results[by_type["DabFusionWarpDecode"]][:2]
    audio = results[by_type["DabFusionLoadMusic"]][0]
    photo = EXAMPLES / api[by_type["LoadImage"]]["inputs"]["image"]
    label = "photo" if "DabFusionSegmentPerson" in by_type else "image"
    grid = 3 if "long" in stem.lower() else 2
    music_node = by_type["DabFusionLoadMusic"]
    previews_grid = any(node["class_type"] == "PreviewImage" and node["inputs"].get("images") == [music_node, 2]
                        for node in api.values())
    if previews_grid:
        card = compose_beat_grid(frames, float(fps), photo, audio)
    elif "DabFusionBeatAlignment" in by_type:
        plot = results[by_type["DabFusionBeatAlignment"]][4]
        scores = results[by_type["DabFusionSampler"]][1]
        card = compose_beat_check(frames, float(fps), photo, plot, scores)
    else:
        card = compose(frames, float(fps), audio, photo, label, grid)
    out = WORKFLOWS / f"{stem}.jpg"
    card.save(out, "JPEG", quality=88, optimize=True)
    print(f"  wrote {out}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--names", nargs="+", default=sorted(f.stem for f in WORKFLOWS.glob("*.json")),
                   help="templates (file stems under workflows/; default: all)")
    p.add_argument("--steps", type=int, default=12, help="at most this many sampler steps")
    p.add_argument("--seconds", type=float, default=3.0, help="at most this much music (long video: twice)")
    args = p.parse_args(argv)
    import torch

    torch.manual_seed(0)
    pack = load_pack()
    from dabfusion.testing.comfy_graph import CORE_STAND_INS

    classes = {**pack.NODE_CLASS_MAPPINGS, **CORE_STAND_INS}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DABFUSION_OUTPUT_DIR"] = tmp  # the MP4s Video Combine writes are not kept
        os.environ["DABFUSION_INPUT_DIR"] = str(EXAMPLES)
        for stem in args.names:
            make(stem, classes, args.steps, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
