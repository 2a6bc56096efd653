"""ImagePipeline save/load round trip, long-audio embedding, generation with an init image and a video."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from image_testutil import tone

from a2v.config import replace
from a2v.errors import InputError, MissingWeightsError
from a2v.recipes.image.config import ImageConfig
from a2v.recipes.image.model import build_audio_encoder
from a2v.recipes.image.pipeline import ImagePipeline


def _cfg(wavlm_dir, freeze: bool = True) -> ImageConfig:
    return replace(ImageConfig(), [f"audio.encoder={wavlm_dir}", "audio.num_layers=1", "audio.num_heads=2",
                                   "audio.ff_dim=64", "audio.mlp_hidden_dim=64", "audio.clip_s=0.5",
                                   f"audio.freeze_encoder={str(freeze).lower()}", "tower.kind=tiny",
                                   "tower.tiny_dim=16", "generate.vq.kind=tiny", "generate.size_px=[32,32]",
                                   "generate.steps=3", "generate.num_cutouts=2", "generate.video_every=1"])


@pytest.mark.parametrize("freeze", [True, False])
def test_save_load_round_trip(tmp_path, wavlm_dir, freeze):
    cfg = _cfg(wavlm_dir, freeze)
    torch.manual_seed(1)
    audio = build_audio_encoder(cfg.audio, 16)
    if not freeze:  # a fine-tuned WavLM must travel with the pipeline
        with torch.no_grad():
            audio.speech.backbone.encoder.layers[0].attention.k_proj.weight.add_(0.5)
    pipe = ImagePipeline(cfg, audio)
    wav = tone(330.0, 1.2)  # longer than clip_s: embedded in 3 windows (0.5 + 0.5 + 0.2 s)
    ref = pipe.embed_audio(wav)
    d = pipe.save_pretrained(tmp_path / "pipe")
    assert (d / "speech" / "config.json").is_file() == (not freeze)
    assert json.loads((d / "config.json").read_text())["audio"]["num_layers"] == 1
    back = ImagePipeline.from_pretrained(d, overrides=["generate.steps=2"])
    assert back.cfg.generate.steps == 2 and back.cfg.audio == cfg.audio
    got = back.embed_audio(wav)
    assert got.shape == (16,) and got.norm().item() == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    other = ImagePipeline(cfg, build_audio_encoder(cfg.audio, 16)).embed_audio(wav)
    assert not torch.allclose(other, ref, atol=1e-3)  # a fresh head differs: the weights really came back


def test_missing_pipeline_files_and_bad_audio(tmp_path, wavlm_dir):
    with pytest.raises(MissingWeightsError, match="config.json"):
        ImagePipeline.from_pretrained(tmp_path / "nothing")
    cfg = _cfg(wavlm_dir)
    pipe = ImagePipeline(cfg, build_audio_encoder(cfg.audio, 16))
    d = pipe.save_pretrained(tmp_path / "p")
    (d / "audio_head.safetensors").unlink()
    with pytest.raises(MissingWeightsError, match="audio_head.safetensors"):
        ImagePipeline.from_pretrained(d)
    with pytest.raises(InputError, match="too short"):
        pipe.embed_audio(np.zeros(100, np.float32))
    with pytest.raises(InputError, match="mono"):
        pipe.embed_audio(np.zeros((2, 8000), np.float32))


def test_generate_with_init_image_and_video(tmp_path, wavlm_dir):
    from a2v.video import probe

    cfg = _cfg(wavlm_dir)
    pipe = ImagePipeline(cfg, build_audio_encoder(cfg.audio, 16))
    init = (np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)
    pic = pipe.generate(tone(500.0, 0.5), init_image=init, video=tmp_path / "opt.mp4", progress=False)
    assert pic.shape == (32, 32, 3) and pic.dtype == np.uint8
    assert probe(tmp_path / "opt.mp4").num_frames == 4  # steps 0,1,2 + the final picture
    again = pipe.generate(tone(500.0, 0.5), init_image=init, progress=False)
    assert np.array_equal(pic, again)  # seeded: the same picture twice


def test_configs_of_earlier_pipelines_are_upgraded():
    from a2v.recipes.image.pipeline import _upgrade

    old = {"loss": {"kind": "cxloss", "temperature": 0.07}, "tower": {"kind": "brivl", "weights": "b.pth"}}
    assert _upgrade(old) == {"loss": {"kind": "moco", "temperature": 0.07},
                             "tower": {"kind": "brivl", "weights": "b.pth", "brivl_boxes": "grid"}}
    assert _upgrade({"loss": {"kind": "wav2clip"}})["loss"]["kind"] == "infonce"
    new = {"loss": {"kind": "cxloss", "learn_temperature": True}, "tower": {"kind": "brivl", "brivl_boxes": "detector"}}
    assert _upgrade(json.loads(json.dumps(new))) == new
