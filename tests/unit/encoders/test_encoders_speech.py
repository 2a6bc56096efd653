from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from a2v.encoders import SpeechEncoder, available_weights, num_frames
from a2v.encoders.speech import conv_geometry
from a2v.errors import ConfigError, InputError, MissingWeightsError


def _wave(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(*shape, generator=g)  # float32 noise in about [-0.5, 0.5]


def test_frame_formula_closed_form():
    assert conv_geometry((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)) == (400, 320)
    assert [num_frames(s) for s in (0, 399, 400, 719, 720, 16000, 16001)] == [0, 0, 1, 1, 2, 49, 49]
    assert num_frames(10 * 60 * 16000) == 29999  # 10 minutes at 50 Hz (last partial window dropped)


@pytest.mark.parametrize("kind", ["wav2vec2", "wavlm", "hubert"])
def test_load_by_path_shapes_and_frame_count(speech_dirs, kind):
    enc = SpeechEncoder.from_pretrained(speech_dirs[kind])
    assert enc.frame_rate_hz == 50.0 and (enc.receptive_field, enc.hop) == (400, 320)
    assert type(enc.backbone).__name__.lower().startswith(kind)
    with torch.no_grad():
        for s in (400, 719, 720, 3211):
            out = enc(_wave(2, s))  # (B,S)->(B,T,D)
            assert out.shape == (2, (s - 400) // 320 + 1, 32)
            ref = enc.backbone._get_feat_extract_output_lengths(torch.tensor(s))
            assert out.shape[1] == int(ref) == enc.num_frames(s)
        assert enc(_wave(800)).shape == (2, 32)  # 1-D input -> (T,D)


def test_matches_transformers_feature_extractor_and_model(speech_dirs):
    from transformers import AutoFeatureExtractor, AutoModel

    folder = speech_dirs["wav2vec2"]
    enc = SpeechEncoder.from_pretrained(folder)
    fe = AutoFeatureExtractor.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    wav = 0.3 + _wave(1, 4000, seed=1)  # offset: normalisation matters
    inputs = fe(wav[0].numpy(), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        ref = model(inputs.input_values, output_hidden_states=True)
        torch.testing.assert_close(enc(wav), ref.last_hidden_state, atol=1e-4, rtol=1e-4)
        enc1 = SpeechEncoder.from_pretrained(folder, layer=1)
        torch.testing.assert_close(enc1(wav), ref.hidden_states[1], atol=1e-4, rtol=1e-4)


def test_hidden_states_are_the_reference_layers_with_a_frame_mask(speech_dirs):
    from transformers import AutoFeatureExtractor, AutoModel

    folder = speech_dirs["wav2vec2"]
    enc = SpeechEncoder.from_pretrained(folder)
    fe = AutoFeatureExtractor.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    wav = 0.3 + _wave(1, 4000, seed=1)
    with torch.no_grad():
        ref = model(fe(wav[0].numpy(), sampling_rate=16000, return_tensors="pt").input_values, output_hidden_states=True)
        states, keep = enc.hidden_states(torch.cat([wav, wav]), torch.tensor([4000, 1000]))
    L = model.config.num_hidden_layers
    assert states.shape == (L + 1, 2, enc.num_frames(4000), 32)
    torch.testing.assert_close(states[:, 0], torch.stack(ref.hidden_states)[:, 0], atol=1e-4, rtol=1e-4)
    assert keep[0].all() and keep[1].sum() == enc.num_frames(1000)
    with pytest.raises(InputError, match="too short"):
        enc.hidden_states(torch.zeros(1, 100))


def test_weighted_sum_trains_with_frozen_backbone(speech_dirs):
    enc = SpeechEncoder.from_pretrained(speech_dirs["wavlm"], layer="weighted")
    assert enc.layer_weights is not None and enc.layer_weights.shape == (3,)  # CNN output + 2 layers
    assert all(not p.requires_grad for p in enc.backbone.parameters())
    enc.train()
    assert not enc.backbone.training  # frozen backbone stays in eval mode
    with torch.no_grad():
        enc.layer_weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
    wav = _wave(2, 2000)
    out = enc(wav)  # (B,S)->(B,T,D)
    # reference: softmax-weighted sum of the backbone's hidden states
    with torch.no_grad():
        hs = enc.backbone(enc._normalize(wav, torch.ones_like(wav)), output_hidden_states=True).hidden_states
        ref = sum(w * h for w, h in zip(torch.softmax(enc.layer_weights, 0), hs, strict=True))
    torch.testing.assert_close(out.detach(), ref, atol=1e-5, rtol=1e-5)
    (out**2).mean().backward()
    assert enc.layer_weights.grad is not None and enc.layer_weights.grad.abs().sum() > 0
    assert all(p.grad is None for p in enc.backbone.parameters())


def test_unfrozen_backbone_gets_gradients(speech_dirs):
    enc = SpeechEncoder.from_pretrained(speech_dirs["hubert"], freeze=False)
    enc(_wave(1, 1200)).sum().backward()
    assert enc.backbone.encoder.layers[-1].feed_forward.output_dense.weight.grad is not None


def test_lengths_padding_and_attention_mask(layernorm_speech_dir):
    enc = SpeechEncoder.from_pretrained(layernorm_speech_dir)
    assert enc.use_attention_mask
    a, b = _wave(1, 3200, seed=2), _wave(1, 2000, seed=3)
    batch = torch.zeros(2, 3200)
    batch[0], batch[1, :2000] = a[0], b[0]
    with torch.no_grad():
        out = enc(batch, lengths=torch.tensor([3200, 2000]))  # (2,S)->(2,T,D)
        alone = enc(b)  # (1,2000)->(1,T_b,D)
    tb = num_frames(2000)
    assert out.shape == (2, num_frames(3200), 32)
    torch.testing.assert_close(out[1, :tb], alone[0], atol=1e-4, rtol=1e-4)
    assert torch.all(out[1, tb:] == 0)  # frames past the item's length are zero
    assert enc.frame_lengths(torch.tensor([3200, 2000])).tolist() == [num_frames(3200), tb]


def test_chunked_long_audio_matches_full_pass(tmp_path, make_speech_model):
    # No transformer layer: the only context is the CNN and the 16-frame positional conv,
    # so windows with >= 8 frames of context on each side reproduce the full pass exactly.
    folder = make_speech_model(tmp_path / "w2v0", "wav2vec2", num_hidden_layers=0, feat_extract_norm="layer")
    full = SpeechEncoder.from_pretrained(folder)
    chunked = SpeechEncoder.from_pretrained(folder, chunk_s=0.5, overlap_s=0.2, progress=False)
    wav = _wave(2, 16000 * 3 + 123)
    with torch.no_grad():
        ref, out = full(wav), chunked(wav)
    assert out.shape == ref.shape == (2, num_frames(16000 * 3 + 123), 32)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    chunked.overlap_s = 0.0  # without context the chunk edges differ: the overlap is what matters
    with torch.no_grad():
        assert not torch.allclose(chunked(wav), ref, atol=1e-4)


def test_bad_inputs(speech_dirs, bert_dir):
    enc = SpeechEncoder.from_pretrained(speech_dirs["wav2vec2"])
    with pytest.raises(InputError, match="too short"):
        enc(torch.zeros(1, 399))
    with pytest.raises(ConfigError, match="layer"):
        SpeechEncoder.from_pretrained(speech_dirs["wav2vec2"], layer=7)
    with pytest.raises(ConfigError, match="not a wav2vec2"):
        SpeechEncoder.from_pretrained(bert_dir)


def test_missing_weights_offline_is_one_line_and_needs_no_network(offline_hub, monkeypatch):
    import transformers

    def never(*a, **k):
        raise AssertionError("transformers should not be asked to load an absent model")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", never)
    with pytest.raises(MissingWeightsError) as e:
        SpeechEncoder.from_pretrained("facebook/wav2vec2-base")
    msg = str(e.value)
    assert "\n" not in msg and "'facebook/wav2vec2-base' not found locally" in msg
    assert "--set audio.encoder=/models/wav2vec2-base" in msg


def test_missing_weights_online_env_without_hub(tmp_path, monkeypatch):
    import a2v.encoders._hub as hub

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    probes = []
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout_s=2.0: probes.append(timeout_s) or False)
    with pytest.raises(MissingWeightsError, match="microsoft/wavlm-base-plus"):
        SpeechEncoder.from_pretrained("microsoft/wavlm-base-plus")
    assert probes == [2.0]  # one short probe, then the error
    with pytest.raises(MissingWeightsError):
        SpeechEncoder.from_pretrained("microsoft/wavlm-base-plus", allow_download=False)
    assert probes == [2.0]


def test_missing_folder_and_missing_weight_file(tmp_path, speech_dirs):
    with pytest.raises(MissingWeightsError, match="does not exist"):
        SpeechEncoder.from_pretrained(tmp_path / "nope" / "wav2vec2")
    partial = tmp_path / "config-only"
    partial.mkdir()
    shutil.copy(speech_dirs["wav2vec2"] / "config.json", partial / "config.json")
    with pytest.raises(MissingWeightsError, match="no weight file"):
        SpeechEncoder.from_pretrained(partial)


def test_hub_id_found_in_hf_cache(offline_hub, speech_dirs):
    repo = offline_hub / "models--facebook--wav2vec2-base"
    shutil.copytree(speech_dirs["wav2vec2"], repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    weights = available_weights({"mine": speech_dirs["hubert"], "gone": "/no/such/model"})
    assert weights["facebook/wav2vec2-base"] and weights["mine"]
    assert not weights["gone"] and not weights["microsoft/wavlm-base-plus"] and not weights["openai/whisper-small"]
    enc = SpeechEncoder.from_pretrained("facebook/wav2vec2-base")
    ref = SpeechEncoder.from_pretrained(speech_dirs["wav2vec2"])
    wav = _wave(1, 1600)
    with torch.no_grad():
        torch.testing.assert_close(enc(wav), ref(wav))


def test_encode_file_uses_cache(tmp_path, speech_dirs):
    import soundfile as sf

    from a2v.encoders import FeatureCache

    path = tmp_path / "speech.wav"
    sf.write(path, _wave(8000).numpy(), 16000, subtype="FLOAT")
    enc = SpeechEncoder.from_pretrained(speech_dirs["wav2vec2"], layer="weighted")
    cache = FeatureCache(tmp_path / "cache")
    a = enc.encode_file(path, cache)
    b = enc.encode_file(path, cache)
    assert a.shape == (num_frames(8000), 32) and a.dtype == np.float32
    assert (cache.misses, cache.hits) == (1, 1) and np.array_equal(a, b)
    with torch.no_grad():
        enc.layer_weights.add_(1.0 * torch.arange(3))  # new learned weights: a new entry
    c = enc.encode_file(path, cache)
    assert cache.misses == 2 and not np.allclose(a, c)


def test_default_chunking_above_30_seconds(speech_dirs):
    enc = SpeechEncoder.from_pretrained(speech_dirs["wav2vec2"], progress=False)
    assert enc.chunk_s == 30.0
    passes = []
    inner = enc._encode
    enc._encode = lambda x, m: passes.append(x.shape[1]) or inner(x, m)  # count backbone passes
    with torch.no_grad():
        assert enc(_wave(1, 16000 * 20)).shape == (1, num_frames(16000 * 20), 32)
        assert len(passes) == 1
        assert enc(_wave(1, 16000 * 31)).shape == (1, num_frames(16000 * 31), 32)
    assert len(passes) == 3 and max(passes) <= 16000 * 32 + 400  # 30 s + 1 s context windows
