from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from a2v.audio import synthesize_speech
from a2v.encoders import Transcript, align_words, phoneme_segments, transcribe
from a2v.encoders.sphinx import normalize_text
from a2v.errors import ConfigError, InputError, MissingWeightsError

pytest.importorskip("pocketsphinx")

SPOKEN = "one two three four five six seven"
# CMUdict pronunciations, stress removed (what the aligner must produce)
PHONES = "W AH N T UW TH R IY F AO R F AY V S IH K S S EH V AH N".split()
ARPABET = set(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH SIL".split()
)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> tuple[np.ndarray, int]:
    """eSpeak NG saying SPOKEN (US voice, 160 wpm): float32 (S,) at its native 22.05 kHz."""
    import soundfile as sf

    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not installed")
    out = tmp_path_factory.mktemp("tts") / "speech.wav"
    subprocess.run([exe, "-v", "en-us", "-s", "160", "-w", str(out), SPOKEN], check=True, capture_output=True)
    wav, sr = sf.read(out, dtype="float32")
    return wav, int(sr)


def _check_timeline(segs: list[tuple[str, float, float]], duration: float) -> None:
    assert segs
    for i, (_, s, e) in enumerate(segs):
        assert 0.0 <= s <= e <= duration + 1e-6
        if i:
            assert s >= segs[i - 1][2] - 1e-6  # ordered, no overlap


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return min(a[1], b[1]) - max(a[0], b[0])


def test_pocketsphinx_transcribes_espeak(speech):
    wav, sr = speech
    dur = len(wav) / sr
    tr = transcribe(wav, sr)  # auto without a model: PocketSphinx
    assert isinstance(tr, Transcript) and tr.text == " ".join(w for w, _, _ in tr.words)
    _check_timeline(tr.words, dur)
    hits = [w for w, _, _ in tr.words if w in SPOKEN.split()]
    assert len(hits) >= 4, tr.text
    # recognised words lie where the aligner puts the same word
    aligned = {w: (s, e) for w, s, e in align_words(wav, sr, SPOKEN)}
    for w, s, e in tr.words:
        if w in aligned:
            assert _overlap((s, e), aligned[w]) > 0, (w, (s, e), aligned[w])
    assert transcribe(wav, sr, backend="pocketsphinx") == tr  # fresh decoder per call: deterministic


def test_forced_alignment_words_and_phones(speech):
    wav, sr = speech
    dur = len(wav) / sr
    words = align_words(wav, sr, "One, two... three four FIVE six seven!")
    assert [w for w, _, _ in words] == SPOKEN.split()
    _check_timeline(words, dur)
    assert words[-1][2] > 0.6 * dur  # the words span the speech, not a corner of it
    phones = phoneme_segments(wav, sr, SPOKEN)
    _check_timeline(phones, dur)
    assert [p for p, _, _ in phones if p != "SIL"] == PHONES
    assert all(p in ARPABET for p, _, _ in phones)
    assert phones[-1][2] == pytest.approx(dur, abs=0.02)  # contiguous cover up to the end
    for (_, _, e), (_, s, _) in zip(phones, phones[1:], strict=False):
        assert s == pytest.approx(e, abs=0.011)
    # every word's phones lie inside the word's span
    starts = {w: (s, e) for w, s, e in words}
    w_s, w_e = starts["three"]
    three = [(p, s, e) for p, s, e in phones if s >= w_s - 1e-6 and e <= w_e + 1e-6 and p != "SIL"]
    assert [p for p, _, _ in three] == ["TH", "R", "IY"]


def test_alignment_of_a_sentence_the_default_beams_lost(speech):  # speech: skips without espeak-ng
    text = "She can scoop these things into three red bags."  # failed to align with PocketSphinx's default beams
    wav = synthesize_speech(text, 16000)
    words = align_words(wav, 16000, text)
    assert [w for w, _, _ in words] == normalize_text(text)
    _check_timeline(words, len(wav) / 16000)
    phones = [p for p, _, _ in phoneme_segments(wav, 16000, text) if p != "SIL"]
    assert phones[:3] == ["SH", "IY", "K"] and phones[-4:] == ["B", "AE", "G", "Z"]


def test_phone_recognition_without_transcript(speech):
    wav, sr = speech
    phones = phoneme_segments(wav, sr)
    _check_timeline(phones, len(wav) / sr)
    assert all(p in ARPABET for p, _, _ in phones)
    speechy = [p for p, _, _ in phones if p != "SIL"]
    assert len(speechy) >= 10 and len(set(speechy) & set(PHONES)) >= 5


def test_resampled_input_gives_same_words(speech):
    from a2v.audio.io import resample

    wav, sr = speech
    words = [w for w, _, _ in align_words(resample(wav, sr, 16000), 16000, SPOKEN)]
    assert words == SPOKEN.split()


def test_silence_and_bad_input(speech):
    wav, sr = speech
    assert transcribe(np.zeros(16000, np.float32), 16000).words == []
    with pytest.raises(InputError, match="not in the PocketSphinx English dictionary: zzqx"):
        phoneme_segments(wav, sr, "one zzqx")
    with pytest.raises(InputError, match="could not align"):
        align_words(wav[: sr // 10], sr, SPOKEN + " " + SPOKEN)
    with pytest.raises(InputError, match="no words"):
        align_words(wav, sr, " ,. ")
    with pytest.raises(InputError, match="non-empty"):
        transcribe(np.zeros(0, np.float32), 16000)
    with pytest.raises(ConfigError, match="unknown ASR backend"):
        transcribe(wav, sr, backend="kaldi")
    with pytest.raises(ConfigError, match="needs a model"):
        transcribe(wav, sr, backend="whisper")


def test_whisper_missing_weights(offline_hub):
    with pytest.raises(MissingWeightsError, match="'openai/whisper-small' not found locally"):
        transcribe(np.zeros(16000, np.float32), 16000, model="openai/whisper-small")


def test_whisper_pipeline_output_to_transcript(tmp_path, monkeypatch):
    import a2v.encoders.asr as asr

    folder = tmp_path / "whisper"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")  # never read: the pipeline is replaced below
    calls = []

    class FakePipe:
        class model:  # noqa: N801 - mimics pipeline.model.generation_config
            class generation_config:  # noqa: N801
                alignment_heads = [[2, 3]]

        def __call__(self, inputs, **kwargs):
            calls.append((inputs, kwargs))
            return {
                "text": " hello world ",
                "chunks": [
                    {"text": " hello", "timestamp": (0.1, 0.5)},
                    {"text": " world", "timestamp": (0.6, None)},  # open end: up to the audio end
                    {"text": " ", "timestamp": (0.9, 1.0)},
                ],
            }

    monkeypatch.setattr(asr, "_whisper_pipeline", lambda src, device, local: FakePipe())
    tr = transcribe(np.zeros(8000, np.float32), 8000, model=folder)  # auto + model: Whisper
    assert tr == Transcript("hello world", [("hello", 0.1, 0.5), ("world", 0.6, 1.0)])
    inputs, kwargs = calls[0]
    assert inputs["sampling_rate"] == 16000 and inputs["raw"].shape == (16000,)  # resampled 8k -> 16k
    assert kwargs == {"return_timestamps": "word"}


def test_long_input_path_in_blocks(speech, monkeypatch):
    import a2v.encoders.sphinx as sphinx

    wav, sr = speech
    monkeypatch.setattr(sphinx, "_LONG_S", 1.0)  # treat the 2.6 s clip as long: fed in 0.5 s blocks
    monkeypatch.setattr(sphinx, "_BLOCK_S", 0.5)
    tr = transcribe(wav, sr, progress=False)
    _check_timeline(tr.words, len(wav) / sr)
    assert len([w for w, _, _ in tr.words if w in SPOKEN.split()]) >= 4, tr.text
    assert [w for w, _, _ in align_words(wav, sr, SPOKEN)] == SPOKEN.split()


def test_tiny_whisper_end_to_end(whisper_dir):
    rng = np.random.default_rng(0)
    for seconds in (2.0, 33.0):  # one window; two 30 s windows (chunked pipeline)
        wav = (0.1 * rng.standard_normal(int(seconds * 8000))).astype(np.float32)
        tr = transcribe(wav, 8000, backend="whisper", model=whisper_dir, progress=False)
        assert isinstance(tr, Transcript) and isinstance(tr.text, str)
        for (_, s, e), nxt in zip(tr.words, tr.words[1:] + [None], strict=True):
            assert 0.0 <= s <= e <= seconds
            assert nxt is None or nxt[1] >= s


def test_whisper_folder_without_weights(tmp_path, whisper_dir):
    folder = tmp_path / "whisper-config-only"
    folder.mkdir()
    shutil.copy(whisper_dir / "config.json", folder / "config.json")
    with pytest.raises(MissingWeightsError, match="no weight file"):
        transcribe(np.zeros(16000, np.float32), 16000, model=folder)
