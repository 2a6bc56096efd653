"""Stage 1 inference on audio of any length: overlapping windows, hard cuts, constant memory.

Zheng et al. 2020, §4.3.4: the generator runs on windows of 200 MFCC frames (2 s at 100 Hz,
50 video frames) that overlap by 40 audio frames (10 video frames); of each overlap the first
half is taken from the earlier window and the second half from the later one, i.e. 5 video
frames are discarded at every inner window end, the first window keeps its start and the last
window its end. With ``overlap_audio_frames = O`` the margin is ``m = O/8`` video frames.

Window plan for T audio frames (T = 4F, F video frames at 25 fps; callers pad MFCC to
``4 * round(duration_s * 25)`` frames):

- T <= W: one pass over the whole input.
- otherwise regular windows start at ``s_k = k * (W - O)`` while ``s_k + W <= T``; when the
  last of them ends before T, one more window is placed at ``T - W`` (flush with the end).
- video frame cuts sit at ``cut_k = s_k/4 + W/4 - m``; window k emits ``[cut_{k-1}, cut_k)``,
  the last window emits up to F.

When the model's context (``MouthGenerator.context_video_frames``) is at most m frames on each
side, the result equals one pass over the whole input. Memory is bounded by ``batch_windows``
windows, whatever the input length; the output (F,10) is produced piece by piece by
:func:`iter_predict`. :class:`StreamingMouthPredictor` yields the same frames from audio chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from a2v.errors import InputError
from a2v.recipes.lipsync.mouth_model import AUDIO_FRAMES_PER_VIDEO_FRAME as N
from a2v.recipes.lipsync.mouth_model import check_mfcc_length

__all__ = ["WindowPlan", "plan_windows", "iter_predict", "predict_long", "StreamingMouthPredictor"]


@dataclass(frozen=True)
class WindowPlan:
    """One window: audio frames ``[start, start+length)``; it emits its local video frames ``[keep_from, keep_to)``."""

    start: int
    length: int
    keep_from: int
    keep_to: int


def _check_window(window_audio_frames: int, overlap_audio_frames: int) -> int:
    """Validate window/overlap sizes; return the margin m in video frames."""
    w, o = window_audio_frames, overlap_audio_frames
    if w <= 0 or w % N:
        raise InputError(f"window_audio_frames must be a positive multiple of 4, got {w}")
    if o < 0 or o % (2 * N) or o >= w:
        raise InputError(f"overlap_audio_frames must be a multiple of 8 in [0, {w}), got {o}")
    return o // (2 * N)


def plan_windows(
    n_audio_frames: int, window_audio_frames: int = 200, overlap_audio_frames: int = 40
) -> list[WindowPlan]:
    """The windows that cover T audio frames (see module docstring); their kept parts tile [0, T/4)."""
    n_video = check_mfcc_length(n_audio_frames)
    m = _check_window(window_audio_frames, overlap_audio_frames)
    w, wv = window_audio_frames, window_audio_frames // N
    if n_audio_frames <= w:
        return [WindowPlan(0, n_audio_frames, 0, n_video)]
    hop = w - overlap_audio_frames
    plans: list[WindowPlan] = []
    cut = 0
    start = 0
    while start + w <= n_audio_frames:
        f0 = start // N
        plans.append(WindowPlan(start, w, cut - f0, wv - m))
        cut = f0 + wv - m
        start += hop
    last = plans[-1]
    if last.start + w == n_audio_frames:
        plans[-1] = WindowPlan(last.start, w, last.keep_from, wv)
    else:
        f0 = (n_audio_frames - w) // N
        plans.append(WindowPlan(n_audio_frames - w, w, cut - f0, wv))
    return plans


def _model_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _as_mfcc(mfcc: np.ndarray | torch.Tensor, model: nn.Module) -> np.ndarray | torch.Tensor:
    dim = getattr(getattr(model, "cfg", None), "mfcc_dim", None)
    if mfcc.ndim != 2 or (dim is not None and mfcc.shape[1] != dim):
        raise InputError(f"MFCC must be (T,{dim or 'D'}) at 100 Hz, got shape {tuple(mfcc.shape)}")
    return mfcc


def _run(model: nn.Module, windows: list[np.ndarray | torch.Tensor], device: torch.device) -> np.ndarray:
    """Model on equal-length windows (T,13) each -> float32 (n,F,10)."""
    x = torch.stack([torch.as_tensor(w, dtype=torch.float32) for w in windows])  # n x (T,13)->(n,T,13)
    x = x.to(device)
    with torch.inference_mode():
        y = model(x)  # (n,T,13)->(n,F,10)
    return y.float().cpu().numpy()


def iter_predict(
    model: nn.Module,
    mfcc: np.ndarray | torch.Tensor,
    *,
    window_audio_frames: int | None = None,
    overlap_audio_frames: int = 40,
    batch_windows: int = 16,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> Iterator[np.ndarray]:
    """Yield consecutive pieces float32 (k,10) of the mouth sequence for mfcc (T,13), 100 Hz.

    The pieces concatenate to (T/4, 10) at 25 fps. ``window_audio_frames`` defaults to the
    model config's training window (200). At most ``batch_windows`` windows are on the device
    at once. ``device``: where the windows are sent, by default the device of the model's
    parameters (CPU or CUDA); the model itself is not moved. The model runs in eval mode; its previous mode is restored afterwards.
    """
    from tqdm.auto import tqdm

    mfcc = _as_mfcc(mfcc, model)
    w = window_audio_frames or getattr(getattr(model, "cfg", None), "window_audio_frames", 200)
    plans = plan_windows(mfcc.shape[0], w, overlap_audio_frames)
    dev = _model_device(model, device)
    was_training = model.training
    model.eval()
    try:
        bar = tqdm(total=len(plans), desc="mouth shapes", unit="window", disable=not progress)
        for i in range(0, len(plans), max(1, batch_windows)):
            group = plans[i : i + batch_windows]
            out = _run(model, [mfcc[p.start : p.start + p.length] for p in group], dev)  # (n,F_w,10)
            kept = [o[p.keep_from : p.keep_to] for o, p in zip(out, group, strict=True)]
            yield np.concatenate(kept)  # n x (k_i,10)->(k,10)
            bar.update(len(group))
        bar.close()
    finally:
        model.train(was_training)


def predict_long(
    model: nn.Module,
    mfcc: np.ndarray | torch.Tensor,
    *,
    window_audio_frames: int | None = None,
    overlap_audio_frames: int = 40,
    batch_windows: int = 16,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Mouth PCA float32 (F,10) at 25 fps for mfcc (T,13) at 100 Hz, T = 4F, any length."""
    pieces = list(
        iter_predict(
            model,
            mfcc,
            window_audio_frames=window_audio_frames,
            overlap_audio_frames=overlap_audio_frames,
            batch_windows=batch_windows,
            device=device,
            progress=progress,
        )
    )
    return np.concatenate(pieces, axis=0)


class StreamingMouthPredictor:
    """Audio chunks in, mouth frames out; the frames equal :func:`predict_long` on the whole input.

    ``push(mfcc_chunk (t,13))`` returns the newly final frames float32 (k,10), k >= 0 (any t);
    ``flush()`` returns the rest once the audio ends (total frames must be a multiple of 4)
    and resets the predictor for a new stream. Memory holds at most one window of audio.

    Latency (audio time between the start of a frame's 40 ms and the arrival of the audio that
    lets it be emitted; compute time not included): ``latency_ms`` = W x 10 ms = 2000 ms at
    the defaults, reached by the first frames of a stream; afterwards ``steady_latency_ms`` =
    (W/4 - m) x 40 ms = (hop + margin) = 1800 ms. A larger overlap lowers it at more compute.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        window_audio_frames: int | None = None,
        overlap_audio_frames: int = 40,
        device: str | torch.device | None = None,
        audio_rate_hz: float = 100.0,
    ) -> None:
        self.model = model
        self.window = window_audio_frames or getattr(getattr(model, "cfg", None), "window_audio_frames", 200)
        self.margin = _check_window(self.window, overlap_audio_frames)
        self.hop = self.window - overlap_audio_frames
        self.device = _model_device(model, device)
        self.frame_ms = 1000.0 / audio_rate_hz
        self.latency_ms = self.window * self.frame_ms
        self.steady_latency_ms = (self.window - N * self.margin) * self.frame_ms
        self.mfcc_dim = getattr(getattr(model, "cfg", None), "mfcc_dim", None)
        self.reset()

    def reset(self) -> None:
        """Forget the current stream."""
        self._buf: np.ndarray | None = None  # audio frames [buf_start, total)
        self._buf_start = 0
        self._total = 0
        self._next_start = 0  # start of the next regular window
        self._emitted = 0  # video frames already returned
        self._last: tuple[int, np.ndarray] | None = None  # (start, output (W/4,10)) of the last window run

    def _window(self, start: int, length: int) -> np.ndarray:
        a = start - self._buf_start
        was_training = self.model.training
        self.model.eval()
        try:
            return _run(self.model, [self._buf[a : a + length]], self.device)[0]  # (F_w,10)
        finally:
            self.model.train(was_training)

    def push(self, mfcc_chunk: np.ndarray | torch.Tensor) -> np.ndarray:
        """Add mfcc (t,13) at 100 Hz; return the mouth frames float32 (k,10) that became final."""
        chunk = np.asarray(mfcc_chunk, dtype=np.float32)
        if chunk.ndim != 2 or (self.mfcc_dim is not None and chunk.shape[1] != self.mfcc_dim):
            raise InputError(f"MFCC chunk must be (t,{self.mfcc_dim or 'D'}), got shape {chunk.shape}")
        self._buf = chunk.copy() if self._buf is None else np.concatenate([self._buf, chunk])  # (t_buf+t,13)
        self._total += chunk.shape[0]
        out = []
        wv = self.window // N
        while self._next_start + self.window <= self._total:
            s = self._next_start
            y = self._window(s, self.window)  # (W/4,10)
            cut = s // N + wv - self.margin
            out.append(y[self._emitted - s // N : cut - s // N])
            self._emitted, self._last = cut, (s, y)
            self._next_start += self.hop
        keep = min(self._next_start, max(0, self._total - self.window))
        if keep > self._buf_start:
            self._buf = self._buf[keep - self._buf_start :]  # drop audio no future window needs
            self._buf_start = keep
        return np.concatenate(out) if out else np.zeros((0, self._out_dim()), np.float32)

    def flush(self) -> np.ndarray:
        """End of audio: return the remaining frames float32 (k,10) and reset."""
        total = self._total
        if total == 0:
            self.reset()
            return np.zeros((0, self._out_dim()), np.float32)
        n_video = check_mfcc_length(total)
        if self._last is None:  # shorter than one window: one pass
            y = self._window(0, total)  # (F,10)
        elif self._last[0] + self.window == total:  # the last regular window ends with the audio
            y = self._last[1][self._emitted - self._last[0] // N :]
        else:  # one more window, flush with the end
            s = total - self.window
            y = self._window(s, self.window)[self._emitted - s // N :]
        if self._emitted + len(y) != n_video:  # the plan guarantees this; a mismatch is a bug
            raise RuntimeError(f"stream produced {self._emitted + len(y)} frames for {n_video}")
        self.reset()
        return y

    def _out_dim(self) -> int:
        return int(getattr(getattr(self.model, "cfg", None), "out_dim", 10))
