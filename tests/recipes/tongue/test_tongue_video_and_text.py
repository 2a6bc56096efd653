"""Tongue recipe inputs beyond UltraSuite: UTI videos with audio, transcripts from a .txt or from ASR."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from a2v.recipes.tongue.config import ConditionConfig, DataConfig
from a2v.recipes.tongue.data import Utterance, load_prepared, load_utterance, prepare_folder
from a2v.recipes.tongue.model import ConditionEncoder
from a2v.recipes.tongue.ultrasound import resize_frames

SPOKEN = "one two three four five"  # words PocketSphinx recognises well in eSpeak NG speech
FPS = 60.0
H, W = 72, 96  # not square: the prepared folder must resize to (S,S)
SR = 16000


def _uti_frame(i: int) -> np.ndarray:
    """Grey background with a bright tongue-like curve whose phase moves 0.2 rad per frame: uint8 (H,W)."""
    xs = np.arange(W)
    f = np.full((H, W), 60, np.uint8)
    y = np.round(H / 2 + 12 * np.sin(2 * np.pi * xs / W + 0.2 * i)).astype(int)  # (W,)
    for d in (-1, 0, 1):
        f[np.clip(y + d, 0, H - 1), xs] = 230
    return f


@pytest.fixture(scope="module")
def uti_video(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A 60 fps UTI-like mp4 with eSpeak speech: (path, frames uint8 (F,H,W), wav float32 (S,) 16 kHz)."""
    from a2v.audio import num_video_frames, synthesize_speech
    from a2v.errors import MissingDependencyError
    from a2v.video import write_video

    try:
        wav = synthesize_speech(SPOKEN, sr=SR, voice="en-us", rate_wpm=150)  # (S,)
    except MissingDependencyError as e:
        pytest.skip(str(e))
    n = num_video_frames(len(wav), SR, FPS)
    frames = np.stack([_uti_frame(i) for i in range(n)])  # (F,H,W)
    path = tmp_path_factory.mktemp("uti") / "utt.mp4"
    rgb = (np.repeat(f[..., None], 3, axis=2) for f in frames)  # (H,W)->(H,W,3)
    assert write_video(path, rgb, FPS, audio=wav, audio_sr=SR) == n
    return path, frames, wav


def _nearest(decoded: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Index of the closest reference frame for each decoded frame: (F',H,W),(F,H,W) -> (F',)."""
    d = np.abs(decoded[:, None].astype(np.float32) - ref[None].astype(np.float32)).mean(axis=(2, 3))  # (F',F)
    return d.argmin(axis=1)


def _check_audio(got: np.ndarray, wav: np.ndarray, n_frames: int, fps: float) -> None:
    """16 kHz audio spanning the frames (within one frame), not shifted against the original."""
    assert got.dtype == np.float32 and got.ndim == 1
    assert abs(len(got) - n_frames / fps * SR) <= SR / fps
    m = min(len(got), len(wav))
    xc = np.correlate(got[:m], wav[:m], mode="full")  # (2m-1,)
    assert abs(int(xc.argmax()) - (m - 1)) <= 16  # lag within 1 ms
    assert np.corrcoef(got[:m], wav[:m])[0, 1] > 0.95


def test_video_utterance_frames_fps_and_audio(uti_video):
    path, ref, wav = uti_video
    u = load_utterance(path, DataConfig(fps=FPS))
    assert u.name == "utt" and u.fps == FPS and u.text is None
    assert u.frames.dtype == np.uint8 and u.frames.shape == ref.shape
    assert np.abs(u.frames.astype(np.float32) - ref).mean() < 3.0  # grey = RGB mean, H.264 loss only
    assert np.array_equal(_nearest(u.frames, ref), np.arange(len(ref)))  # no dropped/duplicated/shifted frame
    _check_audio(u.wav, wav, len(u.frames), u.fps)

    own = load_utterance(path, DataConfig(fps=0.0))  # 0 = the file's own rate
    assert own.fps == pytest.approx(FPS) and len(own.frames) == len(ref)

    half = load_utterance(path, DataConfig(fps=30.0))  # resampled by timestamps
    assert half.fps == 30.0 and abs(len(half.frames) - len(ref) / 2) <= 1  # round(duration * fps)
    idx = _nearest(half.frames, ref)
    assert np.all(np.abs(idx - 2 * np.arange(len(idx))) <= 1), idx
    _check_audio(half.wav, wav, len(half.frames), half.fps)


def test_prepare_video_folder_with_transcript(uti_video, tmp_path):
    path, ref, wav = uti_video
    src = tmp_path / "videos"
    src.mkdir()
    shutil.copy(path, src / "a.mp4")
    (src / "a.txt").write_text("\n  one two three four five \nsecond line ignored\n", encoding="utf-8")
    shutil.copy(path, src / "b.mp4")  # no transcript
    (src / "broken.mp4").write_bytes(b"not a video")
    size = 32
    rep = prepare_folder([src], tmp_path / "prep", DataConfig(fps=FPS), size, progress=False)
    assert rep["inputs"] == 3 and rep["written"] == 2 and rep["dropped"] == 1
    dropped = [json.loads(s) for s in (tmp_path / "prep" / "dropped.jsonl").read_text().splitlines()]
    assert [Path(d["path"]).name for d in dropped] == ["broken.mp4"] and "broken.mp4" in dropped[0]["reason"]
    manifest = {m["name"]: m for m in map(json.loads, (tmp_path / "prep" / "manifest.jsonl").read_text().splitlines())}
    assert manifest["a"]["has_text"] and not manifest["b"]["has_text"]
    assert manifest["a"]["n_frames"] == len(ref) and manifest["a"]["fps"] == FPS

    utts = load_prepared(tmp_path / "prep")
    assert [u.name for u in utts] == ["a", "b"]
    a, b = utts
    assert a.text == "one two three four five" and b.text is None
    assert a.frames.shape == (len(ref), size, size) and a.frames.dtype == np.uint8 and a.fps == FPS
    assert np.abs(a.frames.astype(np.float32) - resize_frames(ref, size)).mean() < 3.0
    _check_audio(a.wav, wav, len(a.frames), a.fps)
    assert load_prepared(tmp_path / "prep", names=["b"])[0].name == "b"


class _RecordingText:
    """Text encoder stand-in recording the transcripts it is given; encode -> ((1,L,4), (1,L))."""

    dim = 4

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        self.seen.extend(texts)
        L = len(texts[0].split()) + 2
        return torch.ones(1, L, self.dim), torch.ones(1, L, dtype=torch.bool)  # (1,L,D), (1,L)


def test_transcript_file_else_pocketsphinx(uti_video):
    pytest.importorskip("pocketsphinx")
    path, _, _ = uti_video
    u = load_utterance(path, DataConfig(fps=FPS))  # no .txt beside it: text None
    text = _RecordingText()
    enc = ConditionEncoder(ConditionConfig(audio_features="logmel", asr_backend="auto", asr_model=""), text=text)

    audio, emb = enc(Utterance(u.name, u.frames, u.wav, u.fps, "hello there"))
    assert text.seen == ["hello there"]  # the transcript is used, no ASR
    assert audio.shape == (len(u.frames), 80) and emb.shape == (4, 4)

    audio, emb = enc(u)  # ASR fallback on the video's own (AAC-decoded) audio
    heard = text.seen[-1]
    assert heard.strip(), "PocketSphinx returned nothing"
    assert len(set(heard.split()) & set(SPOKEN.split())) >= 2, heard
    assert audio.shape == (len(u.frames), 80) and emb.shape == (len(heard.split()) + 2, 4)
