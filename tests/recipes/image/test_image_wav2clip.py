"""Wav2CLIP's audio encoder: its spectrogram against librosa, its released checkpoint layout (built here in the
format the wav2clip package reads) loaded strictly, imported as a pipeline that generates, and trained with CXLoss."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from image_testutil import lightning_ckpt, tone

from a2v.errors import ConfigError, InputError
from a2v.recipes.image.model import Projection
from a2v.recipes.image.wav2clip import Wav2CLIPAudioEncoder, load_wav2clip, log_spectrogram


def test_log_spectrogram_matches_librosa():
    librosa = pytest.importorskip("librosa")
    wav = tone(440.0, 0.4, seed=1)
    got = log_spectrogram(torch.from_numpy(wav)[None])[0, 0].double().numpy()  # (257,T)
    p = np.abs(librosa.stft(wav.astype(np.float64), n_fft=512, hop_length=353, window="hann", center=True,
                            pad_mode="reflect")) ** 2  # torchaudio Spectrogram(n_fft=512, hop_length=353), power 2
    x = np.log(p + 1e-7)
    want = (x - x.mean()) / (x.std(ddof=1) + 1e-9)
    assert got.shape == want.shape == (257, 1 + len(wav) // 353)
    np.testing.assert_allclose(got, want, atol=2e-3)


def released_state(model: Wav2CLIPAudioEncoder) -> dict[str, torch.Tensor]:
    """``model`` in the key layout of Wav2CLIP's ResNet_CX.ckpt (ResNetDistillation with loss clip_loss_x):
    audio_encoder.* (with the unused 309-class fc and torchaudio's window buffer), audio_transform.*,
    image_transform.*, and the two CLIPLoss1D logit scales."""
    sd = {"audio_encoder." + k.removeprefix("encoder.net."): v for k, v in model.state_dict().items()
          if k.startswith("encoder.")}
    sd["audio_encoder.spectrogram.window"] = torch.hann_window(512)
    sd["audio_encoder.fc.weight"], sd["audio_encoder.fc.bias"] = torch.zeros(309, 512), torch.zeros(309)
    sd |= {"audio_" + k: v for k, v in model.state_dict().items() if k.startswith("transform.")}
    sd |= {"image_" + k: torch.randn_like(v) for k, v in model.state_dict().items() if k.startswith("transform.")}
    sd["loss_fn_a.logit_scale"] = sd["loss_fn_i.logit_scale"] = torch.tensor(np.log(1 / 0.07))
    return sd


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    model = Wav2CLIPAudioEncoder(Projection(512)).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so a lost buffer shows
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    return model


def test_released_checkpoint_loads_strictly_and_embeds_the_same(reference, tmp_path, monkeypatch):
    sd = released_state(reference)
    assert "audio_encoder.layer4.1.bn2.running_var" in sd and "audio_transform.sequential.3.weight" in sd
    lightning_ckpt(tmp_path / "ResNet_CX.ckpt", sd, monkeypatch)
    with pytest.raises(InputError, match="a2v image convert-wav2clip"):
        load_wav2clip(tmp_path / "ResNet_CX.ckpt")
    from a2v.recipes.image.ckpt import convert_lightning_checkpoint

    convert_lightning_checkpoint(tmp_path / "ResNet_CX.ckpt", tmp_path / "w2c.safetensors", trust_pickle=True)
    torch.save({"state_dict": sd, "epoch": 9}, tmp_path / "plain.ckpt")  # a tensors-only file loads directly
    wav = torch.from_numpy(np.stack([tone(300.0, 1.0), tone(900.0, 1.0, seed=2)]))  # (2,S)
    with torch.no_grad():
        want = reference(wav)  # (2,512)
        for f in ("w2c.safetensors", "plain.ckpt"):
            torch.testing.assert_close(load_wav2clip(tmp_path / f)(wav), want)
        short = reference(wav[1:, :8000])
        torch.testing.assert_close(reference(wav, torch.tensor([16000, 8000]))[1:], short)  # padding ignored
    assert want.shape == (2, 512)
    bad = {k: v for k, v in sd.items() if k != "audio_encoder.layer1.0.conv1.weight"}
    torch.save({"state_dict": bad}, tmp_path / "bad.ckpt")
    with pytest.raises(ConfigError, match="1 missing"):
        load_wav2clip(tmp_path / "bad.ckpt")
    torch.save({"state_dict": {"quantize.embedding.weight": torch.zeros(2, 2)}}, tmp_path / "vq.ckpt")
    with pytest.raises(InputError, match="not a Wav2CLIP checkpoint"):
        load_wav2clip(tmp_path / "vq.ckpt")


def test_imported_pipeline_saves_loads_and_generates(reference, tmp_path):
    from safetensors.torch import save_file

    from a2v.cli import main
    from a2v.recipes.image.pipeline import ImagePipeline

    save_file({k: v.clone().contiguous() for k, v in released_state(reference).items()},
              str(tmp_path / "w2c.safetensors"))
    sets = ["tower.kind=tiny", "tower.tiny_dim=512", "generate.vq.kind=tiny", "generate.size_px=[32,32]",
            "generate.steps=3", "generate.num_cutouts=2"]
    args = ["image", "import-wav2clip", str(tmp_path / "w2c.safetensors"), "-o", str(tmp_path / "pipe")]
    assert main(args + [a for s in sets for a in ("--set", s)]) == 0
    pipe = ImagePipeline.from_pretrained(tmp_path / "pipe")
    assert pipe.cfg.audio.kind == "wav2clip" and (tmp_path / "pipe" / "audio_encoder.safetensors").is_file()
    wav = tone(500.0, 1.0)
    with torch.no_grad():
        want = torch.nn.functional.normalize(reference(torch.from_numpy(wav)[None])[0], dim=-1)
    torch.testing.assert_close(pipe.embed_audio(wav), want)
    picture = pipe.generate(wav, progress=False)
    assert picture.shape == (32, 32, 3) and picture.dtype == np.uint8


def test_wav2clip_encoder_trains_with_cxloss(tmp_path):
    from a2v.recipes.image.config import AudioConfig, ImageConfig, LossConfig
    from a2v.recipes.image.model import build_audio_encoder
    from a2v.recipes.image.train import ContrastTask
    from a2v.train import TrainConfig, fit

    class Pairs(torch.utils.data.Dataset):
        def __init__(self):
            self.emb = torch.randn(8, 512, generator=torch.Generator().manual_seed(0))

        def __len__(self):
            return 8

        def __getitem__(self, i):
            return {"wav": torch.from_numpy(tone(200.0 * 1.3**i, 0.3, seed=i)), "length": torch.tensor(4800),
                    "image_emb": self.emb[i], "index": torch.tensor(i)}

    cfg = ImageConfig(audio=AudioConfig(kind="wav2clip", clip_s=0.3), loss=LossConfig(kind="cxloss"),
                      train=TrainConfig(max_steps=4, batch_size=4, lr=1e-3, cpu=True, tensorboard=False,
                                        ckpt_every=4))
    with pytest.raises(ConfigError, match="512-d"):
        build_audio_encoder(cfg.audio, 256)
    torch.manual_seed(0)
    audio = build_audio_encoder(cfg.audio, 512)
    task = ContrastTask(cfg, audio)
    w0 = audio.encoder.net.layer4[1].conv2.weight.detach().clone()
    res = fit(task, Pairs(), cfg.train, tmp_path / "run", progress=False)
    assert set(task.modules()) == {"head", "contrast"} and np.isfinite(res.train_metrics["loss"])
    assert not torch.equal(w0, audio.encoder.net.layer4[1].conv2.weight)  # the ResNet itself is trained
    enc = task.audio_encoder(task.modules()).eval()  # eval: a train-mode call would move BatchNorm statistics
    assert enc.transform is task.contrast.audio_proj and enc(torch.zeros(1, 4800)).shape == (1, 512)
    from a2v.recipes.image.pipeline import ImagePipeline

    fresh = ImagePipeline(cfg, Wav2CLIPAudioEncoder(Projection(512)))  # as train() assembles it, then loads
    fresh.load_checkpoint(res.last_checkpoint)
    fresh.save_pretrained(tmp_path / "pipe")
    loaded = ImagePipeline.from_pretrained(tmp_path / "pipe")
    wav = tone(400.0, 0.3)
    with torch.no_grad():
        want = torch.nn.functional.normalize(enc(torch.from_numpy(wav)[None])[0], dim=-1)
    torch.testing.assert_close(loaded.embed_audio(wav), want)


def test_evaluate_against_the_baseline_pipeline(reference, tmp_path):
    """The study page pits the baseline's picture of each sound against ours; the judge is another tower."""
    from a2v.audio import save_audio
    from a2v.config import replace
    from a2v.recipes.image.config import DataConfig, ImageConfig
    from a2v.recipes.image.data import prepare_pairs
    from a2v.recipes.image.evaluate import evaluate
    from a2v.recipes.image.pipeline import ImagePipeline
    from a2v.video import write_png

    for k, label in enumerate(("bell", "drum")):
        save_audio(tmp_path / "in" / label / "x.wav", tone(300.0 * (k + 1), 0.5), 16000)
        write_png(tmp_path / "in" / label / "x.png", np.full((16, 16, 3), 100 * k, np.uint8))
    prepare_pairs([tmp_path / "in"], tmp_path / "data", DataConfig(image_size_px=16, val_fraction=0.0), progress=False)
    cfg = replace(ImageConfig(), ["tower.kind=tiny", "tower.tiny_dim=512", "generate.vq.kind=tiny",
                                  "generate.size_px=[16,16]", "generate.num_cutouts=1", "eval.generate_steps=1",
                                  "eval.num_2afc_pairs=1", "eval.judge.kind=tiny", "eval.judge.tiny_dim=8",
                                  "eval.judge.tiny_seed=1", "audio.clip_s=0.5"])
    ours = ImagePipeline(cfg, reference)
    base = ImagePipeline(cfg, Wav2CLIPAudioEncoder(Projection(512)).eval())
    m = evaluate(ours, tmp_path / "data", tmp_path / "eval", split="all", progress=False, baseline=base)
    assert m["two_afc_trials"] == 1 and 0 <= m["two_afc_accuracy"] <= 1 and m["two_afc_judge"] != m["two_afc_guide"]
    key = json.loads((tmp_path / "eval" / "study" / "key.json").read_text())
    assert len(key) == 2 and all(k["alternative_picture"].endswith("_baseline.png") for k in key)
    assert all((tmp_path / "eval" / "pictures" / k["alternative_picture"]).is_file() for k in key)
