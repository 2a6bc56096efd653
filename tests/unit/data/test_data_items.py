"""TalkingFaceExtractor with model-free detector/landmarker on generated clips: shapes, keyframes,
interpolation, crops, audio alignment, detection scaling and every drop reason."""

from __future__ import annotations

import numpy as np
import pytest
from data_testutil import FPS, HW, SR, BoxDetector, grid_landmarker, make_clip, make_rotated_vfr_clip

from a2v.data import DropItem, PrepareConfig, decode_crop_video
from a2v.data.items import ScaledDetector, TalkingFaceExtractor

CFG = PrepareConfig(min_face_px=32, min_duration_s=0.5, detect_every_frames=10, crop_size_px=64)
BOX = [60.0, 40.0, 120.0, 110.0]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "face.mp4", n_frames=25)


def _extract(clip, tmp_path, cfg=CFG, boxes=(BOX,)):
    det = BoxDetector(list(boxes))
    ex = TalkingFaceExtractor(cfg, detector=det, landmarker=grid_landmarker)
    return ex(clip, "face", tmp_path), det


def test_members_shapes_and_crops(clip, tmp_path):
    s, det = _extract(clip, tmp_path)
    f = 25
    assert (
        s["meta.json"]["n_frames"] == f
        and s["meta.json"]["fps"] == FPS
        and s["meta.json"]["duration_s"] == 1.0
    )
    assert s["audio.npy"].shape == (f * SR // FPS,) and s["audio.npy"].dtype == np.float32
    assert s["mfcc.npy"].shape == (1 + f * SR // FPS // 160, 13)  # 100 Hz, T = 1 + S // hop
    assert s["boxes.npy"].shape == (f, 4) and np.allclose(s["boxes.npy"], BOX)
    assert np.flatnonzero(s["detected.npy"]).tolist() == [0, 10, 20, 24]  # every 10 + the last frame
    assert det.sizes == [HW] * 4  # small frames are not rescaled
    assert s["landmarks.npy"].shape == (f, 68, 2) and s["crop_matrices.npy"].shape == (f, 2, 3)
    lm, m = s["landmarks.npy"], s["crop_matrices.npy"]
    mapped = np.einsum("fij,fkj->fki", m[:, :, :2], lm) + m[:, None, :, 2]  # (F,68,2) frame -> crop px
    assert np.allclose(mapped, s["crop_landmarks.npy"], atol=1e-3)
    assert (s["crop_landmarks.npy"] >= 0).all() and (s["crop_landmarks.npy"] <= 64).all()
    crops = list(decode_crop_video(s["crop.mp4"].read_bytes()))
    assert len(crops) == f and crops[0].shape == (64, 64, 3)
    assert s["meta.json"]["n_samples"] == f * SR // FPS


def test_boxes_interpolated_between_keyframes(clip, tmp_path):
    class Moving(BoxDetector):  # box x moves with the frame content: 1 px per frame
        def detect(self, frames):
            out = super().detect(frames)
            for f, d in zip(frames, out, strict=True):
                col = np.flatnonzero(np.abs(f[80, :, :].astype(int) - f[80, :1, :].astype(int)).sum(1) > 60)
                d.boxes[:, [0, 2]] = [col[0], col[0] + 50]
            return out

    ex = TalkingFaceExtractor(CFG, detector=Moving([BOX]), landmarker=grid_landmarker)
    b = ex(clip, "face", tmp_path)["boxes.npy"]
    k = [0, 10, 20, 24]
    assert np.allclose(b[:, 0], np.interp(np.arange(25), k, b[k, 0]))  # linear between keyframes
    assert 20 <= b[24, 0] - b[0, 0] <= 28  # the head moved ~24 px


def test_audio_is_aligned_to_the_video(clip, tmp_path, monkeypatch):
    import a2v.audio

    real = a2v.audio.load_audio
    for delta, pad in ((-800, 800), (1200, -1200)):  # audio 50 ms short / 75 ms long
        monkeypatch.setattr(
            a2v.audio, "load_audio", lambda p, sr, d=delta: np.ones(real(p, sr=sr).shape[0] + d)
        )
        s, _ = _extract(clip, tmp_path / str(delta))
        assert s["audio.npy"].shape == (16000,) and s["meta.json"]["audio_pad_samples"] == pad
        assert s["audio.npy"][-1] == (0.0 if pad > 0 else 1.0)
    monkeypatch.setattr(a2v.audio, "load_audio", lambda p, sr: np.ones(3 * sr, np.float32))
    with pytest.raises(DropItem, match="audio 3.00 s vs video 1.00 s") as e:
        _extract(clip, tmp_path / "long")
    assert e.value.code == "av_mismatch"


def test_detection_runs_on_shrunk_frames(tmp_path):
    ex = TalkingFaceExtractor(PrepareConfig(min_face_px=200), detector=BoxDetector([]))
    assert ex.min_search_px == 40
    assert ex.detection_scale((1080, 1920)) == pytest.approx(0.4)  # 200 px faces -> 80 px = 2x the floor
    assert ex.detection_scale((4320, 7680)) == pytest.approx(1280 / 7680)  # 8K: longer side 1280
    assert ex.detection_scale((288, 360)) == pytest.approx(0.4)
    assert TalkingFaceExtractor(PrepareConfig(min_face_px=64)).detection_scale((288, 360)) == 1.0
    det = BoxDetector([[10, 10, 50, 60]])
    (d,) = ScaledDetector(det, (2.5, 2.0)).detect([np.zeros((40, 80, 3), np.uint8)])
    assert np.allclose(d.boxes, [[25, 20, 125, 120]])  # back in source px
    # a 400x500 clip with min_face_px 80: the detector sees 160x200 frames, boxes come back x2.5
    clip = make_clip(tmp_path / "c.mp4", n_frames=13)
    cfg = PrepareConfig(min_face_px=80, min_duration_s=0.5)
    det = BoxDetector([[20, 16, 60, 56]])
    ex = TalkingFaceExtractor(cfg, detector=det, landmarker=grid_landmarker)
    ex.detection_scale = lambda hw: 0.5  # (176,224) -> (88,112)
    s = ex(clip, "c", tmp_path)
    assert set(det.sizes) == {(88, 112)} and np.allclose(s["boxes.npy"], [40, 32, 120, 112])


@pytest.mark.parametrize(
    ("boxes", "code", "detail"),
    [
        ([], "no_face", "frame 0: no face detected"),
        ([[0, 0, 20, 20]], "face_too_small", "largest face 20 px < min_face_px 32"),
        ([BOX, [150, 40, 210, 110]], "multiple_faces", "2 faces"),
    ],
)
def test_keyframe_drop_reasons(clip, tmp_path, boxes, code, detail):
    with pytest.raises(DropItem, match=detail) as e:
        _extract(clip, tmp_path, boxes=boxes)
    assert e.value.code == code


def test_face_jump_is_dropped(clip, tmp_path):
    class Jump(BoxDetector):
        def detect(self, frames):
            out = super().detect(frames)
            out[1].boxes[:] = [150, 40, 210, 110]  # second keyframe: another place
            return out

    ex = TalkingFaceExtractor(CFG, detector=Jump([BOX]), landmarker=grid_landmarker)
    with pytest.raises(DropItem, match="frame 10: box IoU 0.00") as e:
        ex(clip, "face", tmp_path)
    assert e.value.code == "face_jump"


def test_file_level_drop_reasons(tmp_path):
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x01 not a video" * 50)
    cases = {
        "corrupt": bad,
        "no_audio": make_clip(tmp_path / "silent.mp4", n_frames=25, audio=False),
        "too_short": make_clip(tmp_path / "short.mp4", n_frames=5),
    }
    for code, path in cases.items():
        with pytest.raises(DropItem) as e:
            _extract(path, tmp_path)
        assert e.value.code == code, (path.name, e.value)


def test_rotated_variable_frame_rate_clip(tmp_path):
    clip = make_rotated_vfr_clip(tmp_path / "phone.mp4")
    det = BoxDetector([[20, 30, 60, 80]])
    ex = TalkingFaceExtractor(CFG, detector=det, landmarker=grid_landmarker)
    ex.detection_scale = lambda hw: 0.5  # upright (224,176) -> (112,88)
    s = ex(clip, "phone", tmp_path)
    meta = s["meta.json"]
    assert (meta["width"], meta["height"], meta["rotation_deg"]) == (176, 224, 90)
    assert set(det.sizes) == {(112, 88)}  # the detector sees upright, shrunk frames
    f = meta["n_frames"]
    assert 23 <= f <= 26 and meta["fps"] == 25.0  # constant 25 fps out of the jittered timestamps
    assert s["boxes.npy"].shape == (f, 4) and np.allclose(s["boxes.npy"], [40, 60, 120, 160])
    assert s["audio.npy"].shape == (f * SR // FPS,) and s["landmarks.npy"].shape == (f, 68, 2)
    assert len(list(decode_crop_video(s["crop.mp4"].read_bytes()))) == f
