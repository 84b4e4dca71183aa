"""Image loading (alpha, grey, 16-bit, EXIF), square resizing and the ComfyUI conversions."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
import torch
from PIL import Image

from dabfusion.errors import MediaError
from dabfusion.media.comfy import (
    audio_from_comfy,
    audio_to_comfy,
    image_from_comfy,
    image_to_comfy,
    mask_from_comfy,
    mask_to_comfy,
)
from dabfusion.media.image import load_image, load_image_with_alpha, resize_square


# ---------------------------------------------------------------------------------- loading


def test_rgba_composited_over_white_and_alpha_kept(tmp_path):
    arr = np.zeros((4, 6, 4), np.uint8)
    arr[..., 0] = 200  # red
    arr[:, :3, 3] = 255  # left half opaque, right half fully transparent
    arr[0, 0, 3] = 128  # one half-transparent pixel
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")

    img = load_image(tmp_path / "a.png")
    assert img.shape == (4, 6, 3) and img.dtype == np.uint8
    assert img[1, 1].tolist() == [200, 0, 0]
    assert img[1, 4].tolist() == [255, 255, 255]
    assert img[0, 0].tolist() == [227, 127, 127]  # round(200*a + 255*(1-a)), a = 128/255
    assert load_image(tmp_path / "a.png", background=(0, 0, 0))[1, 4].tolist() == [0, 0, 0]

    rgb, alpha = load_image_with_alpha(tmp_path / "a.png")
    assert rgb[1, 4].tolist() == [200, 0, 0]  # colours not composited
    assert alpha.shape == (4, 6) and alpha.dtype == np.float32
    assert alpha[1, 1] == 1.0 and alpha[1, 4] == 0.0
    assert load_image_with_alpha(_save(tmp_path, np.zeros((2, 2, 3), np.uint8), "rgb.png"))[1] is None


def _save(tmp_path, arr, name, mode=None):
    Image.fromarray(arr, mode).save(tmp_path / name) if mode else Image.fromarray(arr).save(tmp_path / name)
    return tmp_path / name


def test_grey_grey_alpha_palette_and_16bit(tmp_path):
    grey = load_image(_save(tmp_path, np.full((3, 5), 77, np.uint8), "g.png"))
    assert grey.shape == (3, 5, 3) and (grey == 77).all()

    la = np.stack([np.full((2, 2), 10, np.uint8), np.array([[255, 0], [255, 0]], np.uint8)], -1)
    img = load_image(_save(tmp_path, la, "la.png", "LA"))
    assert img[0, 0].tolist() == [10, 10, 10] and img[0, 1].tolist() == [255, 255, 255]

    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 255] + [0, 255, 0] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 1
    pal.save(tmp_path / "p.png", transparency=1)
    img = load_image(tmp_path / "p.png")
    assert img[0, 0].tolist() == [0, 0, 255] and img[0, 1].tolist() == [255, 255, 255]

    deep = np.array([[0, 65535], [32768, 1000]], np.uint16)
    Image.fromarray(deep).save(tmp_path / "d16.png")
    img = load_image(tmp_path / "d16.png")
    assert img[:, :, 0].tolist() == [[0, 255], [128, 4]]  # scaled, not clipped at 255


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = (255, 0, 0)
    arr[:, 10:] = (0, 0, 255)
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    img.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "rot.jpg")
    assert out.shape == (20, 10, 3)
    assert out[2, 5, 0] > 200 and out[2, 5, 2] < 60  # the red left half is now on top
    assert out[17, 5, 2] > 200


def test_bad_image_files(tmp_path):
    with pytest.raises(MediaError, match="nope.png"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(MediaError, match="empty.png"):
        load_image(tmp_path / "empty.png")
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all" * 10)
    with pytest.raises(MediaError, match="junk.jpg"):
        load_image(tmp_path / "junk.jpg")
    good = _save(tmp_path, np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8), "t.png")
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[:200])
    with pytest.raises(MediaError, match="trunc.png"):
        load_image(tmp_path / "trunc.png")


# ----------------------------------------------------------------------------------- resize


def test_resize_square_crop_and_pad():
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, :20] = (255, 0, 0)  # red left quarter
    img[10:30, 30:50] = 255  # white centre
    crop = resize_square(img, 20, "crop")
    assert crop.shape == (20, 20, 3)
    assert crop[10, 10].tolist() == [255, 255, 255] and crop[:, 0, 0].max() == 0
    pad = resize_square(img, 20, "pad")
    assert pad.shape == (20, 20, 3)
    assert pad[:5].max() == 0 and pad[-5:].max() == 0  # black bars above and below
    assert pad[10, 0].tolist() == [255, 0, 0]
    batch = resize_square(np.stack([img, img]), 16)
    assert batch.shape == (2, 16, 16, 3)
    up = resize_square(np.full((3, 5, 1), 9, np.uint8), 12)
    assert up.shape == (12, 12, 1) and (up == 9).all()
    with pytest.raises(MediaError, match="fit"):
        resize_square(img, 16, "squash")


# ------------------------------------------------------------------------------------ comfy


def test_image_round_trip():
    frames = np.random.default_rng(1).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    t = image_to_comfy(frames)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.shape == (3, 5, 7, 3)
    assert 0.0 <= t.min() and t.max() <= 1.0
    assert np.array_equal(image_from_comfy(t), frames)
    single = image_to_comfy(frames[0])
    assert single.shape == (1, 5, 7, 3)
    assert image_from_comfy(single[0]).shape == (1, 5, 7, 3)  # [H, W, C] accepted


def test_image_rgba_and_grey_channels():
    rgba = torch.zeros(1, 2, 2, 4)
    rgba[..., 1] = 1.0  # green
    rgba[0, 0, 0, 3] = 1.0  # one opaque pixel, the rest transparent
    out = image_from_comfy(rgba)
    assert out.shape == (1, 2, 2, 3)
    assert out[0, 0, 0].tolist() == [0, 255, 0] and out[0, 1, 1].tolist() == [255, 255, 255]
    grey = image_from_comfy(torch.full((2, 3, 3, 1), 0.5))
    assert grey.shape == (2, 3, 3, 3) and (grey == 128).all()
    t = image_to_comfy(np.full((4, 4, 4), [0, 0, 255, 0], np.uint8))  # fully transparent blue
    assert t.shape == (1, 4, 4, 3) and torch.allclose(t, torch.ones_like(t))


def test_image_errors():
    bad = torch.zeros(1, 2, 2, 3)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(MediaError, match="NaN"):
        image_from_comfy(bad)
    with pytest.raises(MediaError, match="channels"):
        image_from_comfy(torch.zeros(1, 2, 2, 5))
    with pytest.raises(MediaError, match="shape"):
        image_from_comfy(torch.zeros(2, 2))
    with pytest.raises(MediaError, match="empty"):
        image_to_comfy(np.zeros((0, 4, 4, 3), np.uint8))


def test_mask_round_trip():
    m = mask_to_comfy(np.array([[0, 255], [128, 0]], np.uint8))
    assert m.shape == (1, 2, 2) and m.dtype == torch.float32
    assert m[0, 0, 1] == 1.0 and abs(float(m[0, 1, 0]) - 128 / 255) < 1e-6
    back = mask_from_comfy(m)
    assert isinstance(back, np.ndarray) and back.shape == (1, 2, 2)
    assert np.allclose(back, m.numpy())
    assert mask_from_comfy(torch.ones(3, 4, 5, 1)).shape == (3, 4, 5)
    assert mask_to_comfy(np.ones((2, 3, 3), bool)).sum() == 18
    with pytest.raises(MediaError, match="mask"):
        mask_from_comfy(torch.zeros(2, 2, 2, 2))


class LazyAudio(Mapping):
    """Like other packs' lazy AUDIO: computes the waveform only when asked."""

    def __init__(self, wave, sr):
        self._wave, self._sr, self.loaded = wave, sr, False

    def __getitem__(self, key):
        if key == "waveform":
            self.loaded = True
            return self._wave
        if key == "sample_rate":
            return self._sr
        raise KeyError(key)

    def __iter__(self):
        return iter(("waveform", "sample_rate"))

    def __len__(self):
        return 2


def test_audio_round_trip_and_lazy_mapping():
    wave = np.random.default_rng(2).standard_normal((2, 100)).astype(np.float32)
    audio = audio_to_comfy(wave, 22050)
    assert audio["sample_rate"] == 22050 and isinstance(audio["sample_rate"], int)
    assert isinstance(audio["waveform"], torch.Tensor) and audio["waveform"].shape == (1, 2, 100)
    back, sr = audio_from_comfy(audio)
    assert sr == 22050 and back.dtype == np.float32 and np.array_equal(back, wave)
    assert audio_to_comfy(wave[0], 8000)["waveform"].shape == (1, 1, 100)

    lazy = LazyAudio(torch.from_numpy(np.stack([wave, 2 * wave])), 16000)
    second, sr = audio_from_comfy(lazy, batch_index=1)
    assert lazy.loaded and sr == 16000 and np.allclose(second, 2 * wave)


@pytest.mark.parametrize(
    "audio, match",
    [
        ({"waveform": torch.zeros(1, 1, 10)}, "missing sample_rate"),
        ({"sample_rate": 8000}, "missing waveform"),
        ({"waveform": torch.zeros(1, 1, 1, 10), "sample_rate": 8000}, "batch, channels, samples"),
        ({"waveform": torch.zeros(1, 2, 0), "sample_rate": 8000}, "empty"),
        ({"waveform": torch.zeros(1, 1, 10), "sample_rate": 0}, "positive"),
        ({"waveform": torch.full((1, 1, 10), float("nan")), "sample_rate": 8000}, "NaN"),
        ([1, 2], "mapping"),
    ],
)
def test_audio_from_comfy_errors(audio, match):
    with pytest.raises(MediaError, match=match):
        audio_from_comfy(audio)


def test_audio_batch_index_out_of_range():
    with pytest.raises(MediaError, match="batch_index 3"):
        audio_from_comfy({"waveform": torch.zeros(2, 1, 10), "sample_rate": 8000}, batch_index=3)
