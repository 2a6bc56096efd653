"""Evaluation of the ``image`` recipe on held-out pairs.

1. Audio -> image retrieval: R@1/5/10 and median rank (cosine, :mod:`a2v.metrics`), WavBriVL sec. 4.2.
2. Zero-shot audio classification through the tower's text side (Wav2CLIP, Wu et al. 2022 sec. 4.2):
   prompt ``eval.prompt_template`` per class (the pair's folder name), accuracy of argmax cosine.
3. Automated two-alternative test: for pairs of sounds of different classes, a picture is generated
   for each; a trial is right when an independent judge tower (``eval.judge``, never the tower that
   guided generation) embeds the picture closer to its own pair's real picture than to the other's.
4. The people's study (WavBriVL sec. 4.3): :func:`write_study_page` shows a sound and two pictures (the
   candidate and an alternative, e.g. the Wav2CLIP baseline's picture of the same sound); answers are
   scored as the paper's Positive / Negative / Neither by :func:`score_study`.
"""

from __future__ import annotations

import html
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from a2v.errors import InputError
from a2v.io import write_json_atomic, write_text_atomic
from a2v.metrics import cosine_similarity_matrix
from a2v.recipes.image.data import EmbeddedPairs, PairDataset
from a2v.recipes.image.pipeline import ImagePipeline
from a2v.recipes.image.train import cached_image_embeddings, embed_audio_dataset, retrieval_metrics


def zero_shot_accuracy(audio_emb: torch.Tensor, labels: list[str], tower: Any, template: str) -> float | None:
    """Accuracy in [0,1] of classifying (N,E) audio embeddings among the distinct ``labels`` by text prompts;
    None when the tower has no text side or there are fewer than 2 classes."""
    classes = sorted(set(labels))
    if not getattr(tower, "has_text", False) or len(classes) < 2:
        return None
    text = tower.encode_text([template.format(c) for c in classes]).cpu()  # (C,E)
    pred = cosine_similarity_matrix(audio_emb, text).argmax(1)  # (N,C)->(N,)
    truth = torch.tensor([classes.index(c) for c in labels])  # (N,)
    return float((pred == truth).double().mean())


def pick_pairs(labels: list[str], n: int, seed: int = 0) -> list[tuple[int, int]]:
    """Up to ``n`` distinct index pairs (i, j) with different labels (all labels equal: any i != j)."""
    rng = random.Random(seed)
    cand = [(i, j) for i in range(len(labels)) for j in range(i + 1, len(labels))
            if labels[i] != labels[j] or len(set(labels)) == 1]
    rng.shuffle(cand)
    return cand[:n]


def generate_pictures(pipe: ImagePipeline, pairs: PairDataset, audio_emb: torch.Tensor, items: list[int], steps: int,
                      out_dir: Path, progress: bool = True, tag: str = "") -> dict[int, Path]:
    """One picture per item (guided by ``pipe.tower``), written to ``out_dir/pictures/<id><tag>.png``."""
    from tqdm.auto import tqdm

    from a2v.recipes.image.generate.vqgan import optimise_latents
    from a2v.video import write_png

    pics: dict[int, Path] = {}
    for i in tqdm(items, desc="pictures", disable=not progress):
        with torch.enable_grad():
            pic, _ = optimise_latents(pipe.vq, pipe.tower, audio_emb[i], pipe.cfg.generate, steps=steps, progress=False)
        pics[i] = write_png(out_dir / "pictures" / f"{pairs.rows[i]['id']}{tag}.png", pic)
    return pics


def _load_pictures(paths: list[Path]) -> torch.Tensor:
    """PNG files -> float32 (B,3,H,W) in [0,1]."""
    from a2v.video import load_image

    return torch.stack([torch.from_numpy(np.array(load_image(p))).permute(2, 0, 1).float() / 255.0 for p in paths])


@torch.no_grad()
def judged_two_alternative(judge: Any, pairs: PairDataset, trials: list[tuple[int, int]], pics: dict[int, Path]
                           ) -> float:
    """Fraction in [0,1] of right choices (2 per trial) by an independent ``judge`` tower: the picture generated
    from sound i is right when the judge embeds it closer (cosine) to pair i's real picture than to pair j's."""
    right = 0
    for i, j in trials:
        gen = judge.encode_image(_load_pictures([pics[i], pics[j]])).cpu()  # (2,3,H,W)->(2,D)
        real = judge.encode_image(torch.stack([pairs[i]["image"], pairs[j]["image"]])).cpu()  # (2,D)
        s = cosine_similarity_matrix(gen, real)  # (2,2)
        right += int(s[0, 0] > s[0, 1]) + int(s[1, 1] > s[1, 0])
    return right / (2 * len(trials))


def write_study_page(out_dir: Path, pairs: PairDataset, trials: list[tuple[int, Path, Path]], seed: int = 0,
                     question: str = "Which picture fits the sound better?") -> Path:
    """``study/index.html``: per trial one sound and two pictures side by side in random order; the person answers
    picture 1, picture 2 or neither, and downloads the answers as JSON. ``trials``: (pair index, candidate
    picture, alternative picture). Sounds and pictures are copied under blind names (``sounds/t3.wav``,
    ``pictures/t3_1.png``), so no file name tells which picture is the sound's own or the baseline's. ``study/key.json`` says which side is the candidate, so
    :func:`score_study` turns answers into the paper's Positive (candidate chosen) / Negative (alternative
    chosen) / Neither."""
    import shutil

    from a2v.audio import save_audio

    rng = random.Random(seed)
    d = out_dir / "study"
    (d / "pictures").mkdir(parents=True, exist_ok=True)
    rows, key = [], []
    for t, (k, cand, alt) in enumerate(trials):
        sid = pairs.rows[k]["id"]
        wav, _ = pairs.load(k)
        save_audio(d / "sounds" / f"t{t}.wav", wav, 16000)  # blind names: no sound id, no "_baseline"
        swap = rng.random() < 0.5
        left, right = (alt, cand) if swap else (cand, alt)
        key.append({"trial": t, "sound": sid, "candidate": 2 if swap else 1, "candidate_picture": cand.name,
                    "alternative_picture": alt.name})
        for n, p in ((1, left), (2, right)):
            shutil.copyfile(p, d / "pictures" / f"t{t}_{n}{p.suffix}")
        imgs = "".join(f'<figure><img src="pictures/t{t}_{n}{html.escape(p.suffix)}" width="256">'
                       f"<figcaption>picture {n}</figcaption></figure>" for n, p in ((1, left), (2, right)))
        radios = "".join(f'<label><input type="radio" name="t{t}" value="{v}"> {lab}</label> '
                         for v, lab in (("1", "picture 1"), ("2", "picture 2"), ("0", "neither")))
        rows.append(f'<section><h3>Trial {t + 1}</h3><p>Sound <audio controls src="sounds/t{t}.wav">'
                    f'</audio></p><div class="pics">{imgs}</div><p>{html.escape(question)} {radios}</p></section>')
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>Pictures of sounds</title>"
            "<style>body{font-family:sans-serif;max-width:900px;margin:auto}.pics{display:flex;gap:1em}</style>"
            f"</head><body><h1>Pictures of sounds</h1><p>Listen to each sound, then answer: {html.escape(question)} "
            "Choose <i>neither</i> when no picture fits it.</p>" + "".join(rows)
            + "<button onclick=\"const a={};document.querySelectorAll('input:checked').forEach(e=>a[e.name]=+e.value);"
            "const u=URL.createObjectURL(new Blob([JSON.stringify(a)],{type:'application/json'}));"
            "const l=document.createElement('a');l.href=u;l.download='answers.json';l.click();\">"
            "Download answers</button></body></html>")
    write_text_atomic(d / "index.html", page)
    write_json_atomic(d / "key.json", key)
    return d / "index.html"


def score_study(answers: list[dict[str, int]] | dict[str, int], key: list[dict[str, Any]]) -> dict[str, float]:
    """Answers of the study page (one ``{"t0": 1|2|0, ...}`` dict per person) -> fractions in [0,1] of the paper's
    Positive (candidate picture chosen), Negative (the other picture) and Neither, over all answered trials."""
    sheets = [answers] if isinstance(answers, dict) else list(answers)
    counts = {"positive": 0, "negative": 0, "neither": 0}
    for sheet in sheets:
        for k in key:
            a = sheet.get(f"t{k['trial']}")
            if a is None:
                continue
            if a not in (0, 1, 2):
                raise InputError(f"study answer t{k['trial']}={a!r}: expected 1, 2 or 0 (neither)")
            counts["neither" if a == 0 else "positive" if a == k["candidate"] else "negative"] += 1
    n = sum(counts.values())
    if n == 0:
        raise InputError("no answered trials in the study answers")
    return {**{k: v / n for k, v in counts.items()}, "answers": float(n)}


def build_judge(pipe: ImagePipeline) -> Any | None:
    """The judge tower of ``eval.judge`` (None for kind "none"); ConfigError when it is the guiding tower."""
    from a2v.errors import ConfigError
    from a2v.recipes.image.towers import build_tower

    jc = pipe.cfg.eval.judge
    if jc.kind == "none":
        return None
    if jc == pipe.cfg.tower:
        raise ConfigError("eval.judge is the tower that guided generation: set eval.judge to another tower "
                          "(e.g. eval.judge.kind=hf_clip for BriVL-guided pictures)")
    return build_tower(jc, pipe.device)


def evaluate(pipe: ImagePipeline, data_dir: str | Path, out_dir: str | Path, split: str = "val",
             two_afc: bool = True, progress: bool = True, baseline: ImagePipeline | None = None,
             judge: Any | None = None) -> dict[str, Any]:
    """All metrics on ``split`` of a prepared folder; writes ``out_dir/metrics.json`` (+ pictures, study page).

    Two-alternative test: pictures for ``eval.num_2afc_pairs`` pairs of sounds of different classes, scored by
    ``judge`` (default: built from ``eval.judge``; never the guiding tower; skipped when none). Study page:
    with ``baseline`` (e.g. the imported Wav2CLIP pipeline) each sound's picture against the baseline's picture
    of the same sound (Positive = ours chosen); without, against the other sound's picture of the pair.
    """
    from a2v.errors import ConfigError

    cfg = pipe.cfg
    out = Path(out_dir)
    pairs = PairDataset(data_dir, split, cfg.audio.clip_s, train=False)
    if len(pairs) < 2:
        raise InputError(f"{data_dir}: {len(pairs)} '{split}' pairs; evaluation needs at least 2 "
                         "(raise data.val_fraction when preparing, or pass --split all)")
    emb = cached_image_embeddings(pipe.tower, pairs, Path(data_dir) / "cache", progress=progress)  # (N,E)
    data = EmbeddedPairs(pairs, emb)
    metrics: dict[str, Any] = {"split": split, "num_pairs": len(pairs)}
    metrics.update(retrieval_metrics(pipe.audio, data, cfg.eval.ks))
    audio_emb, _ = embed_audio_dataset(pipe.audio, data)  # (N,E)
    labels = [r.get("label", "") for r in pairs.rows]
    acc = zero_shot_accuracy(audio_emb, labels, pipe.tower, cfg.eval.prompt_template)
    if acc is not None:
        metrics["zero_shot_accuracy"] = acc
        metrics["num_classes"] = len(set(labels))
    if two_afc and cfg.eval.num_2afc_pairs > 0:
        judge = judge if judge is not None else build_judge(pipe)
        if judge is not None and judge.cache_id == pipe.tower.cache_id:
            raise ConfigError("the 2AFC judge is the tower that guided generation: give another tower")
        trials = pick_pairs(labels, cfg.eval.num_2afc_pairs, cfg.data.seed)
        items = sorted({i for t in trials for i in t})
        pics = generate_pictures(pipe, pairs, audio_emb, items, cfg.eval.generate_steps, out, progress)
        metrics["two_afc_trials"] = len(trials)
        metrics["two_afc_guide"] = pipe.tower.cache_id
        if judge is not None:
            metrics["two_afc_accuracy"] = judged_two_alternative(judge, pairs, trials, pics)
            metrics["two_afc_judge"] = judge.cache_id
        if baseline is not None:
            b_emb = torch.stack([baseline.embed_audio(pairs.load(i)[0]) for i in items])  # (n,E')
            b_pics = generate_pictures(baseline, pairs, dict(zip(items, b_emb, strict=True)), items,
                                       cfg.eval.generate_steps, out, progress, tag="_baseline")
            study = [(i, pics[i], b_pics[i]) for i in items]
        else:
            study = [t for i, j in trials for t in ((i, pics[i], pics[j]), (j, pics[j], pics[i]))]
        metrics["study_page"] = str(write_study_page(out, pairs, study, cfg.data.seed))
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line per metric, numbers to 4 significant digits."""
    return "\n".join(f"{k}: {v:.4g}" if isinstance(v, float | np.floating) else f"{k}: {v}"
                     for k, v in metrics.items())


__all__ = ["evaluate", "format_metrics", "judged_two_alternative", "pick_pairs", "score_study", "write_study_page",
           "zero_shot_accuracy"]
