"""Evaluation of the ``image`` recipe on held-out pairs.

1. Audio -> image retrieval: R@1/5/10 and median rank (cosine, :mod:`a2v.metrics`), WavBriVL sec. 4.2.
2. Zero-shot audio classification through the tower's text side (Wav2CLIP, Wu et al. 2022 sec. 4.2):
   prompt ``eval.prompt_template`` per class (the pair's folder name), accuracy of argmax cosine.
3. Automated two-alternative test: for pairs of sounds of different classes, a picture is generated
   for each; a trial is right when the tower scores the picture closer to its own sound than to the
   other one (WavBriVL sec. 4.3 asks people the same question; :func:`write_study_page` makes that page).
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


def two_alternative_test(pipe: ImagePipeline, pairs: PairDataset, audio_emb: torch.Tensor,
                         trials: list[tuple[int, int]], steps: int, out_dir: Path, progress: bool = True
                         ) -> tuple[float, dict[int, Path]]:
    """Fraction in [0,1] of correct choices (2 per trial) and the generated picture of each item (PNG paths)."""
    from tqdm.auto import tqdm

    from a2v.recipes.image.generate.vqgan import optimise_latents
    from a2v.video import write_png

    items = sorted({i for t in trials for i in t})
    pics: dict[int, Path] = {}
    img_emb = {}
    for i in tqdm(items, desc="2AFC pictures", disable=not progress):
        with torch.enable_grad():
            pic, _ = optimise_latents(pipe.vq, pipe.tower, audio_emb[i], pipe.cfg.generate, steps=steps, progress=False)
        pics[i] = write_png(out_dir / "pictures" / f"{pairs.rows[i]['id']}.png", pic)
        x = torch.from_numpy(pic).permute(2, 0, 1)[None].float() / 255.0  # (H,W,3)->(1,3,H,W)
        with torch.no_grad():
            img_emb[i] = pipe.tower.encode_image(x).cpu()[0]  # (1,3,H,W)->(E,)
    right = 0
    for i, j in trials:
        s = cosine_similarity_matrix(torch.stack([img_emb[i], img_emb[j]]), audio_emb[[i, j]])  # (2,2)
        right += int(s[0, 0] > s[0, 1]) + int(s[1, 1] > s[1, 0])
    return right / (2 * len(trials)), pics


def write_study_page(out_dir: Path, pairs: PairDataset, trials: list[tuple[int, int]], pics: dict[int, Path],
                     seed: int = 0) -> Path:
    """``study/index.html``: per trial two sounds and two generated pictures in random order; the person
    picks which picture goes with sound A and downloads the answers as JSON. The key is ``study/key.json``."""
    from a2v.audio import save_audio

    rng = random.Random(seed)
    d = out_dir / "study"
    rows, key = [], []
    for t, (i, j) in enumerate(trials):
        for k in (i, j):
            wav, _ = pairs.load(k)
            save_audio(d / "sounds" / f"{pairs.rows[k]['id']}.wav", wav, 16000)
        swap = rng.random() < 0.5
        left, right = (j, i) if swap else (i, j)
        key.append({"trial": t, "sound_a": pairs.rows[i]["id"], "picture_for_a": 2 if swap else 1})
        a, b = (html.escape(pairs.rows[k]["id"]) for k in (i, j))
        imgs = "".join(f'<figure><img src="../pictures/{html.escape(pics[k].name)}" width="256">'
                       f"<figcaption>picture {n}</figcaption></figure>" for n, k in ((1, left), (2, right)))
        rows.append(f'<section><h3>Trial {t + 1}</h3><p>Sound A <audio controls src="sounds/{a}.wav"></audio> '
                    f'Sound B <audio controls src="sounds/{b}.wav"></audio></p><div class="pics">{imgs}</div>'
                    f'<p>Picture for sound A: <label><input type="radio" name="t{t}" value="1"> 1</label> '
                    f'<label><input type="radio" name="t{t}" value="2"> 2</label></p></section>')
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>Which picture goes with which sound?</title>"
            "<style>body{font-family:sans-serif;max-width:900px;margin:auto}.pics{display:flex;gap:1em}</style>"
            "</head><body><h1>Which picture goes with which sound?</h1><p>Listen to both sounds, then choose the "
            "picture made from sound A.</p>" + "".join(rows)
            + "<button onclick=\"const a={};document.querySelectorAll('input:checked').forEach(e=>a[e.name]=+e.value);"
            "const u=URL.createObjectURL(new Blob([JSON.stringify(a)],{type:'application/json'}));"
            "const l=document.createElement('a');l.href=u;l.download='answers.json';l.click();\">"
            "Download answers</button></body></html>")
    write_text_atomic(d / "index.html", page)
    write_json_atomic(d / "key.json", key)
    return d / "index.html"


def evaluate(pipe: ImagePipeline, data_dir: str | Path, out_dir: str | Path, split: str = "val",
             two_afc: bool = True, progress: bool = True) -> dict[str, Any]:
    """All metrics on ``split`` of a prepared folder; writes ``out_dir/metrics.json`` (+ pictures, study page)."""
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
        trials = pick_pairs(labels, cfg.eval.num_2afc_pairs, cfg.data.seed)
        score, pics = two_alternative_test(pipe, pairs, audio_emb, trials, cfg.eval.generate_steps, out, progress)
        metrics["two_afc_accuracy"] = score
        metrics["two_afc_trials"] = len(trials)
        metrics["study_page"] = str(write_study_page(out, pairs, trials, pics, cfg.data.seed))
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line per metric, numbers to 4 significant digits."""
    return "\n".join(f"{k}: {v:.4g}" if isinstance(v, float | np.floating) else f"{k}: {v}"
                     for k, v in metrics.items())


__all__ = ["evaluate", "format_metrics", "pick_pairs", "two_alternative_test", "write_study_page",
           "zero_shot_accuracy"]
