from __future__ import annotations

import pytest
import torch

from a2v.encoders import TextEncoder
from a2v.errors import InputError, MissingWeightsError


def test_encode_shapes_mask_and_reference(bert_dir):
    from transformers import AutoModel, AutoTokenizer

    enc = TextEncoder.from_pretrained(bert_dir)
    assert all(not p.requires_grad for p in enc.model.parameters())
    emb, mask = enc.encode(["hello world", "good mornings"])
    # [CLS] hello world [SEP] / [CLS] good morning ##s [SEP]
    assert emb.shape == (2, 5, 32) and emb.dtype == torch.float32
    assert mask.dtype == torch.bool and mask.tolist() == [[True] * 4 + [False], [True] * 5]
    assert torch.all(emb[0, 4] == 0)  # padded position zeroed
    tok, model = AutoTokenizer.from_pretrained(bert_dir), AutoModel.from_pretrained(bert_dir).eval()
    with torch.no_grad():
        ref = model(**tok(["hello world"], return_tensors="pt")).last_hidden_state
    torch.testing.assert_close(emb[0, :4], ref[0], atol=1e-5, rtol=1e-5)  # padding does not leak


def test_chinese_characters_and_layer(bert_dir):
    enc = TextEncoder.from_pretrained(bert_dir, layer=0)
    emb, mask = enc(["你们好", "你"])
    assert emb.shape == (2, 5, 32) and mask.sum(1).tolist() == [5, 3]  # one token per CJK character
    assert enc.encode("hello")[0].shape == (1, 3, 32)


def test_unfrozen_gets_gradients_and_errors(bert_dir):
    enc = TextEncoder.from_pretrained(bert_dir, freeze=False)
    enc.encode(["hello"])[0].sum().backward()
    assert enc.model.embeddings.word_embeddings.weight.grad is not None
    with pytest.raises(InputError):
        enc.encode([])


def test_missing_text_weights(offline_hub):
    with pytest.raises(MissingWeightsError) as e:
        TextEncoder.from_pretrained("bert-base-chinese")
    assert "'bert-base-chinese' not found locally" in str(e.value) and "--set text.encoder=" in str(e.value)
