"""Training of the ``image`` recipe: the audio head against the frozen image tower (CXLoss or Wav2CLIP).

The tower is frozen, so image embeddings are computed once per dataset and cached next to it
(``<data>/cache/image_emb_<key>.safetensors``, key = tower id + pair ids); a step then runs the
(frozen or fine-tuned) WavLM, the online head, its momentum copy and the queues.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from a2v.errors import InputError
from a2v.metrics import median_rank, recall_at_k
from a2v.nn.moco import momentum_update_
from a2v.recipes.image.config import DataConfig, ImageConfig
from a2v.recipes.image.model import AudioEncoder, CrossModalContrast, momentum_copy, speech_hidden_states
from a2v.recipes.image.wav2clip import Wav2CLIPAudioEncoder
from a2v.train import StepContext, Task, TrainResult, fit


def augment(images: torch.Tensor, cfg: DataConfig) -> torch.Tensor:
    """The paper's training-image augmentation, per picture: colour jitter (prob. ``aug_jitter_p``, strengths
    ``aug_jitter``) then random grayscale (prob. ``aug_grayscale_p``); torchvision, global torch RNG.
    float32 (B,3,H,W) in [0,1] -> same."""
    from torchvision.transforms import v2

    t = v2.Compose([v2.RandomApply([v2.ColorJitter(*cfg.aug_jitter)], p=cfg.aug_jitter_p),
                    v2.RandomGrayscale(p=cfg.aug_grayscale_p)])
    return torch.stack([t(x) for x in images])  # (B,3,H,W), each picture its own draw


def _box_batch(pairs: Any, idx: list[int], max_boxes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Detector boxes of ``idx`` padded to the batch's most: (B,N,4) fractions and (B,N) mask (True = real box)."""
    per = [torch.from_numpy(pairs.boxes(i)[:max_boxes]) for i in idx]  # (n_i,4) each, best first
    n = max((b.shape[0] for b in per), default=0)
    boxes = torch.zeros(len(idx), n, 4)  # (B,N,4)
    mask = torch.zeros(len(idx), n, dtype=torch.bool)  # (B,N)
    for k, b in enumerate(per):
        boxes[k, :b.shape[0]], mask[k, :b.shape[0]] = b, True
    return boxes, mask


def uses_detector_boxes(tower: nn.Module) -> bool:
    """True for a BriVL tower configured with detector boxes (``tower.brivl_boxes=detector``)."""
    return getattr(tower, "box_source", "") == "detector"


def check_boxes(tower: nn.Module, pairs: Any) -> None:
    """With detector boxes every pair needs a box file: one InputError with the count and where they go."""
    if not uses_detector_boxes(tower) or not len(pairs):
        return
    missing = [r["id"] for i, r in enumerate(pairs.rows) if pairs.boxes(i) is None]
    if missing:
        raise InputError(f"{len(missing)} of {len(pairs)} pairs have no detector boxes (e.g. {pairs.root}/boxes/"
                         f"{missing[0]}.npy, (N,4) x1,y1,x2,y2 in pixels of the prepared picture): run the "
                         "detector, or --set tower.brivl_boxes=grid (grid boxes, a fallback, not the paper's)")


@torch.no_grad()
def embed_images(tower: nn.Module, pairs: torch.utils.data.Dataset, batch_size: int = 64, progress: bool = True,
                 aug: DataConfig | None = None) -> torch.Tensor:
    """Tower embeddings of every pair's picture, float32 on the CPU (not normalised): (N,E), or (N,V,E) with
    ``aug.aug_views`` = V > 0 augmented views (:func:`augment`, seeded by ``aug.seed``, so the cache is
    reproducible). A BriVL tower with ``brivl_boxes=detector`` gets each picture's detector boxes."""
    from tqdm.auto import tqdm

    views = aug.aug_views if aug is not None else 0
    out = []
    for a in tqdm(range(0, len(pairs), batch_size), desc="image embeddings", disable=not progress, leave=False):
        idx = list(range(a, min(a + batch_size, len(pairs))))
        imgs = torch.stack([pairs[i]["image"] for i in idx])  # (B,3,P,P)
        kw: dict[str, torch.Tensor] = {}
        if uses_detector_boxes(tower):
            kw["boxes"], kw["box_mask"] = _box_batch(pairs, idx, tower.max_boxes)  # (B,N,4), (B,N)
        if views <= 0:
            out.append(tower.encode_image(imgs, **kw).float().cpu())  # (B,3,P,P)->(B,E)
            continue
        per_view = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(aug.seed * 1_000_003 + a)  # the same views on every run and rank
            for _ in range(views):
                per_view.append(tower.encode_image(augment(imgs, aug), **kw).float().cpu())  # (B,E)
        out.append(torch.stack(per_view, 1))  # V x (B,E) -> (B,V,E)
    if out:
        return torch.cat(out)  # (N,E) or (N,V,E)
    return torch.zeros((0, views, tower.embed_dim) if views > 0 else (0, tower.embed_dim))


def cached_image_embeddings(tower: nn.Module, pairs: Any, cache_dir: str | Path, batch_size: int = 64,
                            progress: bool = True, aug: DataConfig | None = None) -> torch.Tensor:
    """:func:`embed_images`, stored as safetensors under ``cache_dir`` keyed by the tower (its box source
    included), the augmentation settings and the pair ids. Augmented views are kept as float16 (N,V,E)."""
    from safetensors.torch import load_file, save_file

    from a2v.io import atomic_path

    check_boxes(tower, pairs)
    ids = "|".join(r["id"] for r in getattr(pairs, "rows", [])) or str(len(pairs))
    aug_id = "" if aug is None or aug.aug_views <= 0 else (
        f"aug:{aug.aug_views}:{aug.aug_jitter}:{aug.aug_jitter_p}:{aug.aug_grayscale_p}:{aug.seed}")
    key = hashlib.sha1(f"{tower.cache_id}\n{aug_id}\n{ids}".encode()).hexdigest()[:16]
    f = Path(cache_dir) / f"image_emb_{key}.safetensors"
    if f.is_file() and tower.cache_id:
        return load_file(str(f))["embeddings"]
    emb = embed_images(tower, pairs, batch_size, progress, aug)  # (N,E) or (N,V,E)
    if emb.ndim == 3:
        emb = emb.half()  # V views: N*V*E*2 bytes (200k pairs, 8 views of 2048-d: 6.5 GB instead of 13)
    if tower.cache_id:
        with atomic_path(f) as tmp:
            save_file({"embeddings": emb.contiguous()}, str(tmp), metadata={"tower": tower.cache_id,
                                                                            "augmentation": aug_id or "none"})
    return emb


class ContrastTask(Task):
    """One update: audio embeddings against the tower's, with CXLoss (f, g), momentum contrast or InfoNCE.

    Batches: {"wav" (B,S) float32 16 kHz, "length" (B,) samples, "image_emb" (B,E)} (``image_emb`` may be
    (B,V,E): V cached augmented views, one picked at random per item). ``audio``: an
    :class:`AudioEncoder` (WavLM + head) or a :class:`Wav2CLIPAudioEncoder` (trained whole, as "head").
    Trained modules: "head" (+ "speech" when WavLM is fine-tuned, + "contrast" for CXLoss's f, g and
    temperatures); state modules (saved, not trained) with momentum contrast: "head_key" (+ "speech_key"),
    "contrast" (queues). With N processes every rank enqueues the keys of all N batches (MoCo's
    concat_all_gather) and moves its momentum copy toward the synchronised online weights.
    """

    def __init__(self, cfg: ImageConfig, audio: nn.Module) -> None:
        self.cfg = cfg
        self.wavlm = isinstance(audio, AudioEncoder)
        self.speech = audio.speech if self.wavlm else None
        self.head = audio.head if self.wavlm else audio
        self.frozen = bool(getattr(self.speech, "frozen", True))
        self.moco = cfg.loss.kind == "moco"
        self.head_key = momentum_copy(self.head) if self.moco else None
        self.speech_key = momentum_copy(self.speech) if self.moco and not self.frozen else None
        self.contrast = CrossModalContrast(self.head.out_dim, cfg.loss)

    def modules(self) -> dict[str, nn.Module]:
        m: dict[str, nn.Module] = {"head": self.head}
        if not self.frozen:
            m["speech"] = self.speech
        if self.contrast.trainable:
            m["contrast"] = self.contrast
        return m

    def state_modules(self) -> dict[str, nn.Module]:
        if not self.moco:
            return {}
        m: dict[str, nn.Module] = {"head_key": self.head_key, "contrast": self.contrast}
        if not self.frozen:
            m["speech_key"] = self.speech_key
        return m

    def _speech(self, ctx: StepContext, key: bool = False) -> nn.Module:
        if self.frozen:
            if self.speech.device != ctx.device:
                self.speech.to(ctx.device)  # frozen, so not handed to the loop: move it here once
            return self.speech
        return ctx.unwrap("speech_key") if key else ctx.modules["speech"]

    def step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        wav, lengths = batch["wav"], batch["length"]  # (B,S), (B,)
        image = pick_view(batch["image_emb"])  # (B,E) or (B,V,E)->(B,E)
        if self.wavlm:
            states, mask = speech_hidden_states(self._speech(ctx), wav, lengths)  # (L+1,B,T,D), (B,T)
            a = ctx.modules["head"](states, mask)  # (B,E)
        else:
            a = ctx.modules["head"](wav, lengths)  # (B,S)->(B,E)
        a_key = None
        if self.moco:
            with torch.no_grad():
                m = self.cfg.loss.momentum
                if ctx.micro_step == 0:  # MoCo Alg. 1: keys come from the momentum-updated encoder
                    momentum_update_(ctx.unwrap("head_key"), ctx.unwrap("head"), m)
                    if not self.frozen:
                        momentum_update_(ctx.unwrap("speech_key"), ctx.unwrap("speech"), m)
                head_key = ctx.unwrap("head_key").eval()
                if not self.wavlm:
                    a_key = head_key(wav, lengths)  # (B,E)
                else:
                    if not self.frozen:
                        states, mask = speech_hidden_states(self._speech(ctx, key=True), wav, lengths)
                    a_key = head_key(states, mask)  # (B,E)
        contrast = ctx.modules["contrast"] if "contrast" in ctx.modules else self.contrast  # infonce: no state
        return contrast(a, image, a_key, gather=ctx.gather)

    def audio_encoder(self, modules: dict[str, nn.Module]) -> nn.Module:
        """The inference encoder (tower-space output: with CXLoss g follows the head) from ``modules``
        (``ctx.eval_modules`` or the trained ones)."""
        contrast = modules.get("contrast", self.contrast)
        proj = contrast.audio_proj if self.contrast.trainable else None
        if not self.wavlm:
            return Wav2CLIPAudioEncoder(proj, encoder=modules["head"].encoder)
        speech = self.speech if self.frozen else modules["speech"]
        return AudioEncoder(speech, modules["head"], proj)

    @torch.no_grad()
    def evaluate(self, data: Any, ctx: StepContext) -> dict[str, float]:
        """Audio -> image retrieval on held-out pairs: r@K and median rank (a2v.metrics)."""
        if self.frozen and self.wavlm:
            self._speech(ctx)
        return retrieval_metrics(self.audio_encoder(ctx.eval_modules), data, self.cfg.eval.ks,
                                 self.cfg.train.batch_size)


def pick_view(image_emb: torch.Tensor) -> torch.Tensor:
    """(B,E) as is, or (B,V,E) cached augmented views -> (B,E), one view per item at random (torch RNG)."""
    if image_emb.ndim == 2:
        return image_emb
    idx = torch.randint(image_emb.shape[1], (image_emb.shape[0],), device=image_emb.device)  # (B,)
    return image_emb[torch.arange(image_emb.shape[0], device=image_emb.device), idx]  # (B,V,E)->(B,E)


@torch.no_grad()
def embed_audio_dataset(audio: AudioEncoder, data: Any, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(audio embeddings (N,E), image embeddings (N,E)) of an :class:`EmbeddedPairs`-like dataset, on the CPU."""
    a_out, v_out = [], []
    for s in range(0, len(data), batch_size):
        items = [data[i] for i in range(s, min(s + batch_size, len(data)))]
        wav = torch.stack([it["wav"] for it in items]).to(audio.device)  # (B,S)
        lengths = torch.stack([torch.as_tensor(it["length"]) for it in items]).to(audio.device)  # (B,)
        a_out.append(audio(wav, lengths).float().cpu())  # (B,S)->(B,E)
        v_out.append(torch.stack([it["image_emb"] for it in items]).float())  # (B,E)
    return torch.cat(a_out), torch.cat(v_out)  # (N,E), (N,E)


def retrieval_metrics(audio: AudioEncoder, data: Any, ks: tuple[int, ...] = (1, 5, 10),
                      batch_size: int = 32) -> dict[str, float]:
    """{"r@K": recall in [0,1], "median_rank": >= 1} of audio -> image retrieval (cosine) over ``data``."""
    from a2v.metrics import cosine_similarity_matrix

    a, v = embed_audio_dataset(audio, data, batch_size)  # (N,E), (N,E)
    sim = cosine_similarity_matrix(a, v)  # (N,N)
    out = {f"r@{k}": r for k, r in recall_at_k(sim, ks).items()}
    out["median_rank"] = median_rank(sim)
    return out


def train(cfg: ImageConfig, data_dir: str | Path, out_dir: str | Path, resume: bool = False,
          progress: bool = True, device: str | torch.device | None = None) -> TrainResult:
    """Train on a prepared folder (``a2v prepare image``); writes checkpoints and ``out_dir/pipeline``.

    Loads the tower and WavLM (MissingWeightsError when absent), caches the image embeddings,
    runs :func:`a2v.train.fit`, then saves the final (EMA if on) weights as an :class:`ImagePipeline`.
    Several processes (``torchrun``/``accelerate launch``): the main one computes the cache first,
    the others read it; only the main one writes the pipeline.
    """
    from accelerate import PartialState

    from a2v.device import resolve_device
    from a2v.recipes.image.data import EmbeddedPairs, PairDataset
    from a2v.recipes.image.model import build_audio_encoder
    from a2v.recipes.image.pipeline import ImagePipeline
    from a2v.recipes.image.towers import build_tower

    dev = device or ("cpu" if cfg.train.cpu else resolve_device())  # this process's own GPU under torchrun
    state = PartialState(cpu=cfg.train.cpu)  # the process group fit() will use
    tower = build_tower(cfg.tower, dev)
    audio = build_audio_encoder(cfg.audio, tower.embed_dim, "cpu")
    train_pairs = PairDataset(data_dir, "train", cfg.audio.clip_s, train=True)
    val_pairs = PairDataset(data_dir, "val", cfg.audio.clip_s, train=False)
    if len(train_pairs) < cfg.train.batch_size:
        raise InputError(f"{data_dir}: {len(train_pairs)} training pairs, fewer than train.batch_size="
                         f"{cfg.train.batch_size}")
    cache = Path(data_dir) / "cache"
    with state.main_process_first():  # one process writes the cache, the others then read it
        train_emb = cached_image_embeddings(tower, train_pairs, cache, progress=progress, aug=cfg.data)  # (N,V,E)
        val_emb = cached_image_embeddings(tower, val_pairs, cache, progress=progress) if len(val_pairs) else None
    train_data = EmbeddedPairs(train_pairs, train_emb)
    val_data = EmbeddedPairs(val_pairs, val_emb) if val_emb is not None else None
    task = ContrastTask(cfg, audio)
    result = fit(task, train_data, cfg.train, out_dir, eval_data=val_data, resume=resume, progress=progress,
                 run_config=cfg)
    if state.is_main_process:
        pipe = ImagePipeline(cfg, task.audio_encoder(task.modules()).cpu(), tower=tower)
        if result.last_checkpoint is not None:
            pipe.load_checkpoint(result.best_checkpoint or result.last_checkpoint)
        pipe.save_pretrained(Path(out_dir) / "pipeline")
    state.wait_for_everyone()
    return result
