"""Detectors on a real photo (scikit-image astronaut) and composed 0/2-face images."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from a2v.errors import InputError, MissingDependencyError
from a2v.face.detect import Detections, DlibDetector, MTCNNDetector, box_size_px, face_recognition_model_path
from a2v.face.track import box_iou

# the astronaut's face, located by hand: x 175..270, y 60..175 px
FACE = np.array([175, 60, 270, 175], np.float32)


def test_mtcnn_finds_the_one_face(mtcnn, astronaut):
    (d,) = mtcnn.detect(astronaut)
    assert d.boxes.shape == (1, 4) and d.boxes.dtype == np.float32 and d.scores.shape == (1,)
    assert box_iou(FACE, d.boxes)[0] > 0.7
    assert d.scores[0] > 0.99


def test_mtcnn_zero_and_two_faces(mtcnn, astronaut):
    blank = np.full_like(astronaut, 128)
    two = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)  # (512,1024,3): face + mirrored face
    d0, d2 = mtcnn.detect([blank, two])  # different sizes: run one by one
    assert len(d0) == 0 and d0.boxes.shape == (0, 4)
    assert len(d2) == 2
    xs = np.sort((d2.boxes[:, 0] + d2.boxes[:, 2]) / 2)
    np.testing.assert_allclose(xs, [222, 1024 - 222], atol=15)
    assert np.all(np.diff(d2.scores) <= 0)  # sorted by score


def test_mtcnn_batch_equals_single(mtcnn, astronaut):
    shifted = np.roll(astronaut, (20, 30), axis=(0, 1))
    batch = mtcnn.detect(np.stack([astronaut, shifted]))  # (2,H,W,3)
    single = [mtcnn.detect(astronaut)[0], mtcnn.detect(shifted)[0]]
    for a, b in zip(batch, single, strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.5)
    np.testing.assert_allclose(batch[1].boxes[0] - batch[0].boxes[0], [30, 20, 30, 20], atol=3)


@pytest.mark.parametrize("kind", ["hog", "cnn"])
def test_dlib_detectors_agree_with_mtcnn(kind, astronaut):
    pytest.importorskip("dlib")
    (d,) = DlibDetector(kind).detect(astronaut)
    assert len(d) == 1
    assert box_iou(FACE, d.boxes)[0] > 0.5


def test_bad_frames_raise_input_error(mtcnn):
    with pytest.raises(InputError, match="uint8"):
        mtcnn.detect(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(InputError, match="RGB"):
        mtcnn.detect(np.zeros((1, 32, 32), np.uint8))


def test_missing_facenet_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)
    with pytest.raises(MissingDependencyError, match="--no-deps facenet-pytorch"):
        MTCNNDetector()


def test_missing_dlib_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(MissingDependencyError, match=r"a2v\[face\]"):
        DlibDetector()


def test_model_paths_and_helpers():
    pytest.importorskip("dlib")
    p = face_recognition_model_path("shape_predictor_68_face_landmarks.dat")
    assert p.is_file() and p.stat().st_size > 1_000_000
    d = Detections.from_arrays(np.array([[0, 0, 10, 20], [0, 0, 50, 5]]), np.array([0.5, 0.9]))
    np.testing.assert_array_equal(d.scores, np.float32([0.9, 0.5]))
    np.testing.assert_array_equal(box_size_px(d.boxes), [50, 20])
    assert len(Detections.from_arrays(None, None)) == 0


def test_missing_mediapipe_and_unknown_detector(monkeypatch):
    from a2v.face.detect import MediaPipeDetector, make_detector

    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(MissingDependencyError, match="mediapipe"):
        MediaPipeDetector()
    with pytest.raises(InputError, match="unknown face detector"):
        make_detector("nope")
