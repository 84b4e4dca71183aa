"""Table aggregation on constructed per-video results: grouping, FVD per group, files written."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from dabfusion.evaluation.generate import prefix_is_exact, round_robin, seed_for
from dabfusion.evaluation.tables import Aggregator, write_rows_csv, write_tables

VIDEOS = [  # stem, genre, camera
    ("v1", "BR", "c01"), ("v2", "BR", "c02"), ("v3", "HO", "c01"), ("v4", "HO", "c01"), ("v5", "JB", "c02"),
]


def _row(model: str, frames: int, stem: str, genre: str, camera: str, k: float) -> dict:
    return {"model": model, "label": "DabFusion (ours)", "frames": frames, "video": stem, "track": f"m{genre}0",
            "genre": genre, "camera": camera, "dancer": "d01",
            "psnr": 20.0 + k, "ssim": 0.5 + k / 100, "lpips": 0.1 * k, "clip_score": 0.01 * k,
            "mm_align": 0.2 + 0.01 * k, "av_align": 0.1 * k, "av_align_original": 0.2 * k,
            "gt_mm_align": 0.5, "gt_av_align": 0.25, "gt_av_align_original": 0.3, "gt_clip_score": 0.15}


@pytest.fixture()
def scores():
    rows, gen, gt = [], {}, {}
    rng = np.random.default_rng(0)
    for model, offset in (("main", 0.0), ("ablation", 10.0)):
        for frames in (40, 80):
            for i, (stem, genre, cam) in enumerate(VIDEOS):
                k = i + 1 + offset + (0.5 if frames == 80 else 0.0)
                rows.append(_row(model, frames, stem, genre, cam, k))
                gen.setdefault((model, frames), {})[stem] = rng.normal(size=8) + (3.0 if model == "ablation" else 0.0)
                gt.setdefault(frames, {})[stem] = rng.normal(size=8)
    return rows, gen, gt


def _agg(scores, **kw) -> Aggregator:
    rows, gen, gt = scores
    kw.setdefault("available", {"fvd": True, "lpips": True, "clip_score": True})
    return Aggregator(rows, gen_features=gen, gt_features=gt, frames=[40, 80], **kw)


def _col(table, key):
    return [r[table.keys.index(key)] for r in table.rows]


def test_quality_tables_overall_and_per_camera(scores):
    agg = _agg(scores)
    t1, t2 = agg.table1(), agg.table2()
    assert t1.keys == ["model", "videos", "fvd", "lpips", "psnr", "ssim"]
    assert _col(t1, "videos") == [5] and _col(t1, "psnr") == [pytest.approx(23.0)]  # mean of 21..25
    assert _col(t2, "camera") == ["C01", "C02"] and _col(t2, "videos") == [3, 2]
    assert _col(t2, "psnr") == [pytest.approx((21 + 23 + 24) / 3), pytest.approx((22 + 25) / 2)]
    assert _col(t2, "lpips")[1] == pytest.approx(0.1 * (2 + 5) / 2)
    # FVD of a group = Frechet distance of that group's generated vs ground-truth features
    from dabfusion.evaluation.fvd import fvd

    _, gen, gt = scores
    c01 = ["v1", "v3", "v4"]
    expected = fvd(np.stack([gen[("main", 40)][s] for s in c01]), np.stack([gt[40][s] for s in c01]))
    assert _col(t2, "fvd")[0] == pytest.approx(expected) and np.isfinite(_col(t1, "fvd")[0])


def test_alignment_tables_ground_truth_and_per_genre(scores):
    agg = _agg(scores)
    t3, t4 = agg.table3(), agg.table4()
    assert t3.keys == ["model", "videos", "clip_score", "mm_align", "av_align", "av_align_original"]
    assert _col(t3, "model") == ["Ground Truth", "DabFusion (ours)"]
    assert _col(t3, "mm_align") == [pytest.approx(0.5), pytest.approx(0.23)]
    assert _col(t3, "av_align_original")[0] == pytest.approx(0.3)
    assert _col(t4, "genre") == ["Break", "Break", "House", "House", "Ballet Jazz", "Ballet Jazz"]
    assert _col(t4, "model")[:2] == ["Ground Truth", "DabFusion (ours)"]
    house = [r for r in t4.rows if r[0] == "House" and r[1] != "Ground Truth"][0]
    assert house[t4.keys.index("videos")] == 2
    assert house[t4.keys.index("av_align")] == pytest.approx(0.1 * (3 + 4) / 2)


def test_length_and_beat_ablation_tables(scores):
    agg = _agg(scores, beats={"main": True, "ablation": False})
    t5, t6 = agg.table5(), agg.table6()
    assert t5.keys[-1] == "fvd" and _col(t5, "frames") == ["40 frames", "40 frames", "80 frames", "80 frames"]
    model_rows = [r for r in t5.rows if r[1] != "Ground Truth"]
    assert model_rows[1][t5.keys.index("mm_align")] - model_rows[0][t5.keys.index("mm_align")] == pytest.approx(0.005)
    assert np.isnan([r for r in t5.rows if r[1] == "Ground Truth"][0][t5.keys.index("fvd")])  # no FVD of GT vs GT
    assert _col(t6, "beat") == ["✗", "✓"]
    fvd_no, fvd_yes = _col(t6, "fvd")
    assert fvd_no > fvd_yes  # the ablation's features were shifted away from the ground truth
    assert _col(t6, "mm_align")[0] == pytest.approx(0.33)


def test_skipped_metrics_leave_their_columns_out_with_a_note(scores):
    agg = _agg(scores, available={"fvd": False, "lpips": False, "clip_score": False})
    t1, t3, t6 = agg.table1(), agg.table3(), agg.table6()
    assert t1.keys == ["model", "videos", "psnr", "ssim"]
    assert "clip_score" not in t3.keys and "fvd" not in t6.keys
    assert any("FVD (needs --i3d)" in n and "LPIPS (needs --lpips)" in n for n in t1.notes)
    assert any("CLIP-Score (needs --clip and --wav2clip)" in n for n in t3.notes)
    rows, gen, gt = scores
    only_main = Aggregator([r for r in rows if r["model"] == "main"], frames=[40])
    t6 = only_main.table6()
    assert len(t6.rows) == 1 and any("--ablation-diffusion" in n for n in t6.notes)
    assert any("--frames 40 80" in n for n in only_main.table5().notes)


def test_tables_are_written_as_markdown_csv_and_png(scores, tmp_path):
    agg = _agg(scores)
    tables = agg.tables()
    assert [t.key for t in tables] == ["table1_quality", "table2_camera", "table3_alignment", "table4_genre",
                                       "table5_length", "table6_beats"]
    paths = write_tables(tables, tmp_path)
    for t in tables:
        md = (tmp_path / f"{t.key}.md").read_text()
        assert md.startswith(f"### {t.title}") and "| " + " | ".join(t.columns) + " |" in md
        with open(tmp_path / f"{t.key}.csv", newline="") as fh:
            got = list(csv.reader(fh))
        assert got[0] == t.keys and len(got) == len(t.rows) + 1
        png = tmp_path / "plots" / f"{t.key}.png"
        assert paths[t.key]["png"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| C01 | 3 |" in tables[1].to_markdown()
    p = write_rows_csv(scores[0], tmp_path / "per_video.csv")
    assert len(p.read_text().splitlines()) == len(scores[0]) + 1


def test_selection_order_seeds_and_prefix_rule():
    assert round_robin([[1, 2], [3], [4, 5, 6]]) == [1, 3, 4, 2, 5, 6]
    assert seed_for("v1", 0) == seed_for("v1", 0) != seed_for("v2", 0) != seed_for("v1", 1)
    assert prefix_is_exact(41, 81, 16, None)       # windows 0, 12, 24, 36; the 5th starts at 48
    assert not prefix_is_exact(50, 81, 16, None)   # frames 48, 49 are cross-faded with a 5th window there
    assert not prefix_is_exact(81, 41, 16, None)
