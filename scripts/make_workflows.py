"""Write the example workflows, in ComfyUI's UI format (workflows/) and API format (workflows/api/).

    python scripts/make_workflows.py

Each graph is described once below; both files are generated from that description and from the
node classes' own INPUT_TYPES / RETURN_TYPES (widget order, socket types), so the two formats
cannot drift apart. tests/test_workflows.py checks the files independently and runs the API graphs.

UI format (what the front-end saves, version 0.4): nodes with id/type/pos/size/inputs/outputs/
widgets_values, links ``[id, from_node, from_slot, to_node, to_slot, type]``. ComfyUI lists every
``*.json`` directly in a custom node's ``workflows/`` (or ``example_workflows/``) folder as the
pack's templates; the API-format copies live one level deeper so they are not listed.

The template browser of ComfyUI's front-end (1.27) shows a custom pack's template by its file name
alone (title and description are both the file stem) and its thumbnail is ``<stem>.jpg`` beside
the JSON file (written by scripts/make_thumbnails.py), so the file names are the readable titles.
The example files the graphs name are in dabfusion/assets/examples/; the pack copies them into
ComfyUI's input folder when it loads (nodes/examples.py), so the templates run as shipped.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "workflows"
PACK_NAME = "dance_any_beat_pack_workflows"
FRONTEND_VERSION = "1.27.10"  # the front-end of ComfyUI 0.3.64, which these files were checked against

DEMO = "built-in demo model (SynthDance)"
IMAGE = "dance_any_beat_dancer.png"
PERSON = "dance_any_beat_person.png"
MUSIC = "dance_any_beat_music.ogg"
CANDIDATES = 4  # the best-of-N template's seeds

#: Core nodes the workflows use: (inputs (name, type, is_widget), outputs (name, type), extra widget values).
CORE_NODES: dict[str, dict[str, Any]] = {
    "LoadImage": {"inputs": [("image", "COMBO", True)], "outputs": [("IMAGE", "IMAGE"), ("MASK", "MASK")],
                  "extra_widgets": {"image": ["image"]},  # the upload button's serialized value
                  "title": "Load Image"},
    "PreviewImage": {"inputs": [("images", "IMAGE", False)], "outputs": [], "title": "Preview Image"},
    # comfy_extras/nodes_preview_any.py: shows any value as text. The front-end adds the read-only text box
    # "preview": not saved in the workflow (serialize false) but sent, empty, in the prompt (ComfyUI drops
    # it: not a declared input), so an API file as the front-end exports it has it.
    "PreviewAny": {"inputs": [("source", "*", False)], "outputs": [], "title": "Preview Any",
                   "api_extra": {"preview": ""}},
}
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")


def load_pack():
    spec = importlib.util.spec_from_file_location(PACK_NAME, ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Node:
    id: int
    type: str
    pos: tuple[int, int]
    widgets: dict[str, Any] = field(default_factory=dict)
    title: str | None = None


@dataclass
class Graph:
    name: str  # stable id (the workflow's uuid is derived from it)
    description: str
    nodes: list[Node]
    links: list[tuple[int, int, int, str]]  # (from node, from slot, to node, to input name)
    note: str = ""
    title: str = ""  # the file stem, i.e. what the template browser shows: words, no "_" (default: name)

    @property
    def stem(self) -> str:
        return self.title or self.name


def node_spec(node_type: str, mappings: dict, display: dict) -> dict[str, Any]:
    """Inputs (name, type, is_widget, options), outputs (name, type), title, for a node type."""
    if node_type in CORE_NODES:
        core = CORE_NODES[node_type]
        return {"inputs": [(n, t, w, {}) for n, t, w in core["inputs"]], "outputs": core["outputs"],
                "extra_widgets": core.get("extra_widgets", {}), "title": core["title"],
                "api_extra": core.get("api_extra", {})}
    cls = mappings[node_type]
    types = cls.INPUT_TYPES()
    inputs = []
    for section in ("required", "optional"):
        for name, spec in types.get(section, {}).items():
            kind = spec[0]
            is_widget = isinstance(kind, (list, tuple)) or kind in WIDGET_TYPES
            options = spec[1] if len(spec) > 1 else {}
            inputs.append((name, "COMBO" if isinstance(kind, (list, tuple)) else kind, is_widget, options))
    names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
    return {"inputs": inputs, "outputs": list(zip(names, cls.RETURN_TYPES)), "extra_widgets": {},
            "title": display.get(node_type, node_type)}


def widget_values(spec: dict, node: Node) -> list[Any]:
    values = []
    for name, kind, is_widget, options in spec["inputs"]:
        if not is_widget:
            continue
        if name in node.widgets:
            value = node.widgets[name]
        elif "default" in options:
            value = options["default"]
        else:
            raise ValueError(f"{node.type} #{node.id}: no value for widget {name!r}")
        values.append(value)
        if name in ("seed", "noise_seed") or options.get("control_after_generate"):
            values.append("fixed")  # the front-end's "control after generate" widget
        values.extend(spec["extra_widgets"].get(name, []))
    return values


def topological_order(graph: Graph) -> list[int]:
    deps = {n.id: {src for src, _, dst, _ in graph.links if dst == n.id} for n in graph.nodes}
    order: list[int] = []
    while len(order) < len(deps):
        ready = sorted(i for i, d in deps.items() if i not in order and d <= set(order))
        if not ready:
            raise ValueError(f"{graph.name}: the graph has a cycle")
        order.extend(ready)
    return order


def to_api(graph: Graph, specs: dict[int, dict]) -> dict[str, Any]:
    api: dict[str, Any] = {}
    for node in graph.nodes:
        spec = specs[node.id]
        inputs: dict[str, Any] = {}
        for name, kind, is_widget, options in spec["inputs"]:
            if is_widget:
                inputs[name] = node.widgets.get(name, options.get("default"))
        inputs.update(spec.get("api_extra", {}))
        for src, slot, dst, name in graph.links:
            if dst == node.id:
                inputs[name] = [str(src), slot]
        api[str(node.id)] = {"inputs": inputs, "class_type": node.type,
                             "_meta": {"title": node.title or spec["title"]}}
    return api


def to_ui(graph: Graph, specs: dict[int, dict]) -> dict[str, Any]:
    order = topological_order(graph)
    link_rows = []
    for link_id, (src, slot, dst, name) in enumerate(graph.links, start=1):
        link_rows.append([link_id, src, slot, dst, name])
    nodes = []
    for node in graph.nodes:
        spec = specs[node.id]
        incoming = {name: (lid, src, slot) for lid, src, slot, dst, name in link_rows if dst == node.id}
        inputs = []
        for name, kind, is_widget, _ in spec["inputs"]:
            if not is_widget:
                inputs.append({"name": name, "type": kind, "link": incoming[name][0] if name in incoming else None})
        for name, kind, is_widget, _ in spec["inputs"]:  # widgets fed by a link become input slots
            if is_widget and name in incoming:
                inputs.append({"name": name, "type": kind, "widget": {"name": name}, "link": incoming[name][0]})
        outputs = []
        for slot, (name, kind) in enumerate(spec["outputs"]):
            links = [lid for lid, src, s, _, _ in link_rows if src == node.id and s == slot]
            outputs.append({"name": name, "type": kind, "links": links, "slot_index": slot})
        n_rows = len(inputs) + len(outputs) + len(widget_values(spec, node))
        height = 46 + 24 * n_rows + {"LoadImage": 260, "PreviewImage": 260, "PreviewAny": 130}.get(node.type, 0)
        entry = {"id": node.id, "type": node.type, "pos": list(node.pos), "size": [340, height],
                 "flags": {}, "order": order.index(node.id), "mode": 0, "inputs": inputs, "outputs": outputs,
                 "properties": {"Node name for S&R": node.type}, "widgets_values": widget_values(spec, node)}
        if node.title:
            entry["title"] = node.title
        nodes.append(entry)
    links = []
    for lid, src, slot, dst, name in link_rows:
        target = next(n for n in nodes if n["id"] == dst)
        to_slot = next(i for i, inp in enumerate(target["inputs"]) if inp["name"] == name)
        kind = specs[src]["outputs"][slot][1]
        links.append([lid, src, slot, dst, to_slot, kind])
    last_id = max(n.id for n in graph.nodes)
    if graph.note:
        last_id += 1
        nodes.append({"id": last_id, "type": "Note", "pos": [-420, -260], "size": [520, 200], "flags": {},
                      "order": len(nodes), "mode": 0, "inputs": [], "outputs": [], "title": "About this workflow",
                      "properties": {}, "widgets_values": [graph.note], "color": "#432", "bgcolor": "#653"})
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"dance-any-beat/{graph.name}")), "revision": 0,
            "last_node_id": last_id, "last_link_id": len(links), "nodes": nodes, "links": links,
            "groups": [], "config": {},
            "extra": {"ds": {"scale": 0.8, "offset": [480, 320]}, "frontendVersion": FRONTEND_VERSION,
                      "dance_any_beat": {"description": graph.description}},
            "version": 0.4}


# ----------------------------------------------------------------------------------- the graphs

_ABOUT = ("Dance Any Beat (DabFusion). The built-in demo model was trained on SynthDance, the project's "
          "synthetic dance world: it animates SynthDance-like dancers, not photos of real people (train on "
          "AIST++ with the scripts in training/ for that). The example image and music are placed in ComfyUI's "
          "input folder by the pack when ComfyUI starts, so this runs as it is; upload your own to change them.")


def _core_chain(image_node: int, music_seconds: float, length: float, x0: int = 0, seed: int = 0,
                music_y: int = 560) -> tuple[list, list]:
    """Model + music + encode + sample + decode + combine, the image coming from ``image_node`` slot 0."""
    nodes = [
        Node(1, "DabFusionModelLoader", (x0, 0), {"checkpoint": DEMO, "device": "auto"}),
        Node(3, "DabFusionLoadMusic", (x0, music_y), {"audio_file": MUSIC, "start": 0.0, "duration": music_seconds,
                                                      "path": ""}),
        Node(4, "DabFusionMusicEncoder", (x0 + 400, music_y)),
        Node(5, "DabFusionFlowAEEncode", (x0 + 400, 160), {"fit": "crop"}),
        # steps, sampler and guidance: the widgets' defaults, i.e. the model folder's recommendation
        Node(6, "DabFusionSampler", (x0 + 800, 120), {"seed": seed, "length": length, "length_unit": "seconds",
                                                      "fps": 0.0, "overlap": -1}),
        Node(7, "DabFusionWarpDecode", (x0 + 1200, 120), {"chunk_size": 16}),
        Node(8, "DabFusionVideoCombine", (x0 + 1600, 120), {"fps": 30.0, "filename_prefix": "DanceAnyBeat/dance",
                                                            "crf": 19}),
    ]
    links = [
        (1, 0, 4, "model"), (3, 0, 4, "audio"),
        (1, 0, 5, "model"), (image_node, 0, 5, "image"),
        (1, 0, 6, "model"), (5, 0, 6, "latent"), (4, 0, 6, "music"),
        (1, 0, 7, "model"), (5, 0, 7, "latent"), (6, 0, 7, "flows"),
        (7, 0, 8, "images"), (7, 1, 8, "fps"), (3, 0, 8, "audio"),
    ]
    return nodes, links


def graphs() -> list[Graph]:
    a_nodes, a_links = _core_chain(2, 4.0, 0.0)
    a_nodes.insert(1, Node(2, "LoadImage", (0, 180), {"image": IMAGE}))
    b_nodes, b_links = _core_chain(9, 4.0, 0.0, music_y=660)
    b_nodes += [Node(2, "LoadImage", (-400, 180), {"image": PERSON}, title="Load a photo (any person)"),
                Node(9, "DabFusionSegmentPerson", (0, 180), {"yolo_model": "none", "sam_model": "none",
                                                             "background": "studio", "size": 128,
                                                             "person": "largest", "index": 0, "height": 0.7,
                                                             "fit": "crop", "invert_mask": True}),
                Node(10, "PreviewImage", (400, -340), title="Start frame")]
    b_links += [(2, 0, 9, "image"), (2, 1, 9, "mask"), (9, 0, 10, "images")]
    c_nodes, c_links = _core_chain(2, 0.0, 8.0)
    c_nodes.insert(1, Node(2, "LoadImage", (0, 180), {"image": IMAGE}))
    for n in c_nodes:
        if n.type == "DabFusionVideoCombine":
            n.widgets["filename_prefix"] = "DanceAnyBeat/long_dance"
    d_nodes, d_links = _core_chain(2, 4.0, 0.0)
    d_nodes.insert(1, Node(2, "LoadImage", (0, 180), {"image": IMAGE}))
    for n in d_nodes:
        if n.type == "DabFusionSampler":
            n.widgets["candidates"] = CANDIDATES
        if n.type == "DabFusionVideoCombine":
            n.widgets.update(filename_prefix="DanceAnyBeat/best_of_4", beat_overlay=True)
    d_nodes += [Node(9, "DabFusionBeatAlignment", (1200, 560), {"sigma": 3.0, "analysis_size": 0}),
                Node(10, "PreviewImage", (1600, 560), title="Motion speed vs beats"),
                Node(11, "PreviewAny", (800, 620), title="Scores of the seeds (best first) and the settings used"),
                Node(12, "PreviewAny", (2000, 560), title="Beat report")]
    d_links += [(7, 0, 9, "images"), (3, 0, 9, "audio"), (7, 1, 9, "fps"),
                (9, 4, 10, "images"), (6, 1, 11, "source"), (9, 5, 12, "source")]
    e_nodes, e_links = _core_chain(2, 4.0, 0.0)
    e_nodes.insert(1, Node(2, "LoadImage", (0, 180), {"image": IMAGE}))
    for n in e_nodes:
        if n.type == "DabFusionLoadMusic":
            n.title = "Load Music (beat grid controls)"
            n.widgets.update(beat_offset=0.0, tempo="as tracked", bpm=0.0, beats="")
        if n.type == "DabFusionVideoCombine":
            n.widgets.update(filename_prefix="DanceAnyBeat/beat_grid", beat_overlay=True)
    e_nodes.append(Node(9, "PreviewImage", (400, 820), title="Beat grid: an orange line on every kick?"))
    e_links.append((3, 2, 9, "images"))
    return [
        Graph("dance_any_beat_image_music", "Image + music -> dancing video (MP4 with the music).", a_nodes, a_links,
              _ABOUT + " Pick a start frame and a music file; 'length' 0 makes the video as long as the music.",
              title="Dance Any Beat - image and music"),
        Graph("dance_any_beat_choreograph_anyone",
              "Choreograph anyone: a photo -> Segment Person -> start frame -> dancing video.", b_nodes, b_links,
              _ABOUT + " Segment Person cuts the person out (here from the image's transparency: Load Image's MASK "
              "is 1 - alpha, hence invert_mask) and stands them where the training dancers stand. For ordinary "
              "photos pick a YOLO model (models/ultralytics_bbox) and a SAM model (models/sams).",
              title="Dance Any Beat - choreograph anyone"),
        Graph("dance_any_beat_long_video",
              "A long video: the whole track, made in overlapping windows that all warp the original image.",
              c_nodes, c_links,
              _ABOUT + " Any length works: the sampler generates overlapping windows (the built-in model denoises "
              "them together on the music's beat grid, so there are no seams), all relative to the original "
              "reference (no chaining drift). Set 'length' (seconds) to what you need; 0 = the whole music.",
              title="Dance Any Beat - long video"),
        Graph("dance_any_beat_best_of_4_beat_check",
              "Best of 4 with a beat check: four seeds scored against the music's beats, the best one kept, "
              "then measured by Beat Alignment.", d_nodes, d_links,
              _ABOUT + " The sampler draws 4 dances (seeds seed .. seed + 3), scores each one's motion against the "
              "music's beats (2D-MM Align) and keeps the best; 'Scores of the seeds' lists them, best first. Beat "
              "Alignment then measures the kept clip (2D-MM Align, AV-Align, tempo, beat times) and plots the "
              "motion speed against the beat grid; Video Combine flashes each beat (beat_overlay, off by default "
              "elsewhere). More candidates take proportionally longer.",
              title="Dance Any Beat - beat check"),
        Graph("dance_any_beat_beat_grid",
              "The beat grid: see the beats the dance will follow, and move, re-time or replace them before "
              "sampling.", e_nodes, e_links,
              _ABOUT + " Load Music's beat controls set the grid the dance follows, and 'Beat grid' shows it on "
              "the music: orange lines are beats, red ones bar starts, blue peaks the music's attacks (kicks, "
              "snares). To look before sampling, right-click the Beat grid preview and queue only that output. "
              "If the lines sit half-way between the kicks, set beat_offset 0.5; twice too many or too few lines: "
              "tempo halve / double; a steady song: bpm; your own beats (a text file from your DAW, one time in "
              "seconds per line, or a typed list): beats. Music Encoder, the sampler, the beat overlay of Video "
              "Combine (on here) and Beat Alignment all follow the same grid.",
              title="Dance Any Beat - beat grid"),
    ]


def build(out: Path = OUT) -> list[Path]:
    pack = load_pack()
    mappings, display = pack.NODE_CLASS_MAPPINGS, pack.NODE_DISPLAY_NAME_MAPPINGS
    written = []
    (out / "api").mkdir(parents=True, exist_ok=True)
    for graph in graphs():
        specs = {n.id: node_spec(n.type, mappings, display) for n in graph.nodes}
        for path, data in ((out / f"{graph.stem}.json", to_ui(graph, specs)),
                           (out / "api" / f"{graph.stem}.json", to_api(graph, specs))):
            path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":
    for p in build():
        print(p)
