"""SegmentPerson without models: the selection rule, mask cleaning, placement geometry, backgrounds,
and the user-mask path (which must never build a model)."""

from __future__ import annotations

import numpy as np
import pytest

from dabfusion.errors import MediaError, ModelFileError
from dabfusion.segment import (
    Detection,
    NoPersonError,
    Placement,
    SegmentPerson,
    clean_mask,
    make_background,
    mask_bbox,
    place_person,
    select_person,
    studio_background,
)
from dabfusion.segment import person as person_mod
from dabfusion.segment.composite import anchor_point


def det(label, score, box):
    return Detection(label, score, tuple(float(v) for v in box))


# ------------------------------------------------------------------------------------ selection

SCENE = [
    det("person", 0.55, (300, 50, 420, 400)),  # big, middle
    det("dog", 0.81, (10, 300, 90, 380)),
    det("person", 0.93, (500, 100, 560, 260)),  # small, right, most confident
    det("person", 0.40, (20, 80, 120, 330)),  # left
    det("chair", 0.40, (200, 250, 260, 380)),
]


def test_rules_pick_the_right_person_and_report_it():
    largest = select_person(SCENE, "largest")
    assert largest.box == (300, 50, 420, 400) and largest.rule == "largest"
    assert largest.n_persons == 3 and len(largest.detections) == 5
    assert largest.choice_index == 1  # second from the left
    confident = select_person(SCENE, "most_confident")
    assert confident.score == pytest.approx(0.93) and confident.choice_index == 2
    assert select_person(SCENE, "index", 0).box == (20, 80, 120, 330)  # leftmost
    assert select_person(SCENE, "index", -1).box == (500, 100, 560, 260)  # rightmost
    assert [p.box[0] for p in largest.persons] == [20, 300, 500]  # left to right
    assert "person 1 of 3" in largest.describe() and "largest" in largest.describe()


def test_ties_are_broken_deterministically():
    a = det("person", 0.5, (0, 0, 10, 10))
    b = det("person", 0.9, (50, 0, 60, 10))  # same area, better score
    assert select_person([a, b], "largest").person is b
    c = det("person", 0.9, (80, 0, 100, 20))  # same score as b, bigger
    assert select_person([a, b, c], "most_confident").person is c


def test_no_person_says_what_was_detected_instead():
    with pytest.raises(NoPersonError) as err:
        select_person([det("dog", 0.81, (0, 0, 5, 5)), det("chair", 0.4, (0, 0, 5, 5))], conf=0.25)
    msg = str(err.value)
    assert "no person" in msg and "dog (0.81)" in msg and "chair (0.40)" in msg
    assert msg.index("dog") < msg.index("chair")  # most confident first
    many = [det("cat", 0.3, (0, 0, 5, 5)), det("cat", 0.7, (9, 0, 15, 5))]
    with pytest.raises(NoPersonError, match=r"detected instead: cat x2 \(best 0.70\)"):
        select_person(many)
    with pytest.raises(NoPersonError, match=r"nothing was detected above confidence 0.25"):
        select_person([], conf=0.25)
    assert isinstance(err.value, MediaError)


def test_index_out_of_range_and_bad_rule():
    with pytest.raises(NoPersonError, match=r"3 person\(s\) found"):
        select_person(SCENE, "index", 3)
    with pytest.raises(MediaError, match="rule must be one of"):
        select_person(SCENE, "tallest")


# ------------------------------------------------------------------------------------ mask ops


def test_clean_mask_keeps_the_boxed_component_and_fills_only_small_holes():
    m = np.zeros((200, 200), np.float32)
    m[20:180, 60:140] = 0.9  # the person
    m[100:103, 100:103] = 0.0  # a SAM pin-hole: filled
    m[40:80, 75:125] = 0.0  # a big enclosed gap (arm on hip): stays see-through
    m[5:15, 5:15] = 1.0  # a stray island outside the box
    m[150:199, 150:199] = 1.0  # a bigger island, but outside the box
    out = clean_mask(m, box=(55, 15, 145, 185))
    assert out.dtype == np.float32 and out.shape == (200, 200)
    assert out[101, 101] == 1.0
    assert out[60, 100] == 0.0
    assert out[10, 10] == 0.0 and out[170, 170] == 0.0
    assert mask_bbox(out) == (60.0, 20.0, 140.0, 180.0)
    assert clean_mask(m, box=(55, 15, 145, 185), max_hole_frac=None)[60, 100] == 1.0  # fill all holes
    assert clean_mask(m)[170, 170] == 0.0  # no box: the largest component (the person) wins


def test_feathered_clean_mask_is_soft_but_keeps_its_edge():
    m = np.zeros((64, 64), np.float32)
    m[10:50, 20:40] = 1
    soft = clean_mask(m, feather_px=4)
    assert 0 < soft[30, 19] < 1 and soft[30, 30] > 0.95
    assert mask_bbox(soft) == (20.0, 10.0, 40.0, 50.0)  # the 0.5 contour did not move


# ------------------------------------------------------------------------------------ geometry


def person_photo(h=900, w=600, box=(210, 120, 390, 820), rgba=False):
    """A photo with a red 'person' ellipse-ish blob inside ``box`` on a blue wall."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (20, 40, 200)
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    mask = (((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1.0).astype(np.float32)
    img[mask > 0] = (220, 30, 30)
    if rgba:
        img = np.concatenate([img, (mask * 255).astype(np.uint8)[..., None]], -1)
    return img, mask


@pytest.mark.parametrize("size", [128, 64])
@pytest.mark.parametrize(
    "placement",
    [Placement(), Placement(height=0.5, x=0.3, y=0.95), Placement(height=0.6, x=0.6, y=0.45, anchor="center")],
)
def test_person_lands_with_the_asked_height_and_anchor(size, placement):
    img, mask = person_photo()
    comp = place_person(img, mask, "studio", size, placement)
    assert comp.frame.shape == (size, size, 3) and comp.frame.dtype == np.uint8
    assert comp.mask.shape == (size, size) and comp.mask.dtype == np.float32
    assert 0.0 <= comp.mask.min() and comp.mask.max() <= 1.0
    x0, y0, x1, y1 = mask_bbox(comp.mask)
    assert abs((y1 - y0) - placement.height * size) <= 1.5
    ax, ay = anchor_point((x0, y0, x1, y1), placement.anchor)
    assert abs(ax - placement.x * size) <= 1.5 and abs(ay - placement.y * size) <= 1.5
    # the person's colour is inside, the background outside
    cy, cx = int((y0 + y1) / 2), int((x0 + x1) / 2)
    assert tuple(comp.frame[cy, cx]) == pytest.approx((220, 30, 30), abs=3)
    bg = studio_background(size)
    assert np.array_equal(comp.frame[2, 2], bg[2, 2])  # far corner untouched


def test_upscaling_a_small_person_and_a_wide_pose():
    img, mask = person_photo(60, 40, (12, 6, 28, 54))  # a tiny person: scaled up
    comp = place_person(img, mask, "white", 128)
    x0, y0, x1, y1 = comp.box
    assert abs((y1 - y0) - 0.7 * 128) <= 1.5 and comp.scale > 1
    img, mask = person_photo(200, 800, (50, 50, 750, 150))  # lying down: width limits the scale
    comp = place_person(img, mask, "white", 128)
    x0, y0, x1, y1 = comp.box
    assert x1 - x0 <= 0.96 * 128 + 1.5 and (y1 - y0) < 0.7 * 128


def test_rgba_input_and_masks_of_other_sizes():
    img, mask = person_photo(rgba=True)
    from_alpha = place_person(img, None, (0, 255, 0), 128)  # alpha channel is the mask
    half = mask[::2, ::2]  # the same mask at half resolution
    from_half = place_person(img[..., :3], half, (0, 255, 0), 128)
    assert np.abs(from_alpha.mask - from_half.mask).max() < 0.35
    assert abs(from_alpha.box[3] - from_half.box[3]) <= 1.5
    floats = place_person(img.astype(np.float32) / 255.0, mask, (0, 255, 0), 128, as_float=True)
    assert floats.frame.dtype == np.float32 and 0 <= floats.frame.min() and floats.frame.max() <= 1
    with pytest.raises(MediaError, match="aspect ratios differ"):
        place_person(img, mask[:, :300], "white", 128)
    with pytest.raises(MediaError, match="empty"):
        place_person(img, np.zeros_like(mask), "white", 128)
    with pytest.raises(MediaError, match="no person mask"):
        place_person(img[..., :3], None, "white", 128)


def test_no_colour_bleeds_from_the_photo_background():
    img, mask = person_photo()
    comp = place_person(img, mask, (255, 255, 255), 128, feather_px=2.0)
    edge = (comp.mask > 0.05) & (comp.mask < 0.95)
    assert edge.any()
    # photo wall is blue; on an edge pixel blue may only come from white, never exceed red+green mix
    f = comp.frame[edge].astype(int)
    assert np.all(f[:, 2] <= np.maximum(f[:, 0], f[:, 1]) + 2)


def test_placement_measured_from_a_training_frame():
    frame_mask = np.zeros((108, 192), np.float32)  # 16:9 like AIST++; centre crop is 108 x 108
    frame_mask[20:95, 90:110] = 1
    p = Placement.from_mask(frame_mask)
    assert p.height == pytest.approx(75 / 108) and p.y == pytest.approx(95 / 108)
    assert p.x == pytest.approx((100 - (192 - 108) / 2) / 108)
    with pytest.raises(MediaError, match="anchor"):
        Placement(anchor="head")


# ------------------------------------------------------------------------------------ backgrounds


def test_backgrounds():
    studio = make_background(None, 64)
    assert studio.shape == (64, 64, 3) and studio.dtype == np.uint8
    assert studio[5, 32].mean() > studio[60, 32].mean()  # wall lighter than the floor
    assert studio[32, 32].mean() > studio[32, 0].mean()  # faint vignette
    assert (make_background("#ff8000", 16) == (255, 128, 0)).all()
    assert (make_background((0.0, 1.0, 0.0), 16) == (0, 255, 0)).all()
    assert (make_background("black", 16) == 0).all()
    photo = np.zeros((90, 160, 4), np.uint8)
    photo[..., 1] = 200
    photo[..., 3] = 255
    assert make_background(photo, 32).shape == (32, 32, 3)
    with pytest.raises(MediaError, match="neither a file nor a colour"):
        make_background("no-such-file.png", 32)


def test_data_set_frame_with_its_dancer_removed_and_replaced(monkeypatch):
    frame = np.full((120, 160, 3), 180, np.uint8)
    old = np.zeros((120, 160), np.float32)
    old[30:110, 70:90] = 1
    frame[old > 0] = (0, 0, 0)  # the old dancer, black
    img, mask = person_photo()
    monkeypatch.setattr(person_mod, "load_yolo", lambda *a, **k: pytest.fail("a model was built"))
    res = SegmentPerson()(img, mask, background=frame, background_remove_mask=old, size=120, feather_px=0)
    x0, _, x1, y1 = res.frame_box  # the crop to 120 x 120 cuts 20 columns off each side
    assert y1 == pytest.approx(110, abs=1.5) and (x0 + x1) / 2 == pytest.approx(80 - 20, abs=1.5)
    assert res.frame_box[3] - res.frame_box[1] == pytest.approx(80, abs=1.5)
    ghost = (res.frame.sum(-1) < 60) & (res.mask < 0.01)  # black pixels left outside the new person
    assert not ghost.any()


# ------------------------------------------------------------------------------------ user mask path


def test_user_mask_skips_every_model(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a model was built although the user gave a mask")

    monkeypatch.setattr(person_mod, "load_yolo", boom)
    monkeypatch.setattr(person_mod, "load_sam", boom)
    monkeypatch.setattr(person_mod, "detect_objects", boom)
    img, mask = person_photo()
    seg = SegmentPerson("missing/yolo.pt", "missing/sam.pth")
    res = seg(img, mask[::3, ::3], size=64)
    assert res.mask_source == "user" and res.choice is None
    assert res.frame.shape == (64, 64, 3) and res.mask.shape == (64, 64)
    assert res.person_mask.shape == img.shape[:2]
    rgba, _ = person_photo(rgba=True)
    res = seg(rgba, size=64)
    assert res.mask_source == "alpha"
    assert "person mask from the alpha" in res.describe()


def test_without_models_or_mask_the_error_says_where_to_put_them():
    img, _ = person_photo()
    with pytest.raises(ModelFileError, match="ultralytics_bbox"):
        SegmentPerson()(img)
    with pytest.raises(MediaError, match="segmenter"):
        SegmentPerson(segmenter="magic")
