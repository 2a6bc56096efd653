"""Evaluation pieces without trained models: zero-shot classification, trial pairs, study page, independent judge."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from a2v.errors import ConfigError, InputError
from a2v.recipes.image.config import EvalConfig, ImageConfig, TowerConfig
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


def test_study_page_three_answers_and_scoring(tmp_path):
    from a2v.recipes.image.evaluate import score_study, write_study_page

    class Pairs:
        rows = [{"id": "a"}, {"id": "b"}]

        def load(self, i):
            return np.zeros(1600, np.float32), None

    pics = [tmp_path / "pictures" / f"{n}.png" for n in ("a", "b", "a_baseline", "b_baseline")]
    pics[0].parent.mkdir()
    for i, p in enumerate(pics):
        p.write_bytes(bytes([i]) * 8)  # stand-in picture files, told apart by content
    page = write_study_page(tmp_path, Pairs(), [(0, pics[0], pics[2]), (1, pics[1], pics[3])], seed=3).read_text()
    key = json.loads((tmp_path / "study" / "key.json").read_text())
    assert page.count("<audio") == 2 and page.count("<img") == 4
    assert "baseline" not in page and '"sounds/a.wav"' not in page and "../pictures" not in page  # blind names
    for t, (cand, alt) in enumerate(((pics[0], pics[2]), (pics[1], pics[3]))):
        shown = [(tmp_path / "study" / "pictures" / f"t{t}_{n}.png").read_bytes() for n in (1, 2)]
        assert shown[key[t]["candidate"] - 1] == cand.read_bytes() and shown[2 - key[t]["candidate"]] == alt.read_bytes()
        assert f'src="pictures/t{t}_1.png"' in page and (tmp_path / "study" / "sounds" / f"t{t}.wav").is_file()
    for t in range(2):  # every trial offers picture 1, picture 2 and neither
        assert all(f'name="t{t}" value="{v}"' in page for v in "120")
    assert [k["candidate_picture"] for k in key] == ["a.png", "b.png"] and {k["candidate"] for k in key} <= {1, 2}
    c0, c1 = key[0]["candidate"], key[1]["candidate"]
    alice = {"t0": c0, "t1": 3 - c1}  # trial 0: the candidate (Positive); trial 1: the other picture (Negative)
    bob = {"t0": 0}  # neither; trial 1 unanswered
    res = score_study([alice, bob], key)
    assert res == {"positive": pytest.approx(1 / 3), "negative": pytest.approx(1 / 3), "neither": pytest.approx(1 / 3),
                   "answers": 3.0}
    with pytest.raises(InputError, match="expected 1, 2 or 0"):
        score_study({"t0": 5}, key)
    with pytest.raises(InputError, match="no answered trials"):
        score_study({}, key)


def test_judge_is_independent_of_the_guide_and_reads_real_pictures(tmp_path):
    from a2v.recipes.image.evaluate import build_judge, judged_two_alternative
    from a2v.video import write_png

    class Pairs:
        """Two real pictures: a red and a blue square."""

        rows = [{"id": "r"}, {"id": "b"}]
        images = [torch.zeros(3, 16, 16), torch.zeros(3, 16, 16)]
        images[0][0], images[1][2] = 1.0, 1.0

        def __getitem__(self, i):
            return {"image": self.images[i]}

    red, blue = np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16, 3), np.uint8)
    red[..., 0], blue[..., 2] = 230, 230  # generated pictures close to their own pair's real picture
    pr, pb = write_png(tmp_path / "r.png", red), write_png(tmp_path / "b.png", blue)
    judge = TinyTower(16, 16, seed=1)
    assert judged_two_alternative(judge, Pairs(), [(0, 1)], {0: pr, 1: pb}) == 1.0
    assert judged_two_alternative(judge, Pairs(), [(0, 1)], {0: pb, 1: pr}) == 0.0  # swapped pictures: both wrong

    class Pipe:
        cfg = ImageConfig(tower=TowerConfig(kind="tiny"), eval=EvalConfig(judge=TowerConfig(kind="tiny")))
        device = "cpu"

    with pytest.raises(ConfigError, match="tower that guided generation"):
        build_judge(Pipe())
    Pipe.cfg = ImageConfig(tower=TowerConfig(kind="tiny"), eval=EvalConfig(judge=TowerConfig(kind="tiny", tiny_seed=1)))
    assert build_judge(Pipe()).cache_id.endswith("seed1")
    Pipe.cfg = ImageConfig(tower=TowerConfig(kind="tiny"))
    assert build_judge(Pipe()) is None  # no judge configured: the automated test is skipped, never self-judged


def test_score_study_cli(tmp_path, capsys):
    from a2v.cli import main

    key = [{"trial": 0, "candidate": 2}, {"trial": 1, "candidate": 1}]
    (tmp_path / "key.json").write_text(json.dumps(key))
    (tmp_path / "a.json").write_text(json.dumps({"t0": 2, "t1": 0}))
    assert main(["image", "score-study", str(tmp_path / "a.json"), "-k", str(tmp_path / "key.json")]) == 0
    assert "positive 0.500  negative 0.000  neither 0.500  (2 answers)" in "".join(capsys.readouterr())
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["image", "score-study", str(tmp_path / "bad.json"), "-k", str(tmp_path / "key.json")]) == 2
    assert capsys.readouterr().err.startswith("error: study file is not JSON")
    (tmp_path / "bin.json").write_bytes(b"RIFF\xd8\xff\x00")  # not even text
    assert main(["image", "score-study", str(tmp_path / "bin.json"), "-k", str(tmp_path / "key.json")]) == 2
    assert capsys.readouterr().err.startswith("error: study file is not JSON")
