"""The music encoder: e = [e_c, e_w, e_b] (paper section 3.2) plus per-frame beat features.

Branches, concatenated in this order when enabled:

========  =============================================  ======================  ============
branch    frozen encoder                                 adapter                 needs a file
========  =============================================  ======================  ============
clap      LAION-CLAP audio tower, 48 kHz, 10 s clips     MLP 512 -> 512 (e_c)    clap/*.pt
wav2clip  Wav2CLIP ResNet + MLP, 16 kHz                  MLP 512 -> 512 (e_w)    wav2clip/Wav2CLIP.pt
mel       librosa statistics (stand-in, no weights)      MLP (optional)          no
beats     librosa beat analysis, 22.05 kHz (e_b)         none                    no
========  =============================================  ======================  ============

The built-in default (:meth:`MusicEncoder.default`) is the beats branch alone, which needs no
downloaded weights. :attr:`MusicEncoder.spec` describes the enabled branches (dimensions, sample
rates, encoder weight fingerprints, adapter hashes); every checkpoint that consumes the embedding
stores it, and :func:`check_compatible` refuses a mismatch at load time.

What a call encodes. ``encode(wave, sr, n_frames=N, fps=f, start=t0)`` describes the video
segment [t0, t0 + N/f]: the global vector summarises a *context* of ``context_seconds`` (default
10 s, CLAP's clip length) centred on the segment and kept inside the track — dance style does not
change within seconds, and a 1.3 s segment is too short to recognise a genre — while the frame
features belong to the N frames themselves. The context's centre is rounded to a
``context_hop`` grid (0.5 s), so the many overlapping windows a training run asks for share a few
contexts, whose branch vectors are computed once. Without ``n_frames`` the whole track is
summarised.

Memory stays bounded for long music: the neural branches see evenly spaced windows of their clip
length, cut from the input and resampled one batch (``batch_size`` windows) at a time and
averaged; the beat analysis holds the mono track at 22.05 kHz (5.3 MB per minute) and computes
its spectrogram in blocks. Results are cached by (audio hash, spec hash, request) in memory and,
with ``cache_dir``, on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigMismatchError
from ._audio import audio_digest, check_rate, mono_at, to_mono_1d, window_starts
from .beat_grid import TRACKED_ANALYSES, BeatGridEdit
from .beats import ANALYSIS_SR, ANALYSIS_STEPS, FRAME_COLUMNS, GLOBAL_COLUMNS, TRACKER_VERSION, BeatAnalysis, \
    analyze_beats, frame_beat_features, global_beat_vector
from .embedding_cache import DiskCache, LRUCache, cache_key

SPEC_FORMAT = "dabfusion.music_spec"
SPEC_VERSION = 1
#: The beat features' layout and meaning (a checkpoint records it; bump when the columns or their
#: definition change). Which tracker found the beats is :data:`~.beats.TRACKER_VERSION`: part of
#: every cache key, not of a checkpoint's compatibility (a better grid keeps a model valid).
BEATS_ANALYSIS = "librosa-beats-v1"
ORDER = ("clap", "wav2clip", "mel", "beats")


@dataclass
class MusicEmbedding:
    """What :meth:`MusicEncoder.encode` returns.

    ``global_vec`` [D] float32 is e (the enabled branches concatenated, ``parts`` gives each one's
    slice); ``frame_features`` [N, F] (columns :data:`~dabfusion.music.beats.FRAME_COLUMNS`) when
    ``n_frames`` was given and the beats branch is on, else ``None``; ``beats`` are the beat
    times (s, track time) inside the segment (or the track); ``span`` the seconds of audio the
    global vector summarises.
    """

    global_vec: np.ndarray
    frame_features: np.ndarray | None
    beats: np.ndarray
    tempo: float
    span: tuple[float, float]
    parts: dict[str, tuple[int, int]]
    spec: dict

    def part(self, name: str) -> np.ndarray:
        a, b = self.parts[name]
        return self.global_vec[a:b]

    def as_torch(self, device: Any = None):
        """(global [D], frames [N, F] or None) as float32 torch tensors."""
        import torch

        g = torch.as_tensor(self.global_vec, device=device)
        f = None if self.frame_features is None else torch.as_tensor(self.frame_features, device=device)
        return g, f


@dataclass
class _Branch:
    name: str
    encoder: Any = None           # object with sample_rate, dim, embed_clips(), identity()
    adapter: Any = None           # MusicAdapter or None
    window_seconds: float = 10.0
    _identity: dict | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        if self.name == "beats":
            return len(GLOBAL_COLUMNS)
        return int(self.adapter.config.out_dim if self.adapter is not None else self.encoder.dim)

    @property
    def sample_rate(self) -> int:
        return ANALYSIS_SR if self.name == "beats" else int(self.encoder.sample_rate)

    def identity(self) -> dict:
        if self._identity is None:
            self._identity = self.encoder.identity() if self.encoder is not None else {}
        return self._identity

    def spec(self) -> dict:
        if self.name == "beats":
            return {"name": "beats", "dim": self.dim, "sample_rate": ANALYSIS_SR,
                    "analysis": BEATS_ANALYSIS, "columns": list(GLOBAL_COLUMNS)}
        ident = self.identity()
        enc = {k: ident.get(k) for k in ("kind", "amodel", "fusion", "dim", "fingerprint",
                                          "random_weights", "file") if k in ident}
        ad = None
        if self.adapter is not None:
            c = self.adapter.config
            ad = {"sha256": self.adapter.sha256(), "in_dim": c.in_dim, "out_dim": c.out_dim,
                  "objective": c.objective, "genres": list(c.genres)}
        return {"name": self.name, "dim": self.dim, "sample_rate": self.sample_rate,
                "window_seconds": self.window_seconds, "encoder": enc, "adapter": ad}


Progress = Callable[[int, int], None]


class _Report:
    """Maps each branch's own ``progress(done, total)`` onto one count over all branches, reporting
    every position once (a cached branch jumps by its steps)."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.done, self.shown = progress, max(int(total), 1), 0, 0

    def show(self, position: int) -> None:
        position = min(position, self.total)
        if self.progress is not None and position > self.shown:
            self.shown = position
            self.progress(position, self.total)

    def offset(self) -> Progress:
        base = self.done
        return lambda done, _total: self.show(base + int(done))

    def advance(self, n: int) -> None:
        self.done += int(n)
        self.show(self.done)


def spec_hash(spec: Mapping) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def check_compatible(expected: Mapping, actual: Mapping, *, what: str = "This checkpoint") -> None:
    """Raise :class:`ConfigMismatchError` unless two music encoder specs produce the same embedding.

    ``expected`` is the spec a checkpoint recorded; ``actual`` the encoder in use. Compared:
    branches and their order, dimensions, sample rates, windows, frozen encoder kind and weight
    fingerprint, adapter hash, the beat analysis version and frame columns, the context length.
    """
    diffs: list[str] = []

    def cmp(label: str, a: Any, b: Any) -> None:
        if a != b:
            diffs.append(f"{label}: expected {a!r}, got {b!r}")

    ea = [b.get("name") for b in expected.get("branches", [])]
    aa = [b.get("name") for b in actual.get("branches", [])]
    cmp("branches", ea, aa)
    cmp("embedding size", expected.get("global_dim"), actual.get("global_dim"))
    cmp("frame feature columns", expected.get("frame_columns"), actual.get("frame_columns"))
    cmp("context seconds", expected.get("context_seconds"), actual.get("context_seconds"))
    cmp("context hop", expected.get("context_hop"), actual.get("context_hop"))
    if ea == aa:
        for be, ba in zip(expected["branches"], actual["branches"]):
            n = be.get("name")
            for key in ("dim", "sample_rate", "window_seconds", "analysis"):
                cmp(f"{n}.{key}", be.get(key), ba.get(key))
            ee, ae = be.get("encoder") or {}, ba.get("encoder") or {}
            for key in ("kind", "amodel", "fusion", "fingerprint"):
                if key in ee or key in ae:
                    a, b = ee.get(key), ae.get(key)
                    if key == "fingerprint" and a != b:
                        diffs.append(f"{n} encoder weights: expected {str(a)[:16]} "
                                     f"({ee.get('file') or 'random weights'}), got {str(b)[:16]} "
                                     f"({ae.get('file') or 'random weights'})")
                    else:
                        cmp(f"{n}.encoder.{key}", a, b)
            ad_e, ad_a = be.get("adapter"), ba.get("adapter")
            if (ad_e is None) != (ad_a is None):
                cmp(f"{n} adapter", "present" if ad_e else None, "present" if ad_a else None)
            elif ad_e is not None and ad_e.get("sha256") != ad_a.get("sha256"):
                diffs.append(f"{n} adapter: expected {ad_e.get('sha256', '')[:16]}, got "
                             f"{ad_a.get('sha256', '')[:16]}")
    if diffs:
        raise ConfigMismatchError(
            f"{what} was made with a different music encoder:\n  - " + "\n  - ".join(diffs)
            + f"\nIt expects the branches {ea} (embedding size {expected.get('global_dim')}). "
            "Build the MusicEncoder with the same CLAP / Wav2CLIP files and adapters it was "
            "trained with (they are listed in the checkpoint's music spec)."
        )


class MusicEncoder:
    """Concatenates the enabled branches; see the module docstring."""

    def __init__(self, *, clap: Any = None, clap_adapter: Any = None, wav2clip: Any = None,
                 wav2clip_adapter: Any = None, mel: Any = None, mel_adapter: Any = None,
                 beats: bool = True, context_seconds: float = 10.0, context_hop: float = 0.5,
                 batch_size: int = 4, cache_size: int = 32,
                 cache_dir: str | os.PathLike | None = None) -> None:
        if mel is True or (mel is None and mel_adapter is not None):
            from .mel_branch import MelStatsEncoder

            mel = MelStatsEncoder()
        given = {"clap": (clap, clap_adapter), "wav2clip": (wav2clip, wav2clip_adapter),
                 "mel": (mel or None, mel_adapter)}
        self.branches: list[_Branch] = []
        for name in ORDER[:3]:
            enc, ad = given[name]
            if enc is None:
                if ad is not None:
                    raise ValueError(f"{name}_adapter was given without the {name} encoder it adapts")
                continue
            window = 10.0
            if ad is not None:
                if ad.config.branch != name:
                    raise ConfigMismatchError(
                        f"The adapter given for the {name} branch was trained for the "
                        f"{ad.config.branch} branch ({getattr(ad, 'source', '')}).")
                ad.check_encoder(enc.identity())
                window = float(ad.config.window_seconds)
            self.branches.append(_Branch(name, enc, ad, window))
        if beats:
            self.branches.append(_Branch("beats"))
        if not self.branches:
            raise ValueError("a MusicEncoder needs at least one branch (the beats branch needs no files)")
        self.context_seconds = float(context_seconds)
        self.context_hop = float(context_hop)
        self.batch_size = max(1, int(batch_size))
        self._cache = LRUCache(cache_size)
        # the tracker's raw analyses, shared with the nodes that draw or score a grid (Load Music's preview,
        # Beat Alignment, the beat overlay); a beat grid edit is applied after it (self._edited), never stored in it
        self._analyses = TRACKED_ANALYSES
        self._edited = LRUCache(8)
        self._branch_vectors = LRUCache(512)  # (audio, branch, span) -> vector; contexts repeat
        self._disk = DiskCache(cache_dir) if cache_dir is not None else None
        self._spec: dict | None = None

    # ----------------------------------------------------------------- construction helpers

    @classmethod
    def default(cls, **kw: Any) -> "MusicEncoder":
        """The beats branch alone: works with no downloaded weights."""
        return cls(beats=True, **kw)

    @classmethod
    def from_files(cls, *, clap: str | os.PathLike | bool | None = None,
                   clap_adapter: str | os.PathLike | None = None,
                   wav2clip: str | os.PathLike | bool | None = None,
                   wav2clip_adapter: str | os.PathLike | None = None,
                   mel_adapter: str | os.PathLike | None = None, beats: bool = True,
                   search_dirs: Mapping[str, Sequence[str | os.PathLike]] | None = None,
                   device: str = "cpu", trust_pickle: bool = False, **kw: Any) -> "MusicEncoder":
        """Load the named files. ``True`` for an encoder means "the first official file found".

        ``search_dirs`` maps a model folder name (``"clap"``, ``"wav2clip"``, ``"dabfusion"``)
        to folders to look in; the ComfyUI node layer fills it from ``folder_paths``.
        """
        from .adapters import MusicAdapter

        dirs = dict(search_dirs or {})
        enc_clap = enc_w2c = None
        if clap:
            from .clap_branch import load_clap_audio

            enc_clap = load_clap_audio(None if clap is True else clap, dirs.get("clap", ()),
                                       device=device, trust_pickle=trust_pickle)
        if wav2clip:
            from .wav2clip_branch import load_wav2clip

            enc_w2c = load_wav2clip(None if wav2clip is True else wav2clip,
                                    dirs.get("wav2clip", ()), device=device, trust_pickle=trust_pickle)
        ad_dirs = dirs.get("dabfusion", ())

        def ad(p):
            return None if p is None else MusicAdapter.load(p, ad_dirs, device=device)

        return cls(clap=enc_clap, clap_adapter=ad(clap_adapter), wav2clip=enc_w2c,
                   wav2clip_adapter=ad(wav2clip_adapter), mel_adapter=ad(mel_adapter),
                   beats=beats, **kw)

    def to(self, device: Any) -> "MusicEncoder":
        for b in self.branches:
            if b.encoder is not None:
                b.encoder.to(device)
            if b.adapter is not None:
                b.adapter.to(device)
        return self

    # ----------------------------------------------------------------- spec

    @property
    def spec(self) -> dict:
        """JSON-able description of the embedding this encoder produces (see module doc)."""
        if self._spec is None:
            branches = [b.spec() for b in self.branches]
            has_beats = any(b.name == "beats" for b in self.branches)
            self._spec = {
                "format": SPEC_FORMAT, "version": SPEC_VERSION,
                "branches": branches,
                "global_dim": int(sum(b["dim"] for b in branches)),
                "frame_columns": list(FRAME_COLUMNS) if has_beats else [],
                "frame_dim": len(FRAME_COLUMNS) if has_beats else 0,
                "context_seconds": self.context_seconds,
                "context_hop": self.context_hop,
            }
        return self._spec

    @property
    def global_dim(self) -> int:
        return self.spec["global_dim"]

    @property
    def frame_dim(self) -> int:
        return self.spec["frame_dim"]

    def parts(self) -> dict[str, tuple[int, int]]:
        out, i = {}, 0
        for b in self.branches:
            out[b.name] = (i, i + b.dim)
            i += b.dim
        return out

    # ----------------------------------------------------------------- encoding

    def _context(self, duration: float, seg0: float, seg1: float) -> tuple[float, float]:
        """``context_seconds`` around the segment, centre on the ``context_hop`` grid, in the track."""
        length = max(self.context_seconds, seg1 - seg0)
        centre = (seg0 + seg1) / 2
        if self.context_hop > 0:  # nearby segments share one context and its cached vectors
            centre = round(centre / self.context_hop) * self.context_hop
        a = centre - length / 2
        b = a + length
        if b > duration:
            a, b = a - (b - duration), duration
        if a < 0:
            a, b = 0.0, min(duration, b - a)
        return max(a, 0.0), max(b, 0.0)

    def _analysis(self, mono: np.ndarray, sr: int, digest: str, progress: Progress | None = None,
                  beat_edit: BeatGridEdit | None = None) -> BeatAnalysis:
        raw = self._analyses.get_or_compute(digest, lambda: analyze_beats(mono, sr, progress=progress))
        if beat_edit is None or beat_edit.is_identity:
            return raw
        return self._edited.get_or_compute(cache_key(digest, beat_edit.key()), lambda: beat_edit.apply(raw))

    def beat_analysis(self, wave: Any, sr: int, beat_edit: BeatGridEdit | None = None) -> BeatAnalysis:
        """The beats and onsets of the whole track, as :meth:`encode` uses them: the tracker's (cached per
        audio), with ``beat_edit`` (a :class:`~.beat_grid.BeatGridEdit`) applied when given."""
        rate = check_rate(sr)
        mono = to_mono_1d(wave)
        return self._analysis(mono, rate, audio_digest(mono, rate), beat_edit=beat_edit)

    def _windows(self, branch: _Branch, sr: int, span: tuple[float, float]) -> tuple[int, int, int, list[int]]:
        """(first sample, end sample, window length, window starts) of a neural branch over the span."""
        a, b = int(round(span[0] * sr)), int(round(span[1] * sr))
        win = max(1, int(round(branch.window_seconds * sr)))
        return a, b, win, window_starts(max(b - a, 0), win)

    def _steps(self, branch: _Branch, sr: int, span: tuple[float, float]) -> int:
        """Progress steps of one branch: the beat analysis' stages, or a neural branch's batches."""
        if branch.name == "beats":
            return ANALYSIS_STEPS
        return -(-len(self._windows(branch, sr, span)[3]) // self.batch_size)

    def _branch_vector(self, branch: _Branch, mono: np.ndarray, sr: int,
                       span: tuple[float, float], progress: Progress | None = None) -> np.ndarray:
        """Mean over evenly spaced windows of the span, ``batch_size`` windows at a time.

        ``progress(done_batches, total_batches)`` after each batch."""
        a, b, win, starts = self._windows(branch, sr, span)
        total = np.zeros(branch.dim, np.float64)
        n_batches = -(-len(starts) // self.batch_size)
        for k, i in enumerate(range(0, len(starts), self.batch_size)):
            clips = [mono_at(mono[a + s: min(a + s + win, b)], sr, branch.sample_rate)
                     for s in starts[i: i + self.batch_size]]
            emb = branch.encoder.embed_clips(clips)
            if branch.adapter is not None:
                emb = branch.adapter.embed(emb)
            total += emb.sum(0)
            if progress is not None:
                progress(k + 1, n_batches)
        vec = total / len(starts)
        if branch.adapter is not None or branch.name in ("clap", "wav2clip"):
            vec = vec / max(np.linalg.norm(vec), 1e-12)  # a mean of unit vectors, renormalised
        return vec.astype(np.float32)

    def encode(self, wave: Any, sr: int, *, n_frames: int | None = None, fps: float | None = None,
               start: float = 0.0, progress: Progress | None = None,
               beat_edit: BeatGridEdit | None = None) -> MusicEmbedding:
        """Embed music (``[S]``, ``[C, S]`` or ``[1, C, S]`` at ``sr`` Hz, numpy or torch).

        With ``n_frames`` and ``fps``: the segment of ``n_frames`` video frames from ``start`` s
        (global vector over its context, frame features for its frames). Without: the whole track.

        ``progress(done, total)``: called as the work goes on (the beat analysis' stages and each
        batch of windows of a neural branch; total = their sum; ``(1, 1)`` for a cached result). An
        exception raised in it (a user's cancel) stops the encoding; nothing half-done is cached.

        ``beat_edit``: a :class:`~.beat_grid.BeatGridEdit` of the tracker's grid (offset, tempo, BPM, a
        beat list); the beats branch (global vector, frame features, beats, tempo) then reads the edited grid.
        """
        rate = check_rate(sr)
        if n_frames is not None:
            n_frames = int(n_frames)
            if n_frames < 0 or fps is None or float(fps) <= 0:
                raise ValueError(f"n_frames needs fps > 0 (got n_frames={n_frames}, fps={fps})")
            fps = float(fps)
        mono = to_mono_1d(wave)
        digest = audio_digest(mono, rate)
        sh = spec_hash(self.spec)
        if beat_edit is not None and beat_edit.is_identity:
            beat_edit = None
        key = cache_key(digest, sh, TRACKER_VERSION, n_frames, fps, float(start),
                        *(() if beat_edit is None else (beat_edit.key(),)))
        hit = self._cache.get(key)
        if hit is not None:
            if progress is not None:
                progress(1, 1)
            return hit
        parts = self.parts()
        if self._disk is not None:
            stored = self._disk.get(key)
            if stored is not None and stored["global_vec"].shape == (self.global_dim,):
                emb = MusicEmbedding(
                    global_vec=stored["global_vec"],
                    frame_features=stored["frame_features"] if n_frames is not None and self.frame_dim else None,
                    beats=stored["beats"], tempo=float(stored["tempo"]),
                    span=(float(stored["span"][0]), float(stored["span"][1])), parts=parts,
                    spec=self.spec)
                self._cache.put(key, emb)
                if progress is not None:
                    progress(1, 1)
                return emb

        duration = len(mono) / rate
        if n_frames is not None:
            seg = (float(start), float(start) + n_frames / fps)
            span = self._context(duration, *seg)
        else:
            seg = span = (0.0, duration)
        vecs, frames = [], None
        beats, tempo = np.zeros(0), 0.0
        steps = [self._steps(b, rate, span) for b in self.branches]
        report = _Report(progress, sum(steps))
        for branch, n_steps in zip(self.branches, steps):
            sub = report.offset() if progress is not None else None
            if branch.name == "beats":
                analysis = self._analysis(mono, rate, digest, sub, beat_edit)
                vecs.append(global_beat_vector(analysis, *span))
                sel = (analysis.beats >= seg[0]) & (analysis.beats <= seg[1])
                beats, tempo = analysis.beats[sel], analysis.tempo
                if n_frames is not None:
                    frames = frame_beat_features(analysis, n_frames, fps, start)
            else:
                bkey = (digest, branch.name, round(span[0], 4), round(span[1], 4))
                vecs.append(self._branch_vectors.get_or_compute(
                    bkey, lambda b=branch, p=sub: self._branch_vector(b, mono, rate, span, p)))
            report.advance(n_steps)  # also when the branch came from a cache
        emb = MusicEmbedding(global_vec=np.concatenate(vecs).astype(np.float32), frame_features=frames,
                             beats=beats, tempo=float(tempo), span=(float(span[0]), float(span[1])),
                             parts=parts, spec=self.spec)
        self._cache.put(key, emb)
        if self._disk is not None:
            self._disk.put(key, {
                "global_vec": emb.global_vec,
                "frame_features": frames if frames is not None else np.zeros((0, 0), np.float32),
                "beats": beats, "tempo": np.float64(tempo), "span": np.asarray(emb.span)})
        return emb

    __call__ = encode
