"""SyncNet LSE-D / LSE-C: network shapes, state-dict loading, calc_pdist numerics, offset recovery."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a2v.errors import InputError, MissingWeightsError
from a2v.metrics.syncnet import (
    SyncNet,
    crop_face,
    load_syncnet,
    smooth_boxes,
    sync_distances,
    sync_scores,
    syncnet_mfcc,
)


def _upstream_calc_pdist(feat1: np.ndarray, feat2: np.ndarray, vshift: int) -> np.ndarray:
    """Line-by-line numpy transcription of joonson/syncnet_python calc_pdist (torch pairwise_distance eps 1e-6)."""
    win = vshift * 2 + 1
    feat2p = np.pad(feat2, ((vshift, vshift), (0, 0)))
    dists = []
    for i in range(len(feat1)):
        a = np.repeat(feat1[[i], :], win, axis=0)
        dists.append(np.sqrt(((a - feat2p[i : i + win, :] + 1e-6) ** 2).sum(1)))
    return np.stack(dists)  # (N,2v+1)


def test_network_output_shapes():
    torch.manual_seed(0)
    net = SyncNet().eval()
    with torch.no_grad():
        a = net.forward_aud(torch.randn(3, 1, 13, 20))
        v = net.forward_lip(torch.rand(2, 3, 5, 224, 224) * 255)
    assert a.shape == (3, 1024) and v.shape == (2, 1024)
    assert torch.isfinite(a).all() and torch.isfinite(v).all()


def test_state_dict_round_trip(tmp_path):
    torch.manual_seed(0)
    net = SyncNet()
    for m in net.modules():  # non-default BatchNorm statistics so that a lost buffer would show
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    state = net.state_dict()
    legacy = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # old torch files
    torch.save(legacy, tmp_path / "syncnet_v2.model")
    loaded = load_syncnet(tmp_path / "syncnet_v2.model")
    assert not loaded.training
    for k, v in legacy.items():
        assert torch.equal(loaded.state_dict()[k], v), k
    # prefixed keys of the upstream wrapper (SyncNetInstance.__S__) load too
    torch.save({"__S__." + k: v for k, v in legacy.items()}, tmp_path / "wrapped.model")
    x = torch.randn(2, 1, 13, 20)
    with torch.no_grad():
        assert torch.allclose(
            load_syncnet(tmp_path / "wrapped.model").forward_aud(x), net.eval().forward_aud(x)
        )


def test_wrong_key_is_a_clear_error(tmp_path):
    state = SyncNet().state_dict()
    state["netcnnaud.99.weight"] = torch.zeros(1)
    del state["netfclip.0.bias"]
    torch.save(state, tmp_path / "bad.model")
    with pytest.raises(
        InputError, match=r"unexpected keys netcnnaud\.99\.weight.*missing keys netfclip\.0\.bias"
    ):
        load_syncnet(tmp_path / "bad.model")


def test_pickled_model_is_refused_with_resave_hint(tmp_path):
    torch.save(SyncNet(fc_dim=8), tmp_path / "whole.model")
    with pytest.raises(InputError, match="re-save its state_dict"):
        load_syncnet(tmp_path / "whole.model")


def test_missing_weights_error_names_the_file(tmp_path):
    with pytest.raises(MissingWeightsError, match="nope_syncnet_v2.model"):
        load_syncnet(tmp_path / "nope_syncnet_v2.model")


@pytest.mark.parametrize("vshift", [3, 15])
def test_distances_match_upstream_calc_pdist(vshift):
    rng = np.random.default_rng(1)
    lip = rng.standard_normal((12, 16)).astype(np.float32)
    aud = rng.standard_normal((12, 16)).astype(np.float32)
    ref = _upstream_calc_pdist(lip.astype(np.float64), aud.astype(np.float64), vshift)
    ours = sync_distances(torch.from_numpy(lip), torch.from_numpy(aud), vshift).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    mdist = ref.mean(0)
    res = sync_scores(torch.from_numpy(lip), torch.from_numpy(aud), vshift)
    assert res["lse_d"] == pytest.approx(mdist.min(), rel=1e-5)
    assert res["lse_c"] == pytest.approx(np.median(mdist) - mdist.min(), rel=1e-4, abs=1e-5)
    assert res["offset_frames"] == vshift - int(mdist.argmin())


@pytest.mark.parametrize("k", [-4, 0, 3])
def test_known_offset_is_recovered(k):
    """Lips lagging the sound by k frames: lip[i] = aud[i - k] -> offset k, distance ~ 0 there."""
    rng = np.random.default_rng(2)
    n, pad = 40, 6
    base = rng.standard_normal((n + 2 * pad, 32)).astype(np.float32)
    aud = base[pad : pad + n]
    lip = base[pad - k : pad - k + n]  # lip[i] = aud[i - k]
    res = sync_scores(torch.from_numpy(lip), torch.from_numpy(aud), vshift=15)
    assert res["offset_frames"] == k
    # at the true offset only the |k| rows compared with zero padding are off
    assert res["lse_d"] < 0.5 * np.median(res["mean_dists"])
    assert res["lse_c"] > 3.0


def test_mfcc_frames_and_energy_coefficient():
    sr = 16000
    t = np.arange(int(0.5 * sr) + 37) / sr
    x = 8000 * np.sin(2 * np.pi * 440 * t)
    m = syncnet_mfcc(x, sr)
    assert m.shape == (13, 1 + int(np.ceil((len(x) - 400) / 160)))
    m2 = syncnet_mfcc(2 * x, sr)  # c0 is the log frame energy: x2 amplitude -> + log 4; c1.. unchanged
    np.testing.assert_allclose(m2[0] - m[0], np.log(4.0), atol=1e-4)
    np.testing.assert_allclose(m2[1:], m[1:], atol=1e-3)


def test_mfcc_matches_python_speech_features():
    psf = pytest.importorskip("python_speech_features")
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(16000 + 321) * 3000).astype(np.int16)
    np.testing.assert_allclose(syncnet_mfcc(x, 16000), psf.mfcc(x, 16000).T, atol=1e-4, rtol=1e-5)


def test_face_crop_geometry_matches_run_pipeline():
    import cv2

    rng = np.random.default_rng(4)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = np.tile(np.array([[60.0, 30.0, 100.0, 80.0]]), (20, 1))  # (F,4) x0,y0,x1,y1
    (cx, cy, s) = smooth_boxes(boxes)[10]
    assert (cx, cy, s) == (80.0, 55.0, 25.0)
    # run_pipeline.py crop_video, transcribed
    bsi = int(s * 1.8)
    padded = np.pad(frame, ((bsi, bsi), (bsi, bsi), (0, 0)), "constant", constant_values=(110, 110))
    my, mx = cy + bsi, cx + bsi
    ref = cv2.resize(
        padded[int(my - s) : int(my + s * 1.8), int(mx - s * 1.4) : int(mx + s * 1.4)], (224, 224)
    )
    np.testing.assert_array_equal(crop_face(frame, cx, cy, s), ref)
    # a face at the border is padded with grey 110
    edge = crop_face(frame, 5.0, 5.0, 25.0)
    assert edge.shape == (224, 224, 3) and (edge[:20, :20] == 110).all()


def test_video_without_face_is_a_clear_error(tmp_path):
    from a2v.metrics.syncnet import lse_scores
    from a2v.video import write_video

    frames = [np.full((64, 64, 3), 128, np.uint8)] * 10
    write_video(tmp_path / "blank.mp4", frames, fps=25, audio=np.zeros(6400, np.float32))
    with pytest.raises(InputError, match="no face found"):
        lse_scores(tmp_path / "blank.mp4", SyncNet().eval(), progress=False, detect_every_frames=5)


@pytest.mark.slow
def test_lse_scores_on_a_grid_clip(grid_clips):
    """Full path on real video with random weights: face track, crops, MFCC, windows, scores."""
    from a2v.metrics.syncnet import lse_scores

    torch.manual_seed(0)
    res = lse_scores(grid_clips[0], SyncNet().eval(), vshift=15, progress=False, detect_every_frames=10)
    assert set(res) == {"lse_d", "lse_c", "offset_frames", "lse_n_frames", "lse_face_frames", "lse_windows"}
    assert 70 <= res["lse_n_frames"] <= 75  # 3 s at 25 fps, cut to the audio length
    assert res["lse_face_frames"] == res["lse_n_frames"]
    assert res["lse_windows"] == res["lse_n_frames"] - 5
    assert -15 <= res["offset_frames"] <= 15
    assert res["lse_d"] > 0 and res["lse_c"] >= 0
