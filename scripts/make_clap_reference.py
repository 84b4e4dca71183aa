"""laion_clap's own embeddings of the tiny random CLAP checkpoints, for tests/test_clap_transformers.py.

    python -m venv /tmp/laion_venv
    /tmp/laion_venv/bin/pip install -c constraints.txt -e '.[laion]' 'numpy<2'   # laion-clap needs numpy 1
    /tmp/laion_venv/bin/python scripts/make_clap_reference.py            # writes tests/data/clap_laion_reference.npz

laion-clap requires numpy<2, so it is not in the test environment (numpy 2, as ComfyUI runs). This script
is the reference side of the check: it rebuilds each checkpoint of :mod:`dabfusion.testing.clap_reference`
from its seed, loads it into laion_clap's HTSAT (strictly, but for a fusion tower's fusion block, which
clips of 10 s or less never reach and our exporter does not write) and saves that model's embedding of
the test clips with the checkpoint's fingerprint. Re-run it when the checkpoints or the clips change
(the test says so when the fingerprint no longer matches).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    import torch

    from dabfusion.music import clap_branch as cb
    from dabfusion.music._clap_laion import LaionClapAudioEncoder
    from dabfusion.testing import clap_reference as ref

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ref.REFERENCE)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case, fusion in ref.CASES.items():
            path = ref.write_checkpoint(fusion, Path(tmp) / f"{case}.pt")
            audio = cb.audio_state_dict(cb.mf.load_checkpoint(path, "clap")["state_dict"])
            laion = LaionClapAudioEncoder("tiny-test", fusion, htsat=ref.TINY)
            missing, unexpected = laion.load_state_dict(audio, strict=False)
            unused = [k for k in missing if ".mel_conv2d." not in k and ".fusion_model." not in k]
            if unused or unexpected:
                raise SystemExit(f"{case}: laion_clap's HTSAT does not take the checkpoint: missing {unused}, "
                                 f"unexpected {unexpected}")
            laion.eval()
            out[f"{case}/embedding"] = np.asarray(laion.embed_clips(ref.clips()), np.float32)
            out[f"{case}/fingerprint"] = np.array(ref.audio_fingerprint(path))
            print(f"{case}: {out[f'{case}/embedding'].shape}, fingerprint {out[f'{case}/fingerprint']}")
    from importlib.metadata import version  # (importing laion_clap itself would reach for roberta-base)

    out["versions"] = np.array(f"laion-clap {version('laion-clap')}, numpy {np.__version__}, torch {torch.__version__}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes): {out['versions']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
