"""`a2v prepare` end to end with MTCNN + dlib landmarks on generated clips (one face, two faces, no
face, no audio, too short, corrupt) and on GRID clips when ../shared/data/grid is present."""

from __future__ import annotations

import numpy as np
import pytest
from data_testutil import FPS, SR, make_clip

from a2v.data import (
    PrepareConfig,
    decode_crop_video,
    iter_items,
    prepare_dataset,
    read_dropped,
    read_manifest,
)
from a2v.data.items import TalkingFaceExtractor

pytest.importorskip("facenet_pytorch")
pytest.importorskip("dlib")

# generated heads are ~50 px and GRID faces ~100-130 px: the talk paper's 200 px suits ~1080p footage
CFG = PrepareConfig(min_face_px=40, min_duration_s=0.5, detector="mtcnn", device="cpu")


class Counting:
    """Wraps an extractor and counts its calls."""

    def __init__(self, ex: TalkingFaceExtractor) -> None:
        self.ex, self.calls = ex, 0

    def __call__(self, *args):
        self.calls += 1
        return self.ex(*args)


@pytest.fixture(scope="module")
def models():
    ex = TalkingFaceExtractor(CFG)
    return ex.detector, ex.landmarker  # built once for the module


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, models):
    src = tmp_path_factory.mktemp("clips")
    make_clip(src / "face.mp4", n_frames=25)
    make_clip(src / "two_faces.mp4", n_frames=15, faces=2)
    make_clip(src / "no_face.mp4", n_frames=15, faces=0)
    make_clip(src / "silent.mp4", n_frames=15, audio=False)
    make_clip(src / "short.mp4", n_frames=5)
    (src / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    out = tmp_path_factory.mktemp("prepared") / "ds"
    ex = Counting(TalkingFaceExtractor(CFG, *models))
    report = prepare_dataset([src], out, CFG, extract=ex, progress=False)
    return src, out, report, ex, models


def test_report_and_dropped_reasons(prepared):
    _, out, report, ex, _ = prepared
    assert ex.calls == 6 and report["kept"] == 1 and report["dropped"] == 5
    reasons = {r["source"].rsplit("/", 1)[1]: r["reason"] for r in read_dropped(out)}
    assert reasons == {
        "two_faces.mp4": "multiple_faces",
        "no_face.mp4": "no_face",
        "silent.mp4": "no_audio",
        "short.mp4": "too_short",
        "corrupt.mp4": "corrupt",
    }
    assert all("\n" not in r["detail"] and r["detail"] for r in read_dropped(out))


def test_members_round_trip(prepared):
    _, out, _, _, _ = prepared
    (row,) = read_manifest(out)
    assert (row["n_frames"], row["fps"], row["duration_s"], row["audio_sr"]) == (25, 25.0, 1.0, SR)
    (item,) = list(iter_items(out))
    f = 25
    assert item["audio.npy"].shape == (f * SR // FPS,) and np.abs(item["audio.npy"]).max() > 0.05
    assert item["mfcc.npy"].shape == (101, 13)
    assert item["boxes.npy"].shape == (f, 4) and item["detected.npy"].sum() == 4
    lm, box = item["landmarks.npy"], item["boxes.npy"]
    assert lm.shape == (f, 68, 2) and not np.isnan(lm).any()
    inside = (lm[..., 0] > box[:, None, 0] - 8) & (lm[..., 0] < box[:, None, 2] + 8)
    assert inside.mean() > 0.95
    # the head moves 1 px per frame to the right: so do the boxes and the landmarks
    assert 18 < box[-1, 0] - box[0, 0] < 30 and 18 < lm[-1, :, 0].mean() - lm[0, :, 0].mean() < 30
    crops = list(decode_crop_video(item["crop.mp4"]))
    assert len(crops) == f and crops[0].shape == (256, 256, 3)
    cl = item["crop_landmarks.npy"]
    assert cl.shape == (f, 68, 2) and (cl > 0).all() and (cl < 256).all()
    assert item["meta.json"]["n_frames"] == f and item["meta.json"]["width"] == 224


def test_resume_runs_no_extraction(prepared):
    src, out, _, _, models = prepared
    ex = Counting(TalkingFaceExtractor(CFG, *models))
    report = prepare_dataset([src], out, CFG, extract=ex, progress=False)
    assert ex.calls == 0 and report["run"]["skipped"] == 6 and report["kept"] == 1 and report["dropped"] == 5


@pytest.mark.grid
@pytest.mark.slow
def test_grid_clips(grid_clips, models, tmp_path):
    cfg = PrepareConfig(min_face_px=64, detector="mtcnn", device="cpu")
    report = prepare_dataset(
        grid_clips[:2], tmp_path / "grid", cfg, extract=TalkingFaceExtractor(cfg, *models), progress=False
    )
    assert report["kept"] == 2, read_dropped(tmp_path / "grid")
    for item in iter_items(tmp_path / "grid"):
        meta = item["meta.json"]
        assert (meta["n_frames"], meta["fps"], meta["width"], meta["height"]) == (75, 25.0, 360, 288)
        assert item["audio.npy"].shape == (3 * SR,) and abs(meta["audio_pad_samples"]) < 0.05 * SR
        assert item["landmarks.npy"].shape == (75, 68, 2) and not np.isnan(item["landmarks.npy"]).any()
        assert item["detected.npy"].sum() == 9 and item["boxes.npy"].shape == (75, 4)  # 0,10,..,70 + 74
        assert item["mfcc.npy"].shape == (301, 13)
        assert len(list(decode_crop_video(item["crop.mp4"]))) == 75
