"""Bad input files give one InputError line that names the file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from video_testutil import smooth_frame

from a2v.errors import InputError
from a2v.video import load_image, probe, read_audio, read_frames, read_video, write_png, write_video


def _one_line_naming(err: pytest.ExceptionInfo, path) -> None:
    msg = str(err.value)
    assert "\n" not in msg and path.name in msg, msg


def _bad_files(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    wav = tmp_path / "speech.wav"
    sf.write(wav, np.zeros(1600, np.float32), 16000)
    png = tmp_path / "still.png"
    write_png(png, smooth_frame(0))
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    return {
        "missing": (tmp_path / "missing.mp4", "not found"),
        "empty": (empty, "empty"),
        "garbage": (garbage, None),
        "text": (text, None),
        "audio only": (wav, "no video stream"),
        "directory": (folder, "directory"),
        "image": (png, None),
    }


@pytest.mark.parametrize(
    "read",
    [probe, lambda p: list(read_frames(p)), lambda p: list(read_frames(p, fps=25)), read_video],
    ids=["probe", "read_frames", "read_frames_cfr", "read_video"],
)
def test_bad_videos_raise_input_error(tmp_path, read):
    for name, (path, words) in _bad_files(tmp_path).items():
        if name == "image":  # FFmpeg reads a still image as a one-frame video: valid
            assert len(list(read_frames(path))) == 1
            continue
        with pytest.raises(InputError, match=words) as err:
            read(path)
        _one_line_naming(err, path)


def test_truncated_video(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, (smooth_frame(i) for i in range(10)), 25, preset="ultrafast")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[:300])  # header only: moov is at the front (faststart)
    with pytest.raises(InputError) as err:
        list(read_frames(cut))
    _one_line_naming(err, cut)


def test_no_audio_track(tmp_path):
    path = tmp_path / "silent.mp4"
    write_video(path, [smooth_frame(0)], 25)
    assert len(list(read_frames(path))) == 1  # valid for video reading
    with pytest.raises(InputError, match="has no audio track") as err:
        read_audio(path)
    _one_line_naming(err, path)


def test_bad_images(tmp_path):
    for name, (path, words) in _bad_files(tmp_path).items():
        if name == "image":
            continue
        with pytest.raises(InputError, match=None if name == "audio only" else words) as err:
            load_image(path)
        _one_line_naming(err, path)


def test_truncated_data_is_reported(tmp_path, caplog):
    path = tmp_path / "clip.mp4"
    write_video(path, (smooth_frame(i) for i in range(25)), 25, preset="ultrafast")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with caplog.at_level("WARNING", logger="a2v.video.reader"):
        n = len(list(read_frames(cut)))
    assert 0 < n < 25
    assert f"decoded {n} of the 25 frames" in caplog.text
