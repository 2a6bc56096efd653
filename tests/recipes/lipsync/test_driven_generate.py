"""Talking photo end to end (astronaut + eSpeak NG speech) and every bad input of issue 6."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.errors import InputError

pytest.importorskip("facenet_pytorch")
pytest.importorskip("dlib")
skdata = pytest.importorskip("skimage.data")

from a2v.recipes.lipsync.driven.generate import MIN_FACE_PX, generate_driven  # noqa: E402
from a2v.video import probe, read_video, write_png  # noqa: E402

SR = 16000


@pytest.fixture(scope="module")
def detector():
    from a2v.face import MTCNNDetector

    return MTCNNDetector(device="cpu", min_size_px=20)


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    from a2v.audio import synthesize_speech
    from a2v.errors import MissingDependencyError

    try:
        return synthesize_speech("Hello, I am a photo.", sr=SR), SR
    except MissingDependencyError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> tuple[np.ndarray, object]:
    img = skdata.astronaut()  # (512,512,3), one face
    return img, write_png(tmp_path_factory.mktemp("photo") / "astronaut.png", img)


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory, photo, speech, detector):
    out = tmp_path_factory.mktemp("run") / "talk.mp4"
    report = generate_driven(photo[1], speech, out, detector=detector, progress=False, seed=1)
    return report, out


def test_photo_run_writes_mp4_with_audio_and_report(photo_run, speech):
    report, out = photo_run
    info = probe(out)
    n = round(len(speech[0]) / SR * 25)
    assert report["frames"] == n and info.num_frames == n
    assert info.fps == pytest.approx(25.0) and info.has_audio
    assert info.width == 512 and info.height == 512
    assert report["kind"] == "photo" and report["faces_found"] == 1
    assert report["mode"] in {"phoneme+envelope", "envelope"}
    assert report["driven_sync_corr"] > 0.5  # driven mouth opening follows the loudness
    x0, y0, x1, y1 = report["face_box"]
    assert 150 < x0 < x1 < 300 and 40 < y0 < y1 < 200  # the astronaut's face


def test_background_stays_and_mouth_moves(photo_run, photo):
    _, out = photo_run
    frames, _ = read_video(out)  # (F,512,512,3)
    img = photo[0].astype(np.float32)
    bg = np.abs(frames[:, 300:, :150].astype(np.float32) - img[300:, :150]).mean()
    assert bg < 4.0  # only H.264 noise away from the face
    mouth = frames[:, 130:170, 195:255].astype(np.float32).std(axis=0).mean()  # motion over time
    forehead = frames[:, 70:100, 195:255].astype(np.float32).std(axis=0).mean()
    # forehead ~3.0 (blink of the upper lids); mouth 8.5 (10.0 with the former flat dark interior: teeth and
    # tongue are closer to the photo's own smile with teeth, so the change over time is a little smaller)
    assert mouth > 2.5 * forehead and mouth > 2.0


def test_several_faces_animate_the_largest(tmp_path, photo, speech, detector):
    import cv2

    big = photo[0]
    small = cv2.resize(big, (320, 320), interpolation=cv2.INTER_AREA)
    canvas = np.full((512, 900, 3), 200, np.uint8)
    canvas[:, :512] = big
    canvas[96:416, 560:880] = small
    face = write_png(tmp_path / "two.png", canvas)
    wav = speech[0][: SR // 2]
    report = generate_driven(
        face, (wav, SR), tmp_path / "two.mp4", detector=detector, progress=False, mode="envelope"
    )
    assert report["faces_found"] == 2 and "largest" in report["note"]
    assert report["face_box"][2] < 512  # the big face on the left


def test_photo_without_a_face(tmp_path, speech, detector):
    y, x = np.mgrid[0:256, 0:256]
    grad = np.stack([x, y, (x + y) // 2], -1).astype(np.uint8)
    face = write_png(tmp_path / "wall.png", grad)
    with pytest.raises(InputError, match="no face found"):
        generate_driven(face, speech, tmp_path / "o.mp4", detector=detector, progress=False)
    assert not (tmp_path / "o.mp4").exists()


def test_tiny_image_and_tiny_face(tmp_path, photo, speech, detector):
    import cv2

    tiny = write_png(tmp_path / "tiny.png", cv2.resize(photo[0], (40, 40)))
    with pytest.raises(InputError, match="at least 64 px"):
        generate_driven(tiny, speech, tmp_path / "o.mp4", detector=detector, progress=False)
    small = write_png(tmp_path / "small.png", cv2.resize(photo[0], (150, 150), interpolation=cv2.INTER_AREA))
    with pytest.raises(InputError, match=f"need >= {MIN_FACE_PX} px|no face found"):
        generate_driven(small, speech, tmp_path / "o.mp4", detector=detector, progress=False)
    assert not (tmp_path / "o.mp4").exists()


def test_silent_and_empty_audio(tmp_path, photo):
    import soundfile as sf

    with pytest.raises(InputError, match="silent"):
        generate_driven(photo[1], (np.zeros(SR, np.float32), SR), tmp_path / "o.mp4", progress=False)
    with pytest.raises(InputError, match="0 samples"):
        generate_driven(photo[1], (np.zeros(0, np.float32), SR), tmp_path / "o.mp4", progress=False)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), SR)
    with pytest.raises(InputError, match="0-length|no audio|empty"):
        generate_driven(photo[1], empty, tmp_path / "o.mp4", progress=False)
    with pytest.raises(InputError, match="not found"):
        generate_driven(tmp_path / "missing.png", (np.ones(SR, np.float32) * 0.1, SR), tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists()
