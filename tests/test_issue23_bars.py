"""scripts/issue23_bars.py: issue 23's bars read off an evaluation's results.json."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("issue23_bars", ROOT / "scripts" / "issue23_bars.py")
bars_mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bars_mod)


def results(**main):
    s = {"gen_mm_align": 0.86, "gt_mm_align": 0.945, "mis_mm_align": 0.41, "beats_ratio_gen_over_gt": 1.1,
         "motion_amplitude": 0.95, "motion_amplitude_rec": 0.97, **main}
    return {"checkpoint": "x", "videos": 10, "clip_frames": 240, "main": {"summary": s},
            "delay": {"summary": {"shift_beats": 0.49}},
            "samplers": {"summary": {"mm_ratio_dpm_over_ddpm": 0.98, "dpm++_mm_align": 0.85, "ddpm_mm_align": 0.867,
                                     "dpm_steps": 25, "ddpm_steps": 1000}}}


def test_every_bar_holds_or_names_the_one_that_does_not(tmp_path):
    rows = bars_mod.bars(results())
    assert [r["holds"] for r in rows] == [True] * 6
    low = {r["bar"]: r["holds"] for r in bars_mod.bars(results(motion_amplitude=0.35, gen_mm_align=0.776))}
    assert low["motion amplitude (generated / gt speed)"] is False
    assert low["2D-MM Align / ground truth"] is False  # 0.776 / 0.945 = 82 %
    assert low["2D-MM Align - mismatched music"] is True
    assert "DPM++ 25 / DDPM 1000 (2D-MM)" in low
    path = tmp_path / "r.json"
    path.write_text(json.dumps(results(motion_amplitude=0.35)))
    assert bars_mod.main([str(path)]) == 0
    assert bars_mod.main([str(path), "--strict"]) == 1


def test_missing_experiments_are_not_measured(capsys):
    r = results()
    del r["samplers"], r["delay"]
    rows = {x["bar"]: x["holds"] for x in bars_mod.bars(r)}
    assert rows["half-beat delay shift (beats)"] is None and rows["DPM++ ? / DDPM ? (2D-MM)"] is None
    print(bars_mod.table(bars_mod.bars(r), r))
    assert "not measured" in capsys.readouterr().out
