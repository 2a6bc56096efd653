"""The speech condition carries the tongue: a conditioned denoiser beats the same network given the null condition.

Task (:func:`a2v.recipes.tongue.synthetic.synthetic_utterance`, raw scanline view, 16 x 16 px):
the audio is a tone whose pitch glides between random targets and the frame's bright arc sits at
a depth that is a deterministic function of that pitch, so the 20-band log-mel of the audio
(``cond.audio_features="logmel"``, no pretrained weights) determines the contour up to the
imaging noise. Two tiny denoisers (``configs/tongue/tiny.yaml`` U-Net, same seed, same
initialisation, same batches and noise) are trained for the same steps; one gets the fused
speech condition f_c, the other the learned null condition in its place (the unconditional model
of classifier-free guidance). On held-out utterances we compare:

1. the denoising error at a fixed high noise level sigma = 10 (= 40 sigma_data) with fixed noise:
   there the noisy frame says little about the contour, so the best unconditional answer is
   near the mean image (error near the held-out variance) while the best conditional answer
   is the contour itself (error near the imaging noise). At sigma = sigma_data the noisy frame
   still shows the arc clearly and both models reach about the same error, which is why the
   test does not use that level;
2. clips generated from fixed prior noise with the deterministic Heun sampler (EDM Algorithm 1):
   the depth of the contour apex on the centre scanline vs the held-out target (pixels).

Training uses P_mean = 1.0 instead of the paper's -1.2 so that 80 steps visit the high noise
levels where the condition matters (the paper's setting reaches them too, only more slowly),
and a higher learning rate (5e-3) than the paper's 5e-4.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a2v.config import load_config
from a2v.diffusion import EDMLoss, EDMPrecond, karras_sigmas, sample_heun
from a2v.diffusion.guidance import null_like
from a2v.recipes.tongue.config import ConditionConfig, TongueConfig
from a2v.recipes.tongue.data import to_unit
from a2v.recipes.tongue.model import ConditionEncoder, build_denoiser
from a2v.recipes.tongue.synthetic import synthetic_utterance

FPS = 30.0
SIZE_PX = 16
CLIP_FRAMES = 4
N_MELS = 20
STEPS, BATCH, LR, P_MEAN = 80, 16, 5e-3, 1.0
EVAL_SIGMA = 10.0
HEUN_STEPS, HEUN_CLIPS = 6, 16


def _clips(rng: np.random.Generator, enc: ConditionEncoder, n_utt: int, seconds: float
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping clips: video float (N,1,F,S,S) in [-1,1], log-mel float (N,F,20) at the frame rate."""
    videos, audios = [], []
    for _ in range(n_utt):
        frames, wav, _ = synthetic_utterance(rng, seconds, FPS, num_vectors=SIZE_PX, pix_per_vector=SIZE_PX)
        video = to_unit(frames)  # (F,N,P)->(1,F,S,S): rows = scanlines, columns = depth
        audio = enc.encode_audio(wav, len(frames), FPS)  # (S,)->(F,20)
        for a in range(0, len(frames) - CLIP_FRAMES + 1, CLIP_FRAMES):
            videos.append(video[:, a:a + CLIP_FRAMES])
            audios.append(audio[a:a + CLIP_FRAMES])
    return torch.stack(videos), torch.stack(audios)  # (N,1,F,S,S), (N,F,20)


def _condition(den: EDMPrecond, audio: torch.Tensor, conditional: bool) -> torch.Tensor:
    """f_c (B,F,D) from the audio, or the denoiser's null condition in its place."""
    f_c = den.net.encode_condition(audio)  # (B,F,20)->(B,F,D)
    return f_c if conditional else null_like(f_c, den.null_cond)


def _train(cfg: TongueConfig, video: torch.Tensor, audio: torch.Tensor, conditional: bool) -> EDMPrecond:
    torch.manual_seed(0)
    den = build_denoiser(cfg, N_MELS, None, 0)  # identical initialisation for both models
    loss_fn = EDMLoss(P_MEAN, cfg.edm.P_std, cfg.edm.sigma_data, cond_dropout_prob=0.0)
    opt = torch.optim.Adam(den.parameters(), lr=LR)
    g_batch, g_noise = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    for _ in range(STEPS):
        idx = torch.randint(0, len(video), (BATCH,), generator=g_batch)
        loss = loss_fn(den, video[idx], _condition(den, audio[idx], conditional), generator=g_noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return den.eval()


def _apex_depth(video: torch.Tensor) -> torch.Tensor:
    """Depth (pixel column) of the brightest echo on the centre scanline: (N,1,F,S,S) -> (N,F)."""
    return video[:, 0, :, SIZE_PX // 2].argmax(-1).float()  # (N,F,S)->(N,F)


@torch.no_grad()
def _held_out_scores(den: EDMPrecond, video: torch.Tensor, audio: torch.Tensor, conditional: bool) -> dict:
    cond = _condition(den, audio, conditional)  # (N,F,D)
    g = torch.Generator().manual_seed(3)  # the same noise for both models
    noise = torch.randn(video.shape, generator=g)
    d = den(video + EVAL_SIGMA * noise, torch.full((len(video),), EVAL_SIGMA), cond)
    sigmas = karras_sigmas(HEUN_STEPS, den.sigma_min, den.sigma_max)
    x = torch.randn(video[:HEUN_CLIPS].shape, generator=g) * sigmas[0]
    sample = sample_heun(lambda x_, s_, c_=None: den(x_, s_, cond[:HEUN_CLIPS]), x, sigmas)
    return {"mse": float(((d - video) ** 2).mean()),
            "depth_px": float((_apex_depth(sample) - _apex_depth(video[:HEUN_CLIPS])).abs().mean())}


@pytest.mark.slow  # trains two tiny denoisers for 80 steps each (~45 s on one CPU thread)
def test_conditioned_beats_unconditioned_on_held_out() -> None:
    cfg = load_config(TongueConfig, "configs/tongue/tiny.yaml",
                      ["cascade.enabled=false", f"image_size_px={SIZE_PX}", f"data.clip_frames={CLIP_FRAMES}"])
    enc = ConditionEncoder(ConditionConfig(audio_features="logmel", n_mels=N_MELS, use_text=False))
    rng = np.random.default_rng(0)
    train_v, train_a = _clips(rng, enc, 12, 2.0)  # 180 clips
    held_v, held_a = _clips(rng, enc, 4, 2.0)  # 60 clips of 4 other utterances
    mean_mse = float(((held_v - train_v.mean(0, keepdim=True)) ** 2).mean())  # error of the mean training image

    cond = _held_out_scores(_train(cfg, train_v, train_a, True), held_v, held_a, True)
    uncond = _held_out_scores(_train(cfg, train_v, train_a, False), held_v, held_a, False)
    print(f"mean-image mse {mean_mse:.4f}; conditioned {cond}; unconditioned {uncond}")
    # Measured (seed 0): mse 0.026 vs 0.300, apex depth error 0.59 vs 6.5 px; with the data and
    # initialisation seeds moved to 1 and 2 the mse ratio was 0.21 and 0.22 and the depth errors
    # 0.69 / 0.61 px vs 2.3 / 3.2 px, so the bounds below hold with room to spare while still
    # asking for a several-fold gain.
    # sigma = 10: without the condition the model can do little better than the mean image ...
    assert uncond["mse"] > 0.5 * mean_mse, (uncond, mean_mse)
    # ... and with it the error is at most about a third of that
    assert cond["mse"] < 0.35 * uncond["mse"], (cond, uncond)
    # generated contours: about a pixel from the truth with the condition (range 4.8 .. 12 px), at
    # least twice that without
    assert cond["depth_px"] < 1.2 and cond["depth_px"] < 0.5 * uncond["depth_px"], (cond, uncond)
