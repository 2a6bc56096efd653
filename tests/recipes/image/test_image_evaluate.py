"""Evaluation pieces without models: zero-shot classification, trial pairs."""

from __future__ import annotations

import pytest
import torch

from a2v.errors import ConfigError
from a2v.recipes.image.evaluate import pick_pairs, zero_shot_accuracy
from a2v.recipes.image.towers import TinyTower


class TextTower:
    """A stand-in tower whose text side maps 'the sound of <class>' to a fixed unit vector per class."""

    has_text = True
    vectors = {"bell": [1.0, 0.0, 0.0], "drum": [0.0, 1.0, 0.0], "rain": [0.0, 0.0, 1.0]}

    def encode_text(self, texts):
        return torch.tensor([self.vectors[t.removeprefix("the sound of ")] for t in texts])


def test_zero_shot_accuracy_counts_argmax_over_prompts():
    audio = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.8, 0.1], [0.9, 0.0, 0.2], [0.0, 0.1, 0.7]])
    labels = ["bell", "drum", "rain", "rain"]  # the third is classified 'bell': 3 of 4 right
    assert zero_shot_accuracy(audio, labels, TextTower(), "the sound of {}") == pytest.approx(0.75)
    assert zero_shot_accuracy(audio, ["bell"] * 4, TextTower(), "the sound of {}") is None  # one class
    tiny = TinyTower(8, 16)
    assert zero_shot_accuracy(audio, labels, tiny, "{}") is None  # no text side
    with pytest.raises(ConfigError, match="no text tower"):
        tiny.encode_text(["x"])


def test_pick_pairs_different_classes_seeded():
    labels = ["a", "a", "b", "b", "c"]
    pairs = pick_pairs(labels, 100, seed=0)
    assert len(pairs) == 8 and all(labels[i] != labels[j] for i, j in pairs)  # 10 pairs minus 2 same-class
    assert pick_pairs(labels, 3, seed=0) == pairs[:3] and len(set(pick_pairs(labels, 3, seed=1))) == 3
    assert len(pick_pairs(["x"] * 4, 10)) == 6  # one class only: any two different items
