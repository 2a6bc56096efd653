"""The face recipe's tiny task: `a2v face tiny-data` writes a dataset `a2v face train` reads, tiny.yaml holds
the settings the CLI benchmark measured, and the decoder check counts detected faces (never a silent success)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from a2v.config import replace

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from a2v.recipes.face.tiny_data import TinyDataConfig, make_tiny_data

    out = tmp_path_factory.mktemp("tiny") / "face-tiny"
    make_tiny_data(out, TinyDataConfig(n_speakers=2, n_sentences=3, crop_size_px=32, frames_per_clip=2))
    return out


def test_tiny_data_is_a_prepared_face_dataset_with_held_out_sentences(tiny_data):
    from a2v.recipes.face.data import read_talking_faces
    from a2v.recipes.face.tiny_data import tiny_faces

    train, test = read_talking_faces(tiny_data / "train"), read_talking_faces(tiny_data / "test")
    assert [i.split(":")[0] for i in train.ids] == ["spk0_s0", "spk0_s1", "spk1_s0", "spk1_s1"]
    assert [i.split(":")[0] for i in test.ids] == ["spk0_s2", "spk1_s2"]
    assert train.images.shape == (4, 32, 32, 3) and train.images.dtype == np.uint8
    # the crop is the speaker's LFW face (H.264 keeps it within a few grey levels)
    faces = tiny_faces(2, 32).astype(float)
    err = np.abs(train.images.astype(float) - faces[[0, 0, 1, 1]]).mean(axis=(1, 2, 3))
    assert err.max() < 6, err
    for wav in train.wavs + test.wavs:  # 16 kHz speech, 1-3 s
        assert wav.dtype == np.float32 and 16000 <= len(wav) <= 48000 and np.abs(wav).max() > 0.05
    # two speakers, two voices: pitch differs (zero-crossing rate of the voiced part as a cheap proxy)
    zcr = [np.mean(np.abs(np.diff(np.sign(w))) > 0) for w in train.wavs]
    assert abs(zcr[0] - zcr[2]) > 1e-3
    from a2v.audio import load_audio

    np.testing.assert_allclose(load_audio(tiny_data / "voices" / "spk1.wav", 16000), test.wavs[1], atol=1e-4)
    summary = json.loads((tiny_data / "tiny_data.json").read_text())
    assert summary["train_clips"] == 4 and summary["test_clips"] == 2


def test_tiny_data_refuses_a_folder_in_use_with_one_line(tiny_data, capsys):
    from a2v.cli import main

    assert main(["face", "tiny-data", "-o", str(tiny_data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0]
    assert main(["face", "tiny-data", "-o", str(tiny_data.parent / "bad"), "--speakers", "99"]) == 2
    assert not (tiny_data.parent / "bad").exists()


def test_face_train_accepts_the_tiny_data(tiny_data, tmp_path, tiny_cfg):
    """`a2v face train --stage encoder` (speech + faces) and the decoder stage read it; the decoder's end-of-training
    check says how many samples hold a face and writes face_check.json."""
    from a2v.recipes.face.train import train_stage

    few = ["train_encoder.max_steps=2", "train_encoder.batch_size=2", "train_decoder.max_steps=2",
           "train_decoder.batch_size=2", "sample.sampler=ddim", "sample.num_steps=2", "sample.check_faces=2"]
    cfg = replace(tiny_cfg, few)
    res = train_stage(cfg, "encoder", tiny_data / "train", tmp_path / "enc", model_dir=tmp_path / "m", progress=False)
    assert res.step == 2
    res = train_stage(cfg, "decoder", tiny_data / "train", tmp_path / "dec", model_dir=tmp_path / "m", progress=False)
    check = json.loads((tmp_path / "dec" / "face_check.json").read_text())
    assert check["of"] == 2 and check["faces_found"] == 0  # 2 steps: noise, and said so
    assert (tmp_path / "dec" / "face_check.png").is_file()


def test_face_check_counts_faces_and_warns():
    from a2v.recipes.face.check import faces_found, report_check
    from a2v.recipes.face.tiny_data import tiny_faces

    faces = tiny_faces(4, 16)  # 16 px, as the tiny decoder's samples
    noise = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    assert faces_found(np.concatenate([faces, noise])).tolist() == [True] * 4 + [False] * 2
    assert report_check({"faces_found": 1, "of": 4}, "x").startswith("WARNING: faces found 1/4")
    assert report_check({"faces_found": 3, "of": 4}, "x").startswith("faces found 3/4")


def test_distinct_rows_cycles_the_distinct_embeddings():
    from a2v.recipes.face.check import distinct_rows

    e = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0], [0, 1.0]])
    assert distinct_rows(e, 3).tolist() == [[1, 0], [0, 1], [1, 0]]


def test_tiny_yaml_is_what_the_cli_benchmark_measured(tiny_cfg):
    """benchmarks/face_tiny_task.py records the training settings it ran; tiny.yaml must still hold them."""
    res = json.loads((REPO / "benchmarks" / "results" / "face_tiny_task_cli.json").read_text())
    for stage in ("train_encoder", "train_decoder", "train_sr"):
        t = getattr(tiny_cfg, stage)
        assert res["config"][stage] == {"max_steps": t.max_steps, "batch_size": t.batch_size, "lr": t.lr,
                                        "ema_decay": t.ema_decay}, stage
    assert res["config"]["sample"] == {"sampler": tiny_cfg.sample.sampler, "guidance_w": tiny_cfg.sample.guidance_w,
                                       "sr_sampler": tiny_cfg.sample.sr_sampler,
                                       "sr_num_steps": tiny_cfg.sample.sr_num_steps}
    assert tiny_cfg.decoder.image_size_px == 16 and tiny_cfg.superres.image_size_px >= 32
