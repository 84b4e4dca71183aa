"""A minimal Standard MIDI File writer (format 0): notes, program changes and tempo changes.

Why our own and not a package: the corpus only needs to *write* one track of note on/off events
with a tempo map, which is ~60 lines, and the times must be exact integers of ticks so that the
annotation computed from the same tempo map (:mod:`.compose`) is the time fluidsynth plays.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterable

#: Ticks per quarter (= per notated beat in this corpus). Divisible by 3, 4, 8, 16 and 12, so
#: straight 16ths, 8th-note triplets, 16th triplets and swung 8ths all land on whole ticks.
TPQ = 960


def _varlen(value: int) -> bytes:
    """MIDI variable-length quantity (7 bits per byte, high bit = more follows)."""
    if value < 0:
        raise ValueError("negative delta time")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def midi_bytes(events: Iterable[tuple[int, int, bytes]]) -> bytes:
    """A format-0 file from ``(tick, order, message)`` events; ``order`` breaks ties at one tick
    (tempo < program < note off < note on, so a re-struck note is released before it sounds)."""
    track = bytearray()
    last = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track += _varlen(tick - last) + msg
        last = tick
    track += _varlen(0) + b"\xff\x2f\x00"  # end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TPQ)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def tempo_event(tick: int, us_per_quarter: int) -> tuple[int, int, bytes]:
    return (tick, 0, b"\xff\x51\x03" + int(us_per_quarter).to_bytes(3, "big"))


def program_event(tick: int, channel: int, program: int) -> tuple[int, int, bytes]:
    return (tick, 1, bytes([0xC0 | channel, program & 0x7F]))


def control_event(tick: int, channel: int, control: int, value: int) -> tuple[int, int, bytes]:
    return (tick, 1, bytes([0xB0 | channel, control & 0x7F, value & 0x7F]))


def note_events(tick: int, length: int, channel: int, pitch: int,
                velocity: int) -> list[tuple[int, int, bytes]]:
    vel = max(1, min(127, int(velocity)))
    return [(tick, 3, bytes([0x90 | channel, pitch & 0x7F, vel])),
            (tick + max(1, int(length)), 2, bytes([0x80 | channel, pitch & 0x7F, 0]))]


def write_midi(path: str | Path, events: Iterable[tuple[int, int, bytes]]) -> Path:
    path = Path(path)
    path.write_bytes(midi_bytes(events))
    return path
