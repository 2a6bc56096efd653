"""Audio encoder + contrastive training: shapes, the loss's queue semantics, a tiny model that learns to retrieve."""

from __future__ import annotations

import math

import pytest
import torch
from image_testutil import tone

from a2v.config import replace
from a2v.errors import ConfigError, MissingWeightsError
from a2v.recipes.image.config import AudioConfig, ImageConfig, LossConfig
from a2v.recipes.image.model import AudioHead, CrossModalContrast, build_audio_encoder
from a2v.recipes.image.train import ContrastTask, retrieval_metrics
from a2v.train import TrainConfig, fit

TINY_AUDIO = AudioConfig(num_layers=1, num_heads=2, ff_dim=64, mlp_hidden_dim=64, dropout=0.0, clip_s=0.5)


class Pairs(torch.utils.data.Dataset):
    """N sounds (tones of distinct pitch) paired with N random 'image' embeddings (E,)."""

    def __init__(self, n: int = 16, dim: int = 16, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.emb = torch.randn(n, dim, generator=g)  # (N,E)
        self.wav = torch.stack([torch.from_numpy(tone(200.0 * 1.25**i, 0.3, seed=i)) for i in range(n)])  # (N,S)

    def __len__(self) -> int:
        return self.emb.shape[0]

    def __getitem__(self, i):
        return {"wav": self.wav[i], "length": torch.tensor(self.wav.shape[1]), "image_emb": self.emb[i],
                "index": torch.tensor(i)}


def test_audio_encoder_shapes_and_masked_frames(wavlm_dir):
    from a2v.recipes.image.model import speech_hidden_states

    enc = build_audio_encoder(replace(TINY_AUDIO, [f"encoder={wavlm_dir}"]), 16).eval()
    wav = torch.from_numpy(tone(440.0, 0.5))[None].repeat(2, 1)  # (2,S)
    with torch.no_grad():
        out = enc(wav, torch.tensor([8000, 4000]))  # (B,S)->(B,E)
        states, mask = speech_hidden_states(enc.speech, wav, torch.tensor([8000, 4000]))
        assert states.shape == (3, 2, 24, 32) and mask.sum(1).tolist() == [24, 12]  # (S-400)//320+1
        torch.testing.assert_close(enc.head(states, mask), out)
        noisy = states.clone()
        noisy[:, 1, 12:] = 100.0  # frames past the second clip's length must not matter
        torch.testing.assert_close(enc.head(noisy, mask), out)
    assert out.shape == (2, 16)
    assert enc.speech.frozen and not any(p.requires_grad for p in enc.speech.parameters())
    assert all(p.requires_grad for p in enc.head.parameters())


def test_missing_speech_weights_and_bad_heads(tmp_path, wavlm_dir):
    with pytest.raises(MissingWeightsError, match="nothing_here"):
        build_audio_encoder(replace(TINY_AUDIO, [f"encoder={tmp_path / 'nothing_here'}"]), 16)
    with pytest.raises(ConfigError, match="num_heads"):
        AudioHead(3, 32, 16, replace(TINY_AUDIO, ["num_heads=5"]))


def test_cxloss_queues_fill_after_the_loss_and_equal_direct_terms():
    from a2v.nn.moco import info_nce_with_queue

    loss = CrossModalContrast(4, LossConfig(kind="moco", queue_size=6, temperature=0.1))
    g = torch.Generator().manual_seed(0)
    a, v, ak = (torch.randn(3, 4, generator=g) for _ in range(3))
    out = loss(a, v, ak)  # first batch: queues empty, so only the positives
    assert out["loss"].item() == pytest.approx(0.0, abs=1e-6)
    assert loss.image_queue.valid().shape == (3, 4) and loss.audio_queue.valid().shape == (3, 4)
    a2, v2, ak2 = (torch.randn(3, 4, generator=g) for _ in range(3))
    q_img, q_aud = loss.image_queue.valid().clone(), loss.audio_queue.valid().clone()
    out2 = loss(a2, v2, ak2)
    expect = info_nce_with_queue(a2, v2, q_img, 0.1) + info_nce_with_queue(v2, a2, q_aud, 0.1)
    assert out2["loss"].item() == pytest.approx(expect.item(), rel=1e-5)
    torch.testing.assert_close(loss.audio_queue.valid()[:3], torch.nn.functional.normalize(ak, dim=-1))
    torch.testing.assert_close(loss.audio_queue.valid()[3:], torch.nn.functional.normalize(ak2, dim=-1))


@pytest.mark.parametrize("kind", ["cxloss", "moco", "infonce"])
def test_tiny_model_learns_to_retrieve(tmp_path, wavlm_dir, kind):
    data = Pairs(16, 16)
    steps = 80 if kind == "cxloss" else 40  # CXLoss also trains f, g and two temperatures
    cfg = ImageConfig(audio=replace(TINY_AUDIO, [f"encoder={wavlm_dir}"]),
                      loss=LossConfig(kind=kind, queue_size=32, momentum=0.9, proj_dropout=0.0),
                      train=TrainConfig(max_steps=steps, batch_size=8, lr=3e-3, cpu=True, tensorboard=False,
                                        ckpt_every=0, log_every=20, eval_every=steps, best_metric="r@1",
                                        best_mode="max"))
    torch.manual_seed(0)
    audio = build_audio_encoder(cfg.audio, 16)
    task = ContrastTask(cfg, audio)
    before = retrieval_metrics(task.audio_encoder(task.modules()).eval(), data, (1, 5))
    result = fit(task, data, cfg.train, tmp_path / kind, eval_data=data, progress=False, run_config=cfg)
    after = retrieval_metrics(task.audio_encoder(task.modules()).eval(), data, (1, 5))
    assert after["r@1"] >= 0.5 > before["r@1"]  # chance is 1/16
    assert after["median_rank"] < before["median_rank"]
    assert result.eval_metrics["r@1"] == pytest.approx(after["r@1"])
    if kind == "cxloss":  # g(A) is the embedding; f, g and both temperatures were trained
        assert set(task.modules()) == {"head", "contrast"} and task.state_modules() == {}
        assert task.contrast.loss_a.logit_scale.item() != pytest.approx(math.log(1 / 0.07))
    if kind == "moco":
        assert int(task.contrast.image_queue.count) == 32  # 40 batches of 8 went through a queue of 32
        assert not torch.equal(task.head_key.mlp[2].weight, task.head.mlp[2].weight)  # lags behind


def test_fine_tuned_wavlm_trains_with_a_momentum_copy(tmp_path, wavlm_dir):
    data = Pairs(8, 16)
    cfg = ImageConfig(audio=replace(TINY_AUDIO, [f"encoder={wavlm_dir}", "freeze_encoder=false"]),
                      loss=LossConfig(kind="moco", queue_size=8, momentum=0.5),
                      train=TrainConfig(max_steps=3, batch_size=4, lr=1e-3, cpu=True, tensorboard=False,
                                        ckpt_every=0))
    audio = build_audio_encoder(cfg.audio, 16)
    w0 = audio.speech.backbone.encoder.layers[0].attention.k_proj.weight.detach().clone()
    task = ContrastTask(cfg, audio)
    assert set(task.modules()) == {"head", "speech"}
    assert set(task.state_modules()) == {"head_key", "contrast", "speech_key"}
    res = fit(task, data, cfg.train, tmp_path / "ft", progress=False)
    w1 = audio.speech.backbone.encoder.layers[0].attention.k_proj.weight.detach()
    wk = task.speech_key.backbone.encoder.layers[0].attention.k_proj.weight
    assert not torch.equal(w0, w1)  # WavLM itself was trained
    # step 1 has empty queues (loss 0, no update); the key copy then moves part of the way to the online net
    assert not torch.equal(wk, w0) and not torch.equal(wk, w1)
    assert (res.last_checkpoint / "speech_key.safetensors").is_file()


def test_cxloss_is_the_sum_of_the_two_projected_clip_terms():
    """CLIP(A, f(I)) + CLIP(g(A), I), CLIP = symmetric in-batch InfoNCE at tau = exp(-logit_scale)."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    loss = CrossModalContrast(4, LossConfig(kind="cxloss", temperature=0.1, proj_dropout=0.0)).eval()
    a, v = torch.randn(5, 4), torch.randn(5, 4)

    def clip(x, y, tau):  # written out: logits of normalised rows, cross-entropy both ways
        lg = F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T / tau
        t = torch.arange(x.shape[0])
        return (F.cross_entropy(lg, t) + F.cross_entropy(lg.T, t)) / 2

    with torch.no_grad():
        loss.loss_i.logit_scale.fill_(math.log(1 / 0.2))  # the two terms keep their own temperature
        want = clip(a, loss.image_proj(v), 0.1) + clip(loss.audio_proj(a), v, 0.2)
        out = loss(a, v)
    assert out["loss"].item() == pytest.approx(want.item(), rel=1e-5)
    assert out["loss_a2i"].item() == pytest.approx(clip(loss.audio_proj(a), v, 0.2).item(), rel=1e-5)
    assert [n for n, _ in loss.named_parameters()] == [
        "image_proj.sequential.0.weight", "image_proj.sequential.0.bias", "image_proj.sequential.3.weight",
        "image_proj.sequential.3.bias", "audio_proj.sequential.0.weight", "audio_proj.sequential.0.bias",
        "audio_proj.sequential.3.weight", "audio_proj.sequential.3.bias", "loss_a.logit_scale", "loss_i.logit_scale"]
    with pytest.raises(ConfigError, match="infonce"):
        ImageConfig(loss=LossConfig(kind="wav2clip"))
