"""The AIST++ reader on a tiny AIST++-layout folder written here: cache, windows, audio, pairs."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from dabfusion.data import frame_cache
from dabfusion.data.dataset import AISTDataset, PairDataset
from dabfusion.data.frame_cache import FrameCache, npy_shape
from dabfusion.errors import DataError
from dabfusion.media.video import read_video_frames, write_mp4

SRC_FPS, FPS, SIZE, N_SRC = 20, 10, 32, 60  # 3 s sources at 20 fps, read at 10 fps
SR_FILE, SR = 16000, 8000
CLICK_S = 1.73  # a click in every track, inside the window that starts at 1.5 s
VIDEOS = {  # mBR0 is a paper test track; mBR1 and mPO0 are train tracks
    "gBR_sBM_c01_d01_mBR0_ch01": "mBR0",
    "gBR_sBM_c01_d02_mBR1_ch01": "mBR1",
    "gPO_sFM_c02_d03_mPO0_ch02": "mPO0",
}


def _frames(seed: int) -> np.ndarray:
    """Non-square frames whose content changes every frame (a moving bar, a ramp, a tint)."""
    f = np.zeros((N_SRC, 48, 64, 3), np.uint8)
    for i in range(N_SRC):
        f[i, :, :, 0] = (i * 4 + seed * 40) % 256
        f[i, 8:40, i:i + 8, 1] = 255
        f[i, :, :, 2] = np.linspace(0, 255, 64, dtype=np.uint8)[None]
    return f


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("aist")
    (root / "videos").mkdir()
    (root / "music").mkdir()
    for seed, stem in enumerate(VIDEOS):
        write_mp4(root / "videos" / f"{stem}.mp4", _frames(seed), SRC_FPS, preset="ultrafast")
    for track in sorted(set(VIDEOS.values())):
        wave = np.zeros(3 * SR_FILE, np.float32)
        wave[int(CLICK_S * SR_FILE): int(CLICK_S * SR_FILE) + 4] = 0.9
        sf.write(root / "music" / f"{track}.wav", wave, SR_FILE)
    (root / "videos" / "notes.txt").write_text("not a video: ignored")
    return root


def _dataset(root, cache, **kw) -> AISTDataset:
    args = dict(n_frames=5, fps=FPS, size=SIZE, audio_sample_rate=SR, cache_dir=cache,
                workers=1, progress=False)
    args.update(kw)
    return AISTDataset(root, **args)


def _spy(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = frame_cache.decode_video

    def spy(path, *a, **k):
        calls.append(os.path.basename(path))
        return real(path, *a, **k)

    monkeypatch.setattr(frame_cache, "decode_video", spy)
    return calls


def test_windows_ids_and_frames_equal_decoded_frames(data_root, tmp_path):
    ds = _dataset(data_root, tmp_path)  # train = mBR1 + mPO0 under the paper split
    assert sorted(v.record.name.music for v in ds.videos) == ["mBR1", "mPO0"]
    assert len(ds) == 2 * (30 // 5)  # 30 cached frames per video, 6 windows each
    item = ds[8]
    assert item["video"] == "gPO_sFM_c02_d03_mPO0_ch02" and item["music"] == "mPO0"
    assert (item["genre_id"], item["camera_id"], item["dancer_id"]) == (1, 1, 2)
    assert (item["window"], item["start_frame"], item["t0"]) == (2, 10, 1.0)
    assert item["frames"].shape == (5, 3, SIZE, SIZE) and item["frames"].dtype == torch.float32
    assert item["audio"].shape == (int(0.5 * SR),) and item["audio"].dtype == torch.float32

    path = data_root / "videos" / "gPO_sFM_c02_d03_mPO0_ch02.mp4"
    whole, fps = read_video_frames(path, fps=FPS, size=SIZE)
    assert fps == FPS and len(whole) == 30
    got = (item["frames"].permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(got, whole[10:15])
    part, _ = read_video_frames(path, fps=FPS, size=SIZE, start=1.0, duration=0.5)
    np.testing.assert_array_equal(got, part)

    u8 = _dataset(data_root, tmp_path, frames_dtype="uint8", stride=2, hop=3)
    it = u8[1]
    assert it["frames"].dtype == torch.uint8 and it["start_frame"] == 3
    np.testing.assert_array_equal(it["frames"].permute(0, 2, 3, 1).numpy(),
                                  read_video_frames(data_root / "videos" /
                                                    "gBR_sBM_c01_d02_mBR1_ch01.mp4",
                                                    fps=FPS, size=SIZE)[0][3:12:2])
    assert it["audio"].shape == (SR,)  # 5 frames x stride 2 at 10 fps = 1 s


def test_audio_segment_is_aligned_with_window_time(data_root, tmp_path):
    ds = _dataset(data_root, tmp_path, split="test")  # the mBR0 video, windows every 0.5 s
    loud = [i for i in range(len(ds)) if ds[i]["audio"].abs().max() > 0.3]
    assert loud == [3]  # only the window [1.5 s, 2.0 s) holds the click at 1.73 s
    item = ds[3]
    assert item["t0"] == 1.5
    peak = int(item["audio"].abs().argmax())
    assert abs(peak - round((CLICK_S - 1.5) * SR)) <= 2


def test_cache_is_built_once_reused_and_rebuilt_on_change(data_root, tmp_path, monkeypatch):
    calls = _spy(monkeypatch)
    _dataset(data_root, tmp_path, split="all")
    assert sorted(calls) == sorted(f"{s}.mp4" for s in VIDEOS)
    files = sorted((tmp_path / f"frames_v1_{FPS}fps_{SIZE}px_crop").glob("*.npy"))
    assert len(files) == 3 and all(npy_shape(f) == (30, SIZE, SIZE, 3) for f in files)

    calls.clear()
    again = _dataset(data_root, tmp_path, split="all", n_frames=7)  # windows differ, cache same
    assert calls == [] and len(again) == 3 * 4

    _dataset(data_root, tmp_path, split="all", size=24)  # new frame size: new cache folder
    assert len(calls) == 3 and (tmp_path / f"frames_v1_{FPS}fps_24px_crop").is_dir()

    calls.clear()
    video = data_root / "videos" / "gBR_sBM_c01_d02_mBR1_ch01.mp4"
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # "edited": only it is redone
    _dataset(data_root, tmp_path, split="all")
    assert calls == [video.name]
    assert len(list((tmp_path / f"frames_v1_{FPS}fps_{SIZE}px_crop").glob("*.npy"))) == 3


def test_interrupted_build_keeps_finished_videos_and_leaves_no_partial_file(data_root, tmp_path,
                                                                          monkeypatch):
    real = frame_cache.decode_video
    decoded: list[str] = []

    def dies_on_second(path, *a, **k):
        if len(decoded) == 1:
            raise KeyboardInterrupt  # like Ctrl-C in the middle of the build
        decoded.append(os.path.basename(path))
        return real(path, *a, **k)

    monkeypatch.setattr(frame_cache, "decode_video", dies_on_second)
    cache = FrameCache(tmp_path, fps=FPS, size=SIZE)
    sources = sorted((data_root / "videos").glob("*.mp4"))
    with pytest.raises(KeyboardInterrupt):
        cache.build(sources, workers=1, progress=False)
    assert decoded == [sources[0].name]
    assert cache.lookup(sources[0]) is not None and cache.lookup(sources[1]) is None
    assert not list(cache.directory.glob("*.partial"))

    monkeypatch.setattr(frame_cache, "decode_video", real)
    calls = _spy(monkeypatch)
    entries = cache.build(sources, workers=2, progress=False)  # thread pool finishes the rest
    assert sorted(calls) == sorted(s.name for s in sources[1:])
    assert [e.n_frames for e in entries] == [30, 30, 30]


def test_dataloader_batches_and_random_windows(data_root, tmp_path):
    ds = _dataset(data_root, tmp_path)
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=True, num_workers=0)))
    assert batch["frames"].shape == (4, 5, 3, SIZE, SIZE) and batch["frames"].dtype == torch.float32
    assert 0.0 <= float(batch["frames"].min()) and float(batch["frames"].max()) <= 1.0
    assert batch["audio"].shape == (4, SR // 2) and batch["audio"].dtype == torch.float32
    assert batch["genre_id"].dtype == torch.int64 and batch["genre_id"].shape == (4,)
    assert isinstance(batch["music"], list) and len(batch["video"]) == 4

    rnd = _dataset(data_root, tmp_path, sampling="random", windows_per_video=3, seed=7,
                   music_mode="none")
    assert len(rnd) == 6 and "audio" not in rnd[0]
    starts = [rnd.locate(i)[1] for i in range(6)]
    assert all(0 <= s <= 30 - 5 for s in starts)
    assert starts == [rnd.locate(i)[1] for i in range(6)]  # same draw on every call
    rnd.set_epoch(1)
    assert starts != [rnd.locate(i)[1] for i in range(6)]


def test_pair_dataset(data_root, tmp_path):
    pairs = PairDataset(data_root, split="all", fps=FPS, size=SIZE, pairs_per_video=4, max_gap=3,
                        seed=1, cache_dir=tmp_path, workers=1, progress=False)
    assert len(pairs) == 12
    item = pairs[5]
    assert item["reference"].shape == (3, SIZE, SIZE) == item["driving"].shape
    assert abs(item["ref_frame"] - item["drv_frame"]) <= 3
    frames = pairs.video_frames(5 // 4)
    np.testing.assert_array_equal(
        (item["driving"].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy(),
        frames[item["drv_frame"]])
    assert pairs.locate(5) == pairs.locate(5)
    assert next(iter(DataLoader(pairs, batch_size=3)))["reference"].shape == (3, 3, SIZE, SIZE)


def test_filters_and_clear_errors(data_root, tmp_path):
    only_po = _dataset(data_root, tmp_path, cameras=["c02"], genres="Pop", split="all")
    assert [v.record.name.stem for v in only_po.videos] == ["gPO_sFM_c02_d03_mPO0_ch02"]
    with pytest.raises(DataError, match="No videos .* match the filters"):
        _dataset(data_root, tmp_path, genres=["KR"])
    with pytest.raises(DataError, match="test part .* empty"):
        _dataset(data_root, tmp_path, genres=["PO"], split="train")
    with pytest.raises(DataError, match="fewer than the 61 frames"):
        _dataset(data_root, tmp_path, n_frames=61)

    broken = tmp_path / "broken"
    (broken / "videos").mkdir(parents=True)
    with pytest.raises(DataError, match="no music/ folder"):
        _dataset(broken, tmp_path)
    (broken / "music").mkdir()
    video = data_root / "videos" / "gBR_sBM_c01_d02_mBR1_ch01.mp4"
    (broken / "videos" / video.name).symlink_to(video)
    with pytest.raises(DataError, match=r"gBR_sBM_c01_d02_mBR1_ch01\.mp4 needs the music file "
                                        r".*mBR1\.wav"):
        _dataset(broken, tmp_path)
    sf.write(broken / "music" / "mBR1.wav", np.zeros(SR_FILE, np.float32), SR_FILE)
    (broken / "videos" / "my_dance.mp4").symlink_to(video)
    with pytest.raises(DataError, match=r"my_dance\.mp4.*|not AIST\+\+-like") as err:
        _dataset(broken, tmp_path, split_spec="all-train")
    assert "my_dance.mp4" in str(err.value) and "gBR_sBM_c01_d04_mBR0_ch01" in str(err.value)


def test_all_train_and_short_music_is_zero_padded(data_root, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = _dataset(data_root, tmp_path, split_spec="all-train", n_frames=10, hop=25)
    assert len(ds) == 3 * 1 and ds.tracks == ["mBR0", "mBR1", "mPO0"]
    seg = ds.music.segment("mBR0", 2.9, SR)  # 0.1 s of track left, then silence
    assert seg.shape == (SR,) and not seg[int(0.1 * SR) + 2:].any()


@pytest.mark.slow  # ~3 s of it is the SynthDance generator itself
def test_reads_synthdance_with_its_manifest_split(tmp_path):
    from dabfusion.data.layout import load_manifest
    from dabfusion.media.audio import load_audio
    from dabfusion.synth import generate

    root = generate(tmp_path / "synth", "tiny", 0, workers=1, progress=False)
    manifest = load_manifest(root)
    ds = {part: AISTDataset(root, split=part, split_spec="manifest", n_frames=8, fps=15, size=32,
                            audio_sample_rate=SR, workers=1, progress=False)
          for part in ("train", "test")}
    for part, d in ds.items():
        assert d.tracks == sorted(manifest["split"][part])
    by_stem = {v["stem"]: v for v in manifest["videos"]}
    for v in ds["train"].videos + ds["test"].videos:
        meta, name = by_stem[v.record.name.stem], v.record.name
        assert (f"c{name.camera:02d}", f"d{name.dancer:02d}", name.music) == \
            (meta["camera"], meta["dancer"], meta["music"])
        assert v.n_frames == -(-meta["num_frames"] // 2)  # 30 fps sources cached at 15 fps
    item = ds["test"][1]
    assert item["t0"] == 8 / 15
    wave, _ = load_audio(root / "music" / f"{item['music']}.wav", sample_rate=SR)
    start = round(item["t0"] * SR)
    np.testing.assert_allclose(item["audio"].numpy(), wave[0, start:start + len(item["audio"])],
                               atol=1e-6)
    assert (root / ".dabfusion_cache").is_dir()  # the default cache lives beside the data
