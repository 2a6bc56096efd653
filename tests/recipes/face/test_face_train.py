"""Face recipe: tiny decoder overfits a face; smoke test of the three stages + generate on the tiny config."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import torch

from a2v.config import replace
from a2v.diffusion.ddpm import ddpm_training_loss, make_scheduler
from a2v.errors import MissingWeightsError
from a2v.recipes.face.tiny_data import tiny_faces


def test_tiny_decoder_overfits_one_face(tiny_cfg):
    from a2v.recipes.face.data import to_model_image
    from a2v.recipes.face.decoder import FaceDecoder

    torch.manual_seed(0)
    cfg = replace(tiny_cfg, ["decoder.base_channels=8", "decoder.norm_groups=4", "decoder.num_heads=1"])
    x0 = to_model_image(tiny_faces(1, 16), 16).repeat(8, 1, 1, 1)  # (8,3,16,16)
    emb = torch.nn.functional.normalize(torch.randn(1, 128), dim=-1).repeat(8, 1)
    net = FaceDecoder(cfg.decoder, 128)
    sched = make_scheduler("ancestral", cfg.decoder.num_train_timesteps)
    g = torch.Generator().manual_seed(1)
    t_eval = torch.randint(0, 100, (8,), generator=g)
    n_eval = torch.randn(x0.shape, generator=g)

    def eval_loss() -> float:
        with torch.no_grad():
            return ddpm_training_loss(net, x0, emb, sched, t=t_eval, noise=n_eval).item()

    before = eval_loss()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(30):
        loss = ddpm_training_loss(net, x0, emb, sched, cond_dropout_prob=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert eval_loss() < 0.5 * before


def _write_dataset(root, faces: np.ndarray, wavs: list[np.ndarray]) -> None:
    """A prepared talking-face dataset in the a2v.data layout: manifest.jsonl + one tar shard."""
    from a2v.video import write_video

    (root / "shards").mkdir(parents=True)
    rows = []
    with tarfile.open(root / "shards" / "0000-00000.tar", "w") as tar:
        for i, (face, wav) in enumerate(zip(faces, wavs, strict=True)):
            key = f"clip{i}"
            mp4 = root / f"{key}.mp4"
            write_video(mp4, [face, face[:, ::-1].copy(), face], fps=25)
            buf = io.BytesIO()
            np.save(buf, wav)
            members = {"audio.npy": buf.getvalue(), "crop.mp4": mp4.read_bytes(),
                       "meta.json": json.dumps({"fps": 25, "n_frames": 3}).encode()}
            for name, data in members.items():
                info = tarfile.TarInfo(f"{key}.{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            rows.append({"id": key, "source": f"{key}.mp4", "shard": "shards/0000-00000.tar"})
            mp4.unlink()
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.slow
def test_smoke_three_stages_and_generate(tmp_path, tiny_cfg):
    from typer.testing import CliRunner

    from a2v.audio import save_audio
    from a2v.recipes.face.cli import app
    from a2v.recipes.face.pipeline import FacePipeline
    from a2v.recipes.face.train import train_stage

    rng = np.random.default_rng(0)
    wavs = [(0.1 * rng.standard_normal(8000)).astype(np.float32) for _ in range(2)]  # 0.5 s, repeated to 1 s
    data = tmp_path / "data"
    _write_dataset(data, tiny_faces(2, 64), wavs)
    model = tmp_path / "model"
    cfg = replace(tiny_cfg, [f"train_{s}.{k}={v}" for s in ("encoder", "decoder", "sr")
                             for k, v in (("max_steps", 2), ("batch_size", 2))]  # a 2-step smoke run
                  + ["sample.sampler=ddim", "sample.num_steps=4", "sample.sr_sampler=ddim", "sample.sr_num_steps=4"])
    for stage in ("encoder", "decoder", "sr"):
        res = train_stage(cfg, stage, data, tmp_path / f"run_{stage}", model_dir=model, progress=False)
        assert res.step == 2
    assert {p.name for p in model.iterdir()} >= {"config.json", "voice_encoder.safetensors", "decoder.safetensors",
                                                  "superres.safetensors"}
    pipe = FacePipeline.from_pretrained(model, device="cpu")
    faces = pipe.generate(audio=wavs[0], num=2, progress=False)
    assert faces.shape == (2, 32, 32, 3) and faces.dtype == np.uint8
    low = pipe.generate(audio=wavs[0], num=1, super_resolve=False, sampler="dpmsolver++", num_steps=4, progress=False)
    assert low.shape == (1, 16, 16, 3)

    again = FacePipeline.from_pretrained(pipe.save_pretrained(tmp_path / "copy"), device="cpu")
    np.testing.assert_array_equal(again.generate(audio=wavs[0], num=2, progress=False), faces)

    wav_path = save_audio(tmp_path / "voice.wav", wavs[1], 16000)
    out = tmp_path / "faces.png"
    r = CliRunner().invoke(app, ["generate", "-m", str(model), "--audio", str(wav_path), "--num", "2",
                                 "--guidance", "1", "-o", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    from a2v.video import load_image

    assert load_image(out).shape == (32, 64, 3)

    metrics_path = tmp_path / "eval.json"
    r = CliRunner().invoke(app, ["evaluate", "-m", str(model), "-d", str(data), "-o", str(metrics_path),
                                 "--guidance", "0,2", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "WARNING: faces found 0/2 in the generated pictures at w = 0" in r.output  # 2 steps: noise, said so
    rows = json.loads(metrics_path.read_text())["rows"]
    assert [m["guidance"] for m in rows] == [0.0, 2.0]
    for metrics in rows:
        assert metrics["n"] == 2 and -1 <= metrics["identity_cosine"] <= 1
        assert "identity_cosine_random_pair" in metrics and "n_no_face_generated" in metrics


def test_missing_weights_name_the_file(tmp_path, tiny_cfg):
    from a2v.config import save_json
    from a2v.recipes.face.pipeline import FacePipeline

    with pytest.raises(MissingWeightsError, match="config.json"):
        FacePipeline.from_pretrained(tmp_path)
    save_json(tiny_cfg, tmp_path / "config.json")
    with pytest.raises(MissingWeightsError, match="voice_encoder.safetensors"):
        FacePipeline.from_pretrained(tmp_path)


def test_cli_help_has_examples():
    from typer.testing import CliRunner

    from a2v.recipes.face.cli import app

    for cmd in ("train", "generate", "evaluate"):
        r = CliRunner().invoke(app, [cmd, "--help"])
        assert r.exit_code == 0 and "Example:" in r.output, r.output


def test_stage_export_keeps_other_stages_settings(tiny_cfg):
    from a2v.config import replace
    from a2v.errors import ConfigError
    from a2v.recipes.face.train import merge_stage_config

    enc = replace(tiny_cfg, ["voice.fc_dim=48"])
    dec = replace(tiny_cfg, ["decoder.base_channels=24", "sample.guidance_w=3.0"])
    merged = merge_stage_config(merge_stage_config(None, enc, "encoder"), dec, "decoder")
    assert merged.voice.fc_dim == 48  # the encoder's export is not undone by the decoder's
    assert merged.decoder.base_channels == 24 and merged.sample.guidance_w == 3.0
    sr = replace(tiny_cfg, ["superres.base_channels=4"])
    final = merge_stage_config(merged, sr, "sr")
    assert (final.voice.fc_dim, final.decoder.base_channels, final.superres.base_channels) == (48, 24, 4)
    other = replace(tiny_cfg, ["embedding.kind=arcface", "embedding.dim=512"])
    with pytest.raises(ConfigError, match="embedding"):
        merge_stage_config(final, other, "decoder")
    bad_sr = replace(tiny_cfg, ["decoder.image_size_px=8", "superres.low_res_px=8"])  # SR for another decoder
    with pytest.raises(ConfigError, match="low_res_px"):
        merge_stage_config(final, bad_sr, "sr")
