"""Frames from flows: every frame is ``decode(warp(z0, flow_i, occlusion_i))`` of the one reference latent.

:func:`render_video` returns them all; :class:`FrameStream` hands them over one by one while the next
chunk is drawn (a long clip in bounded memory, decoding overlapped with encoding)."""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

import numpy as np
import torch


@torch.no_grad()
def render_frames(flow_ae: Any, z0: torch.Tensor, flow: torch.Tensor, occlusion: torch.Tensor) -> torch.Tensor:
    """``decode(warp(z0, flow_i, occ_i))`` for every frame: ``[L, 3, H, W]`` float in 0..1.

    ``z0`` [1, C, h, w] (the original reference latent, broadcast over frames), ``flow``
    [L, 2, h, w], ``occlusion`` [L, 1, h, w]; ``flow_ae`` is a :class:`dabfusion.flow_ae.FlowAE`.
    """
    if z0.shape[0] != 1:
        raise ValueError("render_frames takes one reference latent [1, C, h, w]; loop over a batch")
    return flow_ae.decode(flow_ae.warp(z0, flow, occlusion))


@torch.no_grad()
def render_video(flow_ae: Any, z0: torch.Tensor, flow: torch.Tensor, occlusion: torch.Tensor, *, chunk: int = 16,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """:func:`render_frames` ``chunk`` frames at a time (bounded memory): uint8 ``[L, H, W, 3]``.

    ``progress(done_chunks, total_chunks)`` is called after each chunk when given.
    """
    n = int(flow.shape[0])
    out = np.empty((n, flow_ae.image_size, flow_ae.image_size, 3), np.uint8)
    total = -(-n // chunk)
    for k, i in enumerate(range(0, n, chunk)):
        out[i:i + chunk] = frames_to_uint8(render_frames(flow_ae, z0, flow[i:i + chunk], occlusion[i:i + chunk]))
        if progress is not None:
            progress(k + 1, total)
    return out


def frames_to_uint8(frames: torch.Tensor) -> np.ndarray:
    """``[N, 3, H, W]`` floats in 0..1 -> uint8 ``[N, H, W, 3]`` (the media convention)."""
    return (frames.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)


_END = object()


class FrameStream:
    """The frames of :func:`render_video` one at a time, drawn ``chunk`` frames at a time in a
    background thread while the consumer (the MP4 encoder) works on the previous chunk.

    Memory is bounded whatever the clip's length: at most ``prefetch`` chunks wait. ``len()`` is
    the number of frames. The drawing thread runs under the autocast the iteration was started in
    (autocast is per thread). ``progress(done_chunks, total_chunks)`` is called in the consumer's
    thread as each chunk is handed over, so an exception raised there (a user's cancel) stops the
    drawing; so does leaving the iteration early.
    """

    def __init__(self, flow_ae: Any, z0: torch.Tensor, flow: torch.Tensor, occlusion: torch.Tensor, *,
                 chunk: int = 16, prefetch: int = 2, progress: Callable[[int, int], None] | None = None) -> None:
        self.flow_ae, self.z0, self.flow, self.occlusion = flow_ae, z0, flow, occlusion
        self.chunk, self.prefetch, self.progress = max(1, int(chunk)), max(1, int(prefetch)), progress

    def __len__(self) -> int:
        return int(self.flow.shape[0])

    @staticmethod
    def _hand_over(out: "queue.Queue", item: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _produce(self, out: "queue.Queue", stop: threading.Event, autocast: tuple[str, bool, Any]) -> None:
        device_type, enabled, dtype = autocast
        try:
            with torch.autocast(device_type, dtype=dtype, enabled=enabled):
                for i in range(0, len(self), self.chunk):
                    if stop.is_set():
                        return
                    part = frames_to_uint8(render_frames(self.flow_ae, self.z0, self.flow[i:i + self.chunk],
                                                         self.occlusion[i:i + self.chunk]))
                    self._hand_over(out, part, stop)
            self._hand_over(out, _END, stop)
        except BaseException as err:  # handed to the consumer, raised there
            self._hand_over(out, err, stop)

    def __iter__(self):
        out: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        worker = threading.Thread(target=self._produce, args=(out, stop, _caller_autocast(self.z0.device.type)),
                                  name="dabfusion-render", daemon=True)
        worker.start()
        total, done = -(-len(self) // self.chunk), 0
        try:
            while True:
                item = out.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                done += 1
                if self.progress is not None:
                    self.progress(done, total)
                yield from item
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue, then let it finish
                try:
                    out.get_nowait()
                except queue.Empty:
                    worker.join(timeout=0.05)


def _caller_autocast(device_type: str) -> tuple[str, bool, Any]:
    """(device type, enabled, dtype) of the calling thread's autocast, to re-enter in another thread."""
    device_type = device_type if device_type in ("cuda", "cpu") else "cpu"
    try:
        return device_type, bool(torch.is_autocast_enabled(device_type)), torch.get_autocast_dtype(device_type)
    except (TypeError, AttributeError):  # torch < 2.4: one call per device type
        if device_type == "cuda":
            return device_type, bool(torch.is_autocast_enabled()), torch.get_autocast_gpu_dtype()
        return device_type, bool(torch.is_autocast_cpu_enabled()), torch.get_autocast_cpu_dtype()
