"""Seams of a clip made in windows: how much the flow jumps where a window begins or ends."""

from __future__ import annotations

from typing import Sequence

import torch


def border_discontinuity(flow: torch.Tensor, borders: Sequence[int]) -> dict[str, float]:
    """Mean |flow[i+1] - flow[i]| at window borders vs within windows (frame-major ``[L, 2, h, w]``).

    ``borders`` (one clip's :attr:`LongSample.borders`): the steps ``i -> i + 1`` where a window begins or
    ends - for continued windows the step from the last known frame to the first new one, where a
    continuation that ignored its prefix would jump.
    """
    diffs = (flow[1:] - flow[:-1]).abs().flatten(1).mean(1)  # diffs[i]: frame i -> i+1
    border = {int(i) for i in borders if 0 <= int(i) < diffs.shape[0]}
    inside = [i for i in range(diffs.shape[0]) if i not in border]
    b = float(diffs[sorted(border)].mean()) if border else float("nan")
    w = float(diffs[inside].mean()) if inside else float("nan")
    return {"border": b, "within": w, "ratio": b / w if w and w == w and w > 0 else float("nan"),
            "n_border": len(border), "n_within": len(inside)}
