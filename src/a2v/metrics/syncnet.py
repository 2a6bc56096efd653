"""LSE-D / LSE-C lip-sync scores through a pretrained SyncNet (user-supplied weights).

SyncNet (Chung & Zisserman, "Out of time: automated lip sync in the wild", ACCV-W 2016) embeds
0.2 s of audio (20 MFCC frames at 100 Hz) and 5 face-crop frames (25 fps) into one space where
in-sync pairs are close. Wav2Lip (Prajwal et al., ACM MM 2020, Sec. 5) turned its offset search
into two metrics, computed per video and averaged over a test set:

* LSE-D: mean over frames of the lip/audio embedding distance at the best offset (lower = better);
* LSE-C: median over offsets minus that minimum (the "confidence"; higher = better).

This module reimplements joonson/syncnet_python faithfully: the network (upstream class ``S``,
same layer names, so the ``syncnet_v2.model`` state dict loads as is), ``calc_pdist`` (offsets
``-vshift..vshift``, zero-padded audio embeddings, ``pairwise_distance`` with eps 1e-6), the
MFCC of python_speech_features on 16-bit-scaled 16 kHz audio, and the face crop of its
``run_pipeline.py`` (box size/centre median-filtered over 13 frames, 2.8x box crop shifted down,
grey 110 padding, 224x224, BGR 0..255). Faces are found with :mod:`a2v.face` (MTCNN by default)
instead of upstream's S3FD, so scores can differ slightly from published tables.
Offset convention: positive ``offset_frames`` = the lips move that many frames after the sound.
"""

from __future__ import annotations

import pickle
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from a2v.errors import InputError, MissingWeightsError

FPS = 25  # SyncNet's video rate (frames/s)
SR_HZ = 16000  # SyncNet's audio rate
MFCC_PER_FRAME = 4  # 100 Hz MFCC / 25 fps
MFCC_WINDOW = 20  # 0.2 s of MFCC per audio embedding
LIP_WINDOW = 5  # frames per lip embedding
CROP_PX = 224
CROP_SCALE = 0.40  # run_pipeline.py --crop_scale
PAD_GREY = 110  # run_pipeline.py padding value
SMOOTH_FRAMES = 13  # run_pipeline.py median filter on box centre / size
PAIRWISE_EPS = 1e-6  # torch.nn.functional.pairwise_distance default


class SyncNet(nn.Module):
    """SyncNet "S" of joonson/syncnet_python (layer names kept so upstream state dicts load).

    forward_aud: MFCC float32 (B,1,13,20) -> (B,D). forward_lip: BGR face crops float32 in
    [0, 255] (B,3,5,224,224) -> (B,D). D = ``fc_dim`` (1024 upstream).
    """

    def __init__(self, fc_dim: int = 1024) -> None:
        super().__init__()
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=(1, 1), stride=(1, 1)),
            nn.Conv2d(64, 192, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)),
            nn.BatchNorm2d(192),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=(3, 3), stride=(1, 2)),
            nn.Conv2d(192, 384, kernel_size=(3, 3), padding=(1, 1)),
            nn.BatchNorm2d(384),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=(3, 3), padding=(1, 1)),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=(3, 3), padding=(1, 1)),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=(3, 3), stride=(2, 2)),
            nn.Conv2d(256, 512, kernel_size=(5, 4), padding=(0, 0)),
            nn.BatchNorm2d(512),
            nn.ReLU(),
        )
        self.netfcaud = nn.Sequential(
            nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, fc_dim)
        )
        self.netfclip = nn.Sequential(
            nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, fc_dim)
        )
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(3, 96, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=0),
            nn.BatchNorm3d(96),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(96, 256, kernel_size=(1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)),
            nn.BatchNorm3d(256),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            nn.Conv3d(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
            nn.BatchNorm3d(256),
            nn.ReLU(inplace=True),
            nn.Conv3d(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
            nn.BatchNorm3d(256),
            nn.ReLU(inplace=True),
            nn.Conv3d(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
            nn.BatchNorm3d(256),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(256, 512, kernel_size=(1, 6, 6), padding=0),
            nn.BatchNorm3d(512),
            nn.ReLU(inplace=True),
        )

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        """MFCC (B,1,13,20) -> audio embedding (B,D)."""
        mid = self.netcnnaud(x)  # (B,1,13,20)->(B,512,1,1)
        return self.netfcaud(mid.flatten(1))  # (B,512)->(B,D)

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        """BGR crops in [0, 255] (B,3,5,224,224) -> lip embedding (B,D)."""
        mid = self.netcnnlip(x)  # (B,3,5,224,224)->(B,512,1,1,1)
        return self.netfclip(mid.flatten(1))  # (B,512)->(B,D)


def load_syncnet(path: str | Path, device: str = "cpu") -> SyncNet:
    """Load SyncNet weights (``syncnet_v2.model`` of joonson/syncnet_python) in eval mode.

    Only plain state dicts are read (``torch.load(weights_only=True)``); keys may carry a
    ``__S__.`` or ``module.`` prefix or sit under ``"state_dict"``. A file holding a whole pickled
    model is refused (unpickling runs arbitrary code); re-save its state dict once, inside a
    checkout of joonson/syncnet_python and only for a file you trust::

        import torch, SyncNetModel  # noqa: F401  (the class must be importable)
        m = torch.load("syncnet_v2.model", map_location="cpu", weights_only=False)
        torch.save(m.state_dict(), "syncnet_v2_state.model")

    Raises MissingWeightsError (no file) or InputError (unreadable, pickled model, wrong keys).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingWeightsError(
            f"SyncNet weights not found: {p} (syncnet_v2.model from joonson/syncnet_python)"
        )
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only load failed" in str(e).lower():
            raise InputError(
                f"{p} holds a pickled model, not a state dict: re-save its state_dict "
                "(3 lines in the docstring of a2v.metrics.syncnet.load_syncnet)"
            ) from e
        raise InputError(f"cannot read SyncNet weights {p}: {e}") from e
    except (RuntimeError, EOFError, OSError) as e:
        raise InputError(f"cannot read SyncNet weights {p}: {e}") from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{p} is not a SyncNet state dict (expected name -> tensor)")
    state = {_strip_prefix(k): v for k, v in state.items()}
    fc = state.get("netfcaud.3.weight")
    net = SyncNet(fc_dim=int(fc.shape[0]) if fc is not None else 1024)
    own = net.state_dict()
    unexpected = sorted(k for k in state if k not in own)
    missing = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
    bad = sorted(k for k in state if k in own and state[k].shape != own[k].shape)
    if unexpected or missing or bad:
        parts = [
            f"{what} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for what, keys in (
                ("unexpected keys", unexpected),
                ("missing keys", missing),
                ("wrong shapes", bad),
            )
            if keys
        ]
        raise InputError(f"{p} does not match SyncNet (joonson/syncnet_python class S): {'; '.join(parts)}")
    net.load_state_dict(state, strict=False)  # old files lack BatchNorm num_batches_tracked (unused in eval)
    return net.to(device).eval()


def _strip_prefix(key: str) -> str:
    for pre in ("__S__.", "module."):
        if key.startswith(pre):
            return key[len(pre) :]
    return key


# ---------------------------------------------------------------- scoring on embeddings


def sync_distances(lip: torch.Tensor, aud: torch.Tensor, vshift: int = 15) -> torch.Tensor:
    """Upstream ``calc_pdist``: distances of each lip embedding to audio embeddings at offsets.

    lip, aud: float (N,D) (one row per 5-frame window at 25 fps). Returns float32 (N, 2*vshift+1):
    ``out[i, j] = || lip[i] - audp[i + j] + 1e-6 ||_2`` with ``audp`` = ``aud`` zero-padded by
    ``vshift`` rows on both ends, i.e. column ``j`` compares with ``aud[i + j - vshift]``.
    """
    lip = torch.as_tensor(lip, dtype=torch.float32)
    aud = torch.as_tensor(aud, dtype=torch.float32)
    if lip.ndim != 2 or lip.shape != aud.shape:
        raise InputError(f"lip {tuple(lip.shape)} and audio {tuple(aud.shape)} embeddings must both be (N,D)")
    win = 2 * vshift + 1
    audp = torch.nn.functional.pad(aud, (0, 0, vshift, vshift))  # (N,D)->(N+2v,D)
    windows = audp.unfold(0, win, 1)  # (N,D,2v+1)
    return torch.linalg.vector_norm(lip[:, :, None] - windows + PAIRWISE_EPS, dim=1)  # (N,D,2v+1)->(N,2v+1)


def sync_scores(lip: torch.Tensor, aud: torch.Tensor, vshift: int = 15) -> dict:
    """Offset search of SyncNetInstance.evaluate on embeddings (N,D) each -> scores.

    mdist = frame-mean of :func:`sync_distances` (2v+1,); LSE-D = min(mdist);
    LSE-C = median(mdist) - min(mdist) (Wav2Lip Sec. 5); offset = vshift - argmin
    (positive: the lips follow the sound). Returns {"lse_d", "lse_c", "offset_frames",
    "mean_dists" (float list, one per offset -vshift..vshift as audio index shift)}.
    """
    mdist = sync_distances(lip, aud, vshift).mean(0)  # (N,2v+1)->(2v+1,)
    minval, minidx = torch.min(mdist, 0)
    conf = torch.median(mdist) - minval  # 2v+1 values: the median is the middle one
    return {
        "lse_d": float(minval),
        "lse_c": float(conf),
        "offset_frames": int(vshift - int(minidx)),
        "mean_dists": mdist.tolist(),
    }


# ---------------------------------------------------------------- audio features


def syncnet_mfcc(pcm: np.ndarray, sr: int = SR_HZ) -> np.ndarray:
    """python_speech_features.mfcc with its defaults, as SyncNet was trained on.

    pcm: float (S,) on the 16-bit integer scale ([-32768, 32767], as scipy.io.wavfile reads
    pcm_s16le), ``sr`` Hz. Returns float32 (13, T) at 100 Hz, ``T = 1 + ceil((S - 400) / 160)``
    at 16 kHz (frame t starts at sample 160 t, zero padded at the end). Rectangular 25 ms window,
    pre-emphasis 0.97, 512-point FFT, 26 HTK-mel triangles, natural log, orthonormal DCT-II,
    lifter 22, coefficient 0 replaced by the log frame energy.
    Hand-written: librosa / a2v.audio.mfcc use other filters, windows and centring.
    """
    from scipy.fft import dct

    x = np.asarray(pcm, np.float64).ravel()
    if x.size == 0:
        raise InputError("cannot compute MFCC of empty audio")
    flen, step, nfft, nfilt = int(round(0.025 * sr)), int(round(0.010 * sr)), 512, 26
    x = np.append(x[0], x[1:] - 0.97 * x[:-1])  # (S,) pre-emphasis
    n = 1 if x.size <= flen else 1 + int(np.ceil((x.size - flen) / step))
    x = np.concatenate([x, np.zeros((n - 1) * step + flen - x.size)])  # (S,)->(S')
    frames = x[np.arange(flen)[None, :] + step * np.arange(n)[:, None]]  # (T,flen)
    pspec = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft  # (T,nfft/2+1)
    energy = pspec.sum(1)  # (T,)
    energy = np.where(energy == 0, np.finfo(float).eps, energy)
    feat = pspec @ _mel_filters(nfilt, nfft, sr).T  # (T,257)->(T,26)
    feat = np.where(feat == 0, np.finfo(float).eps, feat)
    cep = dct(np.log(feat), type=2, axis=1, norm="ortho")[:, :13]  # (T,26)->(T,13)
    cep *= 1 + 11.0 * np.sin(np.pi * np.arange(13) / 22)  # lifter L=22: 1 + L/2 sin(pi n / L)
    cep[:, 0] = np.log(energy)
    return cep.T.astype(np.float32)  # (T,13)->(13,T)


def _mel_filters(nfilt: int, nfft: int, sr: int) -> np.ndarray:
    """python_speech_features.get_filterbanks: float64 (nfilt, nfft//2+1) HTK-mel triangles."""
    mel = np.linspace(0.0, 2595 * np.log10(1 + (sr / 2) / 700), nfilt + 2)
    bins = np.floor((nfft + 1) * 700 * (10 ** (mel / 2595) - 1) / sr)  # (nfilt+2,)
    fb = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        for i in range(int(lo), int(mid)):
            fb[j, i] = (i - lo) / (mid - lo)
        for i in range(int(mid), int(hi)):
            fb[j, i] = (hi - i) / (hi - mid)
    return fb


# ---------------------------------------------------------------- face crops


def smooth_boxes(boxes: np.ndarray) -> np.ndarray:
    """run_pipeline.py box smoothing: boxes float (F,4) x0,y0,x1,y1 px (no NaN) -> float64 (F,3)
    ``(cx, cy, half_size)`` each median-filtered over 13 frames (scipy medfilt, zero-padded ends)."""
    from scipy.signal import medfilt

    b = np.asarray(boxes, np.float64)
    s = np.maximum(b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]) / 2  # (F,)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2  # (F,)
    return np.stack([medfilt(v, SMOOTH_FRAMES) for v in (cx, cy, s)], 1)  # 3 x (F,) -> (F,3)


def crop_face(frame: np.ndarray, cx: float, cy: float, half: float) -> np.ndarray:
    """run_pipeline.py ``crop_video`` on one frame: uint8 (H,W,3) -> uint8 (224,224,3), same channels.

    Rows ``cy - half .. cy + 1.8 half``, columns ``cx +- 1.4 half`` (crop_scale 0.4), grey-110
    padding outside the frame, integer truncation and cv2.resize (bilinear) as upstream.
    Hand-written: the off-centre, unfiltered geometry is what SyncNet saw in training.
    """
    import cv2

    cs = CROP_SCALE
    pad = int(half * (1 + 2 * cs))
    img = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=PAD_GREY)
    my, mx = cy + pad, cx + pad
    face = img[
        int(my - half) : int(my + half * (1 + 2 * cs)), int(mx - half * (1 + cs)) : int(mx + half * (1 + cs))
    ]
    if face.size == 0:
        raise InputError(f"empty face crop (box centre {cx:.0f},{cy:.0f}, half size {half:.1f} px)")
    return cv2.resize(face, (CROP_PX, CROP_PX))  # (h,w,3)->(224,224,3)


def _fill_missing(boxes: np.ndarray) -> tuple[np.ndarray, int]:
    """NaN rows (no face) -> linear interpolation between detected frames (ends held); (F,4), count."""
    b = np.asarray(boxes, np.float64).copy()
    ok = np.isfinite(b).all(1)
    if not ok.any():
        return b, 0
    t = np.arange(len(b))
    for c in range(4):
        b[:, c] = np.interp(t, t[ok], b[ok, c])
    return b, int(ok.sum())


# ---------------------------------------------------------------- embeddings and the full score


@torch.inference_mode()
def embed_audio(
    net: SyncNet, mfcc: np.ndarray, n_windows: int, batch: int = 20, device: str = "cpu"
) -> torch.Tensor:
    """Audio embeddings of windows ``mfcc[:, 4w : 4w+20]`` for w < n_windows: (13,T) -> float32 (N,D) on CPU."""
    cc = torch.as_tensor(mfcc, dtype=torch.float32)
    out = []
    for i in range(0, n_windows, batch):
        w = range(i, min(n_windows, i + batch))
        x = torch.stack(
            [cc[:, MFCC_PER_FRAME * v : MFCC_PER_FRAME * v + MFCC_WINDOW] for v in w]
        )  # (B,13,20)
        out.append(net.forward_aud(x[:, None].to(device)).float().cpu())  # (B,1,13,20)->(B,D)
    return torch.cat(out)  # (N,D)


@torch.inference_mode()
def embed_lips(
    net: SyncNet, crops: Iterable[np.ndarray], n_windows: int, batch: int = 20, device: str = "cpu"
) -> torch.Tensor:
    """Lip embeddings of sliding 5-frame windows of crops (streamed, uint8 (224,224,3) BGR) -> (N,D) on CPU."""
    out = []
    for x in _batches(_windows(crops, n_windows), batch):  # (B,5,224,224,3)
        t = torch.from_numpy(x).to(device).float().permute(0, 4, 1, 2, 3)  # (B,5,H,W,3)->(B,3,5,H,W)
        out.append(net.forward_lip(t).float().cpu())  # (B,D)
    if not out:
        raise InputError(f"no lip windows: the video needs at least {LIP_WINDOW} frames")
    return torch.cat(out)  # (N,D)


def _windows(crops: Iterable[np.ndarray], n: int) -> Iterator[np.ndarray]:
    buf: deque[np.ndarray] = deque(maxlen=LIP_WINDOW)
    done = 0
    for c in crops:
        buf.append(c)
        if len(buf) == LIP_WINDOW:
            yield np.stack(buf)  # 5 x (H,W,3) -> (5,H,W,3)
            done += 1
            if done >= n:
                return


def _batches(items: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    chunk: list[np.ndarray] = []
    for it in items:
        chunk.append(it)
        if len(chunk) == size:
            yield np.stack(chunk)  # (B,...)
            chunk = []
    if chunk:
        yield np.stack(chunk)


def lse_scores(
    video_path: str | Path,
    syncnet: SyncNet,
    *,
    audio: str | Path | tuple[np.ndarray, int] | None = None,
    vshift: int = 15,
    batch: int = 20,
    device: str = "cpu",
    progress: bool = True,
    detector: str | object = "mtcnn",
    detect_every_frames: int = 1,
    min_face_px: float = 40.0,
) -> dict:
    """LSE-D / LSE-C of a talking-face video (Wav2Lip's protocol, one face track).

    video_path: any video; read at 25 fps (upstream re-encodes with ``-r 25``).
    audio: None = the video's own track; an audio/video file; or (float32 (S,) in [-1, 1], sr).
    The speaking face is tracked with :func:`a2v.face.track_speaker` (``detector`` name or object,
    every ``detect_every_frames`` frames; upstream detects every frame). Frames without a face get
    boxes interpolated from their neighbours (counted in ``lse_face_frames``).
    Returns {"lse_d", "lse_c", "offset_frames", "lse_n_frames" (video frames scored, 25 fps),
    "lse_face_frames" (those with a detected face), "lse_windows" (5-frame windows)}.
    Raises InputError for no face, no audio or a clip shorter than 6 frames.
    """
    from a2v.audio import load_audio, resample
    from a2v.face import TrackConfig, make_detector, track_speaker
    from a2v.video import read_frames

    vp = Path(video_path)
    if isinstance(audio, tuple):
        wav = resample(np.asarray(audio[0], np.float32), int(audio[1]), SR_HZ)
    else:
        wav = load_audio(vp if audio is None else audio, sr=SR_HZ)
    pcm = np.clip(np.round(wav.astype(np.float64) * 32768), -32768, 32767)  # pcm_s16le scale, as upstream
    mfcc = syncnet_mfcc(pcm, SR_HZ)  # (S,)->(13,T)

    det = (
        make_detector(detector, device=device, min_size_px=min(20.0, min_face_px))
        if isinstance(detector, str)
        else detector
    )
    cfg = TrackConfig(detect_every_frames=detect_every_frames, min_face_px=min_face_px)
    track = track_speaker(read_frames(vp, fps=FPS), det, cfg, progress=progress)
    boxes, n_face = _fill_missing(track.boxes)  # (F,4)
    if n_face == 0:
        raise InputError(f"no face found in any frame of {vp}; cannot compute LSE-C/LSE-D")
    n_frames = min(track.n_frames, len(pcm) // (SR_HZ // FPS))  # upstream min_length
    n_win = n_frames - LIP_WINDOW  # upstream lastframe = min_length - 5
    if n_win < 1:
        raise InputError(
            f"{vp}: {n_frames} frames with audio at 25 fps; SyncNet needs at least {LIP_WINDOW + 1}"
        )
    geo = smooth_boxes(boxes)  # (F,4)->(F,3)

    def crops() -> Iterator[np.ndarray]:
        for i, frame in enumerate(read_frames(vp, fps=FPS)):
            if i >= n_frames:
                return
            yield crop_face(frame[:, :, ::-1], *geo[i])  # RGB->BGR (upstream reads with cv2)

    syncnet = syncnet.to(device).eval()
    it = crops()
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=n_frames, desc=f"SyncNet {vp.name}", unit="frame")
    lip = embed_lips(syncnet, it, n_win, batch, device)  # (N,D)
    aud = embed_audio(syncnet, mfcc, n_win, batch, device)  # (N,D)
    if len(lip) != len(aud):
        raise InputError(f"{vp}: decoded {len(lip) + LIP_WINDOW - 1} frames, expected {n_frames}")
    res = sync_scores(lip, aud, vshift)
    return {
        "lse_d": res["lse_d"],
        "lse_c": res["lse_c"],
        "offset_frames": res["offset_frames"],
        "lse_n_frames": int(n_frames),
        "lse_face_frames": int(np.isfinite(track.boxes[:n_frames]).all(1).sum()),
        "lse_windows": int(n_win),
    }
