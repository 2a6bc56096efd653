"""GAN inversion by latent optimisation in W+, batched over images, frames and clips.

    loss_fn = ReconstructionLoss(lpips_model, lpips_weight=10.0)   # per-item MSE + 10 LPIPS
    res = optimize_ws(G.synthesis, target, init_ws, steps=1000, lr=0.02, lr_final=0.01, loss_fn=loss_fn)
    clips = invert_sequences(G, [clip_a, clip_b], loss_fn)   # list of SequenceInversion (ws (F,num_ws,w_dim))

One Adam optimiser runs over a (B,num_ws,w_dim) parameter and the summed per-item loss. Adam's
update is element-wise, so every item follows exactly the path it would follow alone: a batch
is B independent inversions at the cost of one batched generator pass (the sequential
per-frame procedure of the talk paper, "Natural audio-to-video generation with representation
learning", gives the same result one item at a time).

Sequences (the talk paper's schedule): the first frame of each clip starts from ``init``
(default the generator's ``w_avg``; or an encoder's output) and gets ``first_steps`` steps
(paper: 1000, lr 0.02 decayed to 0.01 half-way); each later frame starts from the solution
of the previous frame and gets ``later_steps`` steps (paper: 5, lr 0.01). Clips are advanced
together frame by frame (all clips' frame t form one batch); ``frames_per_step > 1``
additionally solves that many consecutive frames of a clip at once, all warm-started from
the last solved frame (1 = the paper's chain).

``later_init="first"`` batches over frames as well: every later frame of every clip starts from
its clip's first-frame solution and all of them are optimised together (``max_batch`` images per
generator pass), so the later frames take ``later_steps`` generator passes instead of
``(F-1) * later_steps``. Frames far from frame 0 need more steps than the chain's 5 to reach the
chain's loss (benchmarks/talk_inversion.py measures how many); it is our variant, not the paper's.

Encoder initialisation: :class:`LatentEncoder` wraps an encoder the user exported with
``torch.export`` (e.g. an e4e/pSp-style network) mapping images (B,3,H,W) in [0,1] to W+.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from a2v.errors import ConfigError, InputError, MissingWeightsError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (B,3,H,W) x2 in [-1,1] -> (B,)


class ReconstructionLoss(nn.Module):
    """Per-item ``mse_weight * MSE + lpips_weight * LPIPS`` between images float (B,3,H,W) in [-1,1] -> (B,).

    lpips_model: an LPIPS-style module ``model(x, y, normalize=False) -> (B,1,1,1)`` on [-1,1]
    images (:func:`a2v.metrics.build_lpips`); required when ``lpips_weight > 0``. Its weights
    are frozen; gradients flow to the images.
    """

    def __init__(self, lpips_model: nn.Module | None = None, mse_weight: float = 1.0, lpips_weight: float = 10.0):
        super().__init__()
        if lpips_weight > 0 and lpips_model is None:
            raise ValueError("lpips_weight > 0 needs an LPIPS model")
        self.lpips = lpips_model if lpips_weight > 0 else None
        self.mse_weight, self.lpips_weight = float(mse_weight), float(lpips_weight)

    def forward(self, img: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.mse_weight * (img - target).pow(2).flatten(1).mean(1)  # (B,3,H,W)->(B,)
        if self.lpips is not None:
            d = self.lpips(img, target, normalize=False).reshape(img.shape[0])  # (B,1,1,1)->(B,)
            loss = loss + self.lpips_weight * d
        return loss


@dataclass
class InversionResult:
    """ws float32 (B,num_ws,w_dim) (detached); loss float32 (B,) at the returned ws;
    history: batch-mean loss before each step (len = steps)."""

    ws: torch.Tensor
    loss: torch.Tensor
    history: list[float] = field(default_factory=list)


def optimize_ws(
    synthesis: Callable[[torch.Tensor], torch.Tensor],
    target: torch.Tensor,
    init_ws: torch.Tensor,
    steps: int,
    lr: float,
    loss_fn: LossFn,
    lr_final: float | None = None,
    progress: bool = False,
    desc: str = "invert",
) -> InversionResult:
    """Optimise W+ codes so that ``synthesis(ws)`` matches ``target``.

    target: float (B,3,H,W) in [-1,1]; init_ws: (B,num_ws,w_dim) start (copied). Adam
    (betas 0.9, 0.999) at ``lr``, switched to ``lr_final`` after half of ``steps`` when given.
    The per-item losses are summed, so items are optimised independently (see module docstring).
    """
    ws = init_ws.detach().clone().float().requires_grad_(True)  # (B,num_ws,w_dim)
    opt = torch.optim.Adam([ws], lr=lr, betas=(0.9, 0.999))
    history: list[torch.Tensor] = []
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=desc, unit="step", leave=False)
    for i in it:
        if lr_final is not None and i == steps // 2:
            for g in opt.param_groups:
                g["lr"] = lr_final  # talk paper: 0.02 -> 0.01 half-way
        loss = loss_fn(synthesis(ws), target)  # (B,num_ws,w_dim)->(B,3,H,W)->(B,)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        history.append(loss.detach().mean())
    with torch.no_grad():
        final = loss_fn(synthesis(ws), target).float()  # (B,)
    return InversionResult(ws.detach(), final.detach(), [float(h) for h in history])


@dataclass
class SequenceInversion:
    """One clip: ws float32 (F,num_ws,w_dim) (on the CPU), loss float32 (F,) per frame."""

    ws: torch.Tensor
    loss: torch.Tensor


def invert_sequences(
    G: nn.Module,
    clips: Sequence[torch.Tensor],
    loss_fn: LossFn,
    *,
    first_steps: int = 1000,
    first_lr: float = 0.02,
    first_lr_final: float | None = 0.01,
    later_steps: int = 5,
    later_lr: float = 0.01,
    frames_per_step: int = 1,
    later_init: Literal["previous", "first"] = "previous",
    init: torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None = None,
    max_batch: int = 64,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> list[SequenceInversion]:
    """Invert every frame of every clip (talk paper schedule, batched; see module docstring).

    G: a :class:`a2v.gan.stylegan.StyleGenerator`. clips: float (F_i,3,H,W) in [-1,1] at the
    generator's resolution, F_i >= 1. init: None (``G.w_avg``), a tensor (N,num_ws,w_dim) of
    first-frame starts (one per clip) or an encoder ``f(images (B,3,H,W) in [-1,1]) -> (B,num_ws,w_dim)``
    (e.g. a :class:`LatentEncoder`). later_init: "previous" (paper: chain, ``frames_per_step`` frames at a
    time) or "first" (all later frames of all clips at once from their frame 0's solution).
    max_batch: most images per generator pass. Returns one :class:`SequenceInversion` per clip.
    """
    if frames_per_step < 1 or max_batch < 1:
        raise ValueError("frames_per_step and max_batch must be >= 1")
    if later_init not in ("previous", "first"):
        raise ValueError(f"later_init must be 'previous' or 'first', not {later_init!r}")
    if any(c.ndim != 4 or c.shape[0] < 1 for c in clips):
        raise ValueError("each clip must be a float (F,3,H,W) tensor with F >= 1")
    dev = torch.device(device) if device is not None else G.w_avg.device
    n = len(clips)
    ws_out = [torch.zeros(c.shape[0], G.num_ws, G.w_dim) for c in clips]  # (F,num_ws,w_dim) per clip
    loss_out = [torch.zeros(c.shape[0]) for c in clips]  # (F,) per clip
    firsts = torch.stack([c[0] for c in clips])  # (N,3,H,W)
    if init is None:
        starts = G.w_avg.detach().to(dev)[None, None].expand(n, G.num_ws, -1)  # (w_dim,)->(N,num_ws,w_dim)
    elif callable(init) and not isinstance(init, torch.Tensor):
        with torch.no_grad():
            starts = torch.cat([init(firsts[i : i + max_batch].to(dev)) for i in range(0, n, max_batch)])
    else:
        starts = init.to(dev)
    if starts.shape != (n, G.num_ws, G.w_dim):
        raise ValueError(f"init must give ({n},{G.num_ws},{G.w_dim}) codes, got {tuple(starts.shape)}")

    for a in range(0, n, max_batch):  # first frames: long optimisation
        res = optimize_ws(G.synthesis, firsts[a : a + max_batch].to(dev), starts[a : a + max_batch], first_steps,
                          first_lr, loss_fn, lr_final=first_lr_final, progress=progress, desc="first frames")
        for j in range(res.ws.shape[0]):
            ws_out[a + j][0], loss_out[a + j][0] = res.ws[j].cpu(), res.loss[j].cpu()

    if later_init == "first":  # batched over frames and clips: every later frame from its frame 0
        jobs = [(i, f) for i, c in enumerate(clips) for f in range(1, c.shape[0])]
        chunks = range(0, len(jobs), max_batch)
        if progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="later frames", unit="batch", leave=False)
        for a in chunks:
            _solve_frames(G, clips, jobs[a : a + max_batch], ws_out, loss_out, 0, later_steps, later_lr, loss_fn, dev)
        return [SequenceInversion(w, lo) for w, lo in zip(ws_out, loss_out, strict=True)]

    longest = max(c.shape[0] for c in clips)
    ts = range(1, longest, frames_per_step)
    if progress:
        from tqdm.auto import tqdm

        ts = tqdm(ts, desc="later frames", unit="frame", leave=False)
    for t in ts:  # later frames: warm start from the last solved frame of the same clip
        jobs = [(i, f) for i, c in enumerate(clips) for f in range(t, min(t + frames_per_step, c.shape[0]))]
        for a in range(0, len(jobs), max_batch):
            _solve_frames(G, clips, jobs[a : a + max_batch], ws_out, loss_out, t - 1, later_steps, later_lr, loss_fn,
                          dev)
    return [SequenceInversion(w, lo) for w, lo in zip(ws_out, loss_out, strict=True)]


def _solve_frames(G: nn.Module, clips: Sequence[torch.Tensor], part: list[tuple[int, int]], ws_out: list[torch.Tensor],
                  loss_out: list[torch.Tensor], start_frame: int, steps: int, lr: float, loss_fn: LossFn,
                  dev: torch.device) -> None:
    """Optimise frames ``part`` = [(clip, frame)] in one batch, each started from its clip's ``start_frame``
    solution; writes ``ws_out`` / ``loss_out`` in place."""
    target = torch.stack([clips[i][f] for i, f in part]).to(dev)  # (b,3,H,W)
    init_b = torch.stack([ws_out[i][start_frame] for i, _ in part]).to(dev)  # (b,num_ws,w_dim)
    res = optimize_ws(G.synthesis, target, init_b, steps, lr, loss_fn)
    for j, (i, f) in enumerate(part):
        ws_out[i][f], loss_out[i][f] = res.ws[j].cpu(), res.loss[j].cpu()


class LatentEncoder(nn.Module):
    """Encoder initialisation for inversion: a user network ``net(images (1,3,H,W) in [0,1]) -> (1,num_ws,w_dim)``
    called here on images float (B,3,H,W) in [-1,1] (the inversion's range) -> W+ float32 (B,num_ws,w_dim).

    The network gets the images at the generator's resolution, one at a time (so an export with a fixed
    batch of 1 works); any resizing or normalisation it needs belongs inside it (e.g. pSp/e4e's
    ``(x - 0.5) / 0.5`` and adding ``latent_avg``).
    """

    def __init__(self, net: Callable[[torch.Tensor], torch.Tensor], num_ws: int, w_dim: int, source: str = "") -> None:
        super().__init__()
        self.net, self.num_ws, self.w_dim, self.source = net, int(num_ws), int(w_dim), source

    @torch.no_grad()
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x01 = (img.float() + 1.0) / 2.0  # [-1,1] -> [0,1]
        ws = torch.cat([self.net(x01[i : i + 1]) for i in range(x01.shape[0])])  # B x (1,num_ws,w_dim)
        if ws.shape != (img.shape[0], self.num_ws, self.w_dim):
            raise InputError(f"encoder {self.source or type(self.net).__name__} gave W+ of shape {tuple(ws.shape)}, "
                             f"the generator needs (B,{self.num_ws},{self.w_dim})")
        return ws.float()

    @classmethod
    def load(cls, path: str | Path, num_ws: int, w_dim: int, *, trust: bool = False,
             device: str | torch.device = "cpu") -> LatentEncoder:
        """An encoder saved with ``torch.export.save(torch.export.export(net, (x,)), "encoder.pt2")``.

        torch.export archives keep the network's graph and weights, but ``torch.export.load`` unpickles
        parts of them, so (like a StyleGAN pickle) only a file from a source you trust may be loaded:
        ``trust=True`` says so.
        """
        p = Path(path).expanduser()
        if not str(path) or not p.is_file():
            raise MissingWeightsError(f"inversion encoder not found: {p} (export one with torch.export.save, "
                                      "or set invert.init=mean)")
        if not trust:
            raise ConfigError(f"loading the inversion encoder {p} unpickles parts of it: set invert.trust_encoder=true "
                              "(--trust-encoder) for a file from a source you trust")
        if p.suffix != ".pt2":
            raise InputError(f"inversion encoder {p}: expected a torch.export archive (.pt2)")
        from torch.export.passes import move_to_device_pass

        ep = move_to_device_pass(torch.export.load(str(p)), torch.device(device))
        return cls(ep.module(), num_ws, w_dim, source=str(p))
