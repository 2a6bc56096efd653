"""Keyframe detection + interpolation, drop reasons (dataset) and speaker choice (inference)."""

from __future__ import annotations

import numpy as np
import pytest
from face_testutil import ScriptedDetector, indexed_frames

from a2v.errors import InputError
from a2v.face.detect import box_size_px
from a2v.face.track import (
    FaceTrack,
    TrackConfig,
    interpolate_boxes,
    keyframe_indices,
    track_speaker,
    track_strict,
)

CFG = TrackConfig(detect_every_frames=10, min_face_px=20, batch_frames=3)


def moving_box(i: int) -> np.ndarray:
    """A 30x40 px box moving 1 px right and 0.5 px down per frame."""
    return np.array([5 + i, 3 + 0.5 * i, 35 + i, 43 + 0.5 * i])


def test_keyframes_include_last_frame():
    np.testing.assert_array_equal(keyframe_indices(25, 10), [0, 10, 20, 24])
    np.testing.assert_array_equal(keyframe_indices(21, 10), [0, 10, 20])
    np.testing.assert_array_equal(keyframe_indices(1, 10), [0])


def test_interpolation_is_linear_between_keyframes():
    key = np.array([0, 10, 14])
    boxes = np.array([[0, 0, 10, 10], [10, 20, 30, 40], [10, 20, 30, 40]], float)
    out = interpolate_boxes(key, boxes, 15)
    assert out.shape == (15, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out[5], [5, 10, 20, 25])
    np.testing.assert_allclose(out[12], boxes[1])


def test_strict_linear_motion_is_recovered_exactly_from_keyframes():
    det = ScriptedDetector(moving_box)
    frames = indexed_frames(25)
    res = track_strict(iter(frames), det, CFG)  # a generator: frames are streamed
    assert res.dropped is None
    tr = res.track
    assert det.calls == [0, 10, 20, 24]  # detector ran on keyframes only
    assert tr.boxes.shape == (25, 4) and tr.n_frames == 25 and tr.frame_hw == (64, 80)
    np.testing.assert_allclose(tr.boxes, np.stack([moving_box(i) for i in range(25)]), atol=1e-5)
    np.testing.assert_array_equal(np.flatnonzero(tr.detected), [0, 10, 20, 24])
    assert np.isnan(tr.scores[1]) and not np.isnan(tr.scores[10])
    back = FaceTrack.from_dict(tr.to_dict())
    np.testing.assert_allclose(back.boxes, tr.boxes, atol=1e-3)
    np.testing.assert_array_equal(back.detected, tr.detected)


@pytest.mark.parametrize(
    ("boxes_at_20", "code"),
    [
        ([], "no_face"),
        ([[0, 0, 10, 10]], "face_too_small"),
        ([moving_box(20), moving_box(20) + [40, 0, 40, 0]], "multiple_faces"),
        ([moving_box(20) + [200, 0, 200, 0]], "face_jump"),
    ],
)
def test_strict_drops_with_reason(boxes_at_20, code):
    det = ScriptedDetector(lambda i: boxes_at_20 if i == 20 else [moving_box(i)])
    res = track_strict(indexed_frames(35), det, CFG)
    assert res.track is None
    assert res.dropped.code == code and res.dropped.frame == 20
    assert res.dropped.detail
    assert max(det.calls) < 30  # stopped after the batch holding the offending keyframe


def test_strict_ignores_small_background_faces_and_empty_clip():
    det = ScriptedDetector(lambda i: [moving_box(i), [60, 0, 70, 10]])
    assert track_strict(indexed_frames(12), det, CFG).dropped is None
    res = track_strict([], det, CFG)
    assert res.dropped.code == "no_frames"


def test_speaker_largest_central_and_user_box():
    small = np.array([2, 2, 24, 24])  # 22 px, near the corner
    big = np.array([30, 10, 70, 50])  # 40 px
    centre = np.array([29, 21, 51, 43])  # 22 px, at the frame centre (64x80)
    frames = indexed_frames(11)
    det = ScriptedDetector(lambda i: [small, big])
    tr = track_speaker(frames, det, CFG)
    np.testing.assert_allclose(tr.boxes[5], big)
    det = ScriptedDetector(lambda i: [small, centre])
    cfg = TrackConfig(detect_every_frames=10, min_face_px=20, select="central")
    np.testing.assert_allclose(track_speaker(frames, det, cfg).boxes[5], centre)
    det = ScriptedDetector(lambda i: [small, big])
    tr = track_speaker(frames, det, CFG, user_box=[0, 0, 20, 20])
    np.testing.assert_allclose(tr.boxes, np.tile(small, (11, 1)))


def test_speaker_never_aborts_and_passes_frames_through():
    # faces on keyframes 0 and 10, none on 20, several at 30 (the one overlapping the last choice wins)
    def boxes(i):
        if i in (0, 10):
            return [moving_box(i)]
        if i == 20:
            return []
        return [moving_box(12), [0, 0, 16, 64]]  # the tall box is larger but elsewhere

    tr = track_speaker(indexed_frames(31), ScriptedDetector(boxes), CFG)
    assert tr.n_frames == 31
    np.testing.assert_allclose(tr.boxes[:11], np.stack([moving_box(i) for i in range(11)]), atol=1e-5)
    np.testing.assert_allclose(tr.boxes[11:16], np.tile(moving_box(10), (5, 1)))  # held, nearer to 10
    assert np.isnan(tr.boxes[16:26]).all()  # nearest keyframe (20) had no face: pass through
    assert tr.n_missing == 10
    np.testing.assert_allclose(tr.boxes[30], moving_box(12))  # overlaps the previous choice: wins
    np.testing.assert_array_equal(np.flatnonzero(tr.detected), [0, 10, 30])


def test_speaker_without_faces_and_empty_input():
    tr = track_speaker(indexed_frames(5), ScriptedDetector(lambda i: []), CFG)
    assert tr.n_missing == 5 and not tr.detected.any()
    with pytest.raises(InputError, match="no video frames"):
        track_speaker([], ScriptedDetector(lambda i: []), CFG)


def test_mtcnn_interpolated_boxes_close_to_per_frame(mtcnn, astronaut):
    """A camera pan over the astronaut: keyframe + interpolation vs detection on every frame."""
    n = 21
    frames = np.stack([astronaut[40 + 2 * i : 296 + 2 * i, 100 + 3 * i : 356 + 3 * i] for i in range(n)])
    cfg = TrackConfig(detect_every_frames=10, min_face_px=60)  # (F,256,256,3) face ~90 px
    res = track_strict(frames, mtcnn, cfg)
    assert res.dropped is None
    full = np.stack([d.boxes[0] for d in mtcnn.detect(frames)])  # (F,4)
    err = np.abs(res.track.boxes - full).mean(axis=1) / box_size_px(full)  # (F,)
    assert err.max() < 0.03
    # and the track follows the pan: -3 px/frame in x, -2 px/frame in y
    slope = np.polyfit(np.arange(n), res.track.boxes[:, 0], 1)[0]
    assert slope == pytest.approx(-3, abs=0.3)
