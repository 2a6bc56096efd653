"""The talk recipe reads a Hugging Face wav2vec2 folder laid out like facebook/wav2vec2-base (a
Wav2Vec2ForPreTraining checkpoint: "wav2vec2."-prefixed weights, quantizer and projections, and a
preprocessor_config.json) with its real weights, not a fresh initialisation."""

import json

import pytest
import torch

from a2v.config import replace
from a2v.errors import MissingWeightsError


@pytest.fixture(scope="module")
def pretraining_dir(tmp_path_factory):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForPreTraining

    folder = tmp_path_factory.mktemp("w2v_base_layout") / "wav2vec2-base"
    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                         feat_extract_norm="group", do_stable_layer_norm=False, codevector_dim=8, proj_codevector_dim=8,
                         num_codevectors_per_group=4, architectures=["Wav2Vec2ForPreTraining"])
    torch.manual_seed(0)
    model = Wav2Vec2ForPreTraining(cfg).eval()
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(folder)
    return folder, model


def test_folder_layout_is_the_hub_one(pretraining_dir):
    from safetensors import safe_open

    folder, _ = pretraining_dir
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["Wav2Vec2ForPreTraining"]
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "wav2vec2.encoder.layers.0.attention.k_proj.weight" in keys and "quantizer.codevectors" in keys
    assert (folder / "preprocessor_config.json").is_file()


def test_talk_speech_encoder_loads_the_folder_weights(pretraining_dir, tiny_cfg):
    from a2v.recipes.talk.train import build_speech_encoder, encode_speech

    folder, model = pretraining_dir
    enc = build_speech_encoder(replace(tiny_cfg, [f"audio.encoder={folder}"]))
    wav = torch.randn(16000)  # 1 s
    feats = encode_speech(enc, wav)
    assert feats.shape == (49, 16) and enc.frame_rate_hz == 50.0
    x = (wav - wav.mean()) / torch.sqrt(wav.var(unbiased=False) + 1e-7)  # the feature extractor's normalisation
    with torch.no_grad():
        ref = model.wav2vec2(x[None]).last_hidden_state[0]  # (T,16) of the saved weights
    torch.testing.assert_close(feats, ref, rtol=1e-4, atol=1e-4)


def test_folder_without_weights_names_it(pretraining_dir, tiny_cfg, tmp_path):
    from a2v.recipes.talk.train import build_speech_encoder

    folder, _ = pretraining_dir
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (bare / name).write_text((folder / name).read_text())
    with pytest.raises(MissingWeightsError, match="bare"):
        build_speech_encoder(replace(tiny_cfg, [f"audio.encoder={bare}"]))
