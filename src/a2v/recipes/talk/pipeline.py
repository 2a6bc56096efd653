"""Talk inference pipeline (diffusers style): one face photo + speech -> talking-face video.

    pipe = TalkPipeline.from_pretrained("runs/talk/pipeline")
    res = pipe.generate(photo="face.jpg", audio="speech.wav", output="out.mp4")   # res.frames uint8 (F,H,W,3)

Steps (talk paper sec. 3.5): photo -> face crop (MTCNN, like the training data) -> W+ inversion -> w0;
audio (16 kHz) -> wav2vec2 features (50 Hz) -> Embed2Lat -> predicted VAE codes mu per frame (fps) x motion_scale
(paper: 500) -> VAE decode -> offsets (de-normalised) -> W+ rows ``latents.layers`` of w0 replaced by w0 + dw ->
synthesis -> frames -> optional paste-back into the photo -> H.264 video with the audio muxed.

A saved folder holds ``talk.json`` (format, resolved TalkConfig, normalizer, sizes), ``vae.safetensors``,
``embed2lat.safetensors`` and, for the built-in generator, ``generator/``. An NVlabs generator is not
copied: ``talk.json`` keeps its path (``generator.path``), and ``from_pretrained(generator_path=...)``
points elsewhere. The speech encoder is loaded from ``audio.encoder`` (or passed in).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from a2v.config import from_dict, replace, to_dict
from a2v.errors import InputError, MissingWeightsError
from a2v.io import atomic_path, write_json_atomic
from a2v.nn.vae import MLPVAE
from a2v.recipes.talk.config import TalkConfig
from a2v.recipes.talk.data import Normalizer, apply_offsets, frames_to_tensor, tensor_to_frames
from a2v.recipes.talk.model import Embed2Lat

PIPELINE_FORMAT = "a2v.talk_pipeline/1"
CONFIG_FILE = "talk.json"


@dataclass
class TalkResult:
    """frames uint8 (F,H,W,3) RGB at ``fps``; audio float32 (S,) 16 kHz; w0 float32 (num_ws,w_dim) of the photo;
    path: the written video or None."""

    frames: np.ndarray
    fps: float
    audio: np.ndarray
    w0: torch.Tensor
    path: Path | None = None


class TalkPipeline:
    """generator (a2v.gan.stylegan.StyleGenerator), VAE (a2v.nn.vae.MLPVAE), Embed2Lat, offset normalizer, config."""

    def __init__(self, generator: nn.Module, vae: MLPVAE, embed2lat: Embed2Lat, normalizer: Normalizer,
                 cfg: TalkConfig, speech_encoder: nn.Module | None = None) -> None:
        self.generator = generator.eval().requires_grad_(False)
        self.vae, self.embed2lat = vae.eval(), embed2lat.eval()
        self.normalizer, self.cfg = normalizer, cfg
        self.speech_encoder = speech_encoder
        self.init_encoder: nn.Module | None = None  # invert.init=encoder, loaded on first use
        if max(cfg.latents.layers) >= generator.num_ws:
            raise InputError(f"latents.layers {cfg.latents.layers} exceed the generator's {generator.num_ws} W+ rows")

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    def to(self, device: str | torch.device) -> TalkPipeline:
        for m in (self.generator, self.vae, self.embed2lat, self.speech_encoder):
            if m is not None:
                m.to(device)
        self.init_encoder = None  # reloaded on the new device when needed
        return self

    # --- persistence ------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``talk.json``, ``vae.safetensors``, ``embed2lat.safetensors`` (+ ``generator/``) into ``path``."""
        from safetensors.torch import save_file

        from a2v.gan.stylegan import SmallStyleGenerator

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        for name, m in (("vae", self.vae), ("embed2lat", self.embed2lat)):
            state = {k: v.detach().cpu().contiguous() for k, v in m.state_dict().items()}
            with atomic_path(d / f"{name}.safetensors") as tmp:
                save_file(state, str(tmp), metadata={"format": PIPELINE_FORMAT})
        builtin = isinstance(self.generator, SmallStyleGenerator)
        if builtin:
            self.generator.save_pretrained(d / "generator")
        write_json_atomic(d / CONFIG_FILE, {
            "format": PIPELINE_FORMAT,
            "config": to_dict(self.cfg),
            "normalizer": self.normalizer.to_dict(),
            "generator": "generator" if builtin else str(getattr(self.generator, "source", self.cfg.generator.path)),
            "w_dim": int(self.generator.w_dim),
            "num_ws": int(self.generator.num_ws),
            "speech_dim": int(self.embed2lat.in_dim),
        })
        return d

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str | torch.device | None = None,
                        speech_encoder: nn.Module | None = None, generator: nn.Module | None = None,
                        overrides: list[str] | None = None) -> TalkPipeline:
        """Load a folder written by :meth:`save_pretrained`.

        generator: use this generator instead of the saved one / the pickle named in ``talk.json``.
        overrides: ``["generate.motion_scale=2", "generator.path=/x/g.pkl"]`` applied to the saved config.
        """
        from safetensors.torch import load_file

        from a2v.device import resolve_device
        from a2v.gan.stylegan import SmallStyleGenerator, load_generator

        d = Path(path).expanduser()
        cfg_path = d / CONFIG_FILE
        if not cfg_path.is_file():
            raise MissingWeightsError(f"talk pipeline config not found: {cfg_path} (train with `a2v talk train`)")
        info = json.loads(cfg_path.read_text(encoding="utf-8"))
        if info.get("format") != PIPELINE_FORMAT:
            raise InputError(f"{cfg_path} is not a talk pipeline (format {info.get('format')!r})")
        cfg = from_dict(TalkConfig, info["config"], str(cfg_path))
        if overrides:
            cfg = replace(cfg, overrides)
        dev = resolve_device(device or cfg.device)
        for name in ("vae", "embed2lat"):
            if not (d / f"{name}.safetensors").is_file():
                raise MissingWeightsError(f"talk pipeline weights not found: {d / f'{name}.safetensors'}")
        vae = MLPVAE(cfg.vae_dims(int(info["w_dim"])))
        vae.load_state_dict(load_file(str(d / "vae.safetensors")))
        net = Embed2Lat(cfg.embed2lat, int(info["speech_dim"]), cfg.vae.latent_dim)
        net.load_state_dict(load_file(str(d / "embed2lat.safetensors")))
        if generator is None:
            if info["generator"] == "generator" and not any(o.startswith("generator.") for o in overrides or []):
                generator = SmallStyleGenerator.from_pretrained(d / "generator")
            else:
                g = cfg.generator
                generator = load_generator(g.kind, g.path, code_dir=g.code_dir or None, trust_pickle=g.trust_pickle,
                                           builtin=g.builtin)
        n = info["normalizer"]
        pipe = cls(generator, vae, net, Normalizer(float(n["mean"]), float(n["std"])), cfg, speech_encoder)
        return pipe.to(dev)

    # --- steps ------------------------------------------------------------------------------
    def _encoder(self) -> nn.Module:
        if self.speech_encoder is None:
            from a2v.recipes.talk.train import build_speech_encoder

            self.speech_encoder = build_speech_encoder(self.cfg, self.device)
        return self.speech_encoder

    def face_crop(self, photo: np.ndarray, detect_face: bool = True, detector: Any = None) -> tuple[np.ndarray, Any]:
        """photo uint8 (H,W,3) -> (face crop uint8 (C,C,3), a2v.face.CropTransform or None when not detected).

        With ``detect_face`` the largest face (>= ``generate.min_face_px``) is cropped like the training data.
        """
        g = self.cfg.generate
        if not detect_face:
            return photo, None
        from a2v.face import CropTransform, box_size_px, make_detector

        det = detector if detector is not None else make_detector("mtcnn", str(self.device), min_size_px=20.0)
        found = det.detect([photo])[0]
        sizes = box_size_px(found.boxes) if len(found) else np.zeros(0)
        ok = sizes >= g.min_face_px
        if not ok.any():
            raise InputError(f"no face of >= {g.min_face_px:g} px found in the photo ({len(found)} smaller or none); "
                             "give a larger face, or --no-detect if the photo is already a face crop")
        box = found.boxes[int(np.argmax(np.where(ok, sizes, -1)))]
        tf = CropTransform.from_box(box, photo.shape[:2], g.crop_size_px, g.margin_frac)
        return tf.apply(photo), tf

    def invert_photo(self, face: np.ndarray, steps: int | None = None, progress: bool = False) -> torch.Tensor:
        """face uint8 (H,W,3) -> w0 float32 (num_ws,w_dim): W+ optimisation (paper schedule) from a random w
        (``invert.init=random``, paper, seeded by ``invert.seed``), ``w_avg`` (``mean``) or the encoder's output
        (``encoder``)."""
        from a2v.gan.invert import optimize_ws
        from a2v.recipes.talk.invert import build_init_encoder, build_inversion_loss, random_start

        G, inv = self.generator, self.cfg.invert
        target = frames_to_tensor(face[None], G.resolution).to(self.device)  # (H,W,3)->(1,3,R,R)
        if inv.init == "encoder":
            if self.init_encoder is None:
                self.init_encoder = build_init_encoder(self.cfg, G, self.device)
            init = self.init_encoder(target)  # (1,3,R,R)->(1,num_ws,w_dim)
        elif inv.init == "random":
            init = random_start(G, ["photo"], inv.seed, self.device)  # (1,num_ws,w_dim)
        else:
            init = G.w_avg.detach().to(self.device)[None, None].expand(1, G.num_ws, -1)  # (w_dim,)->(1,num_ws,w_dim)
        loss_fn = build_inversion_loss(self.cfg, self.device)
        res = optimize_ws(G.synthesis, target, init, steps or self.cfg.generate.invert_steps, inv.first_lr, loss_fn,
                          lr_final=inv.first_lr_final, progress=progress, desc="photo inversion")
        return res.ws[0]

    @torch.no_grad()
    def predict_codes(self, wav: np.ndarray | torch.Tensor, n_frames: int) -> torch.Tensor:
        """wav float32 (S,) 16 kHz -> Embed2Lat's predicted VAE codes mu float32 (F,Z) for ``n_frames`` frames, run
        as it was trained (whole audio, or windows of ``embed2lat.window_frames``: model.predict_clip_codes)."""
        from a2v.recipes.talk.model import predict_clip_codes
        from a2v.recipes.talk.train import encode_speech

        enc = self._encoder()
        feats = encode_speech(enc, torch.as_tensor(wav, dtype=torch.float32))  # (S,)->(T,D)
        return predict_clip_codes(self.embed2lat, feats, n_frames, self.cfg.embed2lat.window_frames,
                                  float(getattr(enc, "frame_rate_hz", 50.0)), self.cfg.generate.fps)  # (T,D)->(F,Z)

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor, motion_scale: float = 1.0) -> torch.Tensor:
        """codes mu float (F,Z) -> de-normalised offsets float32 (F, L*w_dim) of ``motion_scale * mu``
        (paper sec. 3.5: the predicted latent code is multiplied by 500 before the VAE decoder)."""
        return self.normalizer.inverse(self.vae.decode(codes * motion_scale))  # (F,Z)->(F,L*w_dim)

    @torch.no_grad()
    def predict_offsets(self, wav: np.ndarray | torch.Tensor, n_frames: int,
                        motion_scale: float | None = None) -> torch.Tensor:
        """wav float32 (S,) 16 kHz -> de-normalised offsets float32 (F, L*w_dim) for ``n_frames`` frames, decoded
        from the predicted codes times ``motion_scale`` (default ``generate.motion_scale``)."""
        scale = self.cfg.generate.motion_scale if motion_scale is None else motion_scale
        return self.decode_codes(self.predict_codes(wav, n_frames), scale)  # (S,)->(F,Z)->(F,L*w_dim)

    @torch.no_grad()
    def synthesize(self, w0: torch.Tensor, dw: torch.Tensor, progress: bool = False) -> np.ndarray:
        """w0 (num_ws,w_dim), dw (F, L*w_dim) -> frames uint8 (F,R,R,3)."""
        from tqdm.auto import tqdm

        ws = apply_offsets(w0.to(self.device), dw.to(self.device), self.cfg.latents.layers)  # ->(F,num_ws,w_dim)
        b = self.cfg.generate.batch_frames
        out = [tensor_to_frames(self.generator.synthesis(ws[a : a + b]))  # (b,num_ws,w_dim)->(b,R,R,3)
               for a in tqdm(range(0, ws.shape[0], b), desc="frames", unit="batch", disable=not progress, leave=False)]
        return np.concatenate(out)  # (F,R,R,3)

    def generate(self, photo: str | Path | np.ndarray, audio: str | Path | np.ndarray, output: str | Path | None = None,
                 *, motion_scale: float | None = None, detect_face: bool | None = None, paste_back: bool | None = None,
                 detector: Any = None, w0: torch.Tensor | None = None, progress: bool = True) -> TalkResult:
        """Photo (path or uint8 (H,W,3) RGB) + audio (path or float32 (S,) at 16 kHz) -> video frames at
        ``generate.fps``, F = round(S / 16000 * fps); written with the audio to ``output`` (.mp4) when given.

        w0: a ready W+ code (num_ws,w_dim) of the face (skips the inversion). motion_scale: multiplies the
        predicted VAE codes before decoding (default ``generate.motion_scale``; paper 500).
        """
        import cv2

        from a2v.audio import load_audio, num_video_frames
        from a2v.video import load_image

        g = self.cfg.generate
        sr = self.cfg.audio.sample_rate_hz
        img = load_image(photo) if isinstance(photo, str | Path) else np.asarray(photo)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise InputError(f"photo must be uint8 (H,W,3) RGB, got {img.dtype} {img.shape}")
        wav = load_audio(audio, sr=sr) if isinstance(audio, str | Path) else np.asarray(audio, np.float32)
        if wav.ndim != 1 or wav.size == 0:
            raise InputError(f"audio must be a mono float32 (S,) waveform at {sr} Hz, got shape {wav.shape}")
        n_frames = num_video_frames(wav.shape[0], sr, g.fps)
        if n_frames < 1:
            raise InputError(f"audio too short for one frame at {g.fps:g} fps ({wav.shape[0]} samples)")
        face, tf = self.face_crop(img, g.detect_face if detect_face is None else detect_face, detector)
        if w0 is None:
            w0 = self.invert_photo(face, progress=progress)
        dw = self.predict_offsets(wav, n_frames, motion_scale)  # (S,)->(F,L*w_dim)
        frames = self.synthesize(w0, dw, progress)  # (F,R,R,3)
        if (g.paste_back if paste_back is None else paste_back) and tf is not None:
            size = (tf.size_px, tf.size_px)
            frames = np.stack([tf.paste_back(img, cv2.resize(f, size, interpolation=cv2.INTER_CUBIC))
                               for f in frames])  # (F,R,R,3)->(F,H,W,3)
        path = None
        if output is not None:
            from a2v.video import VideoWriter

            with VideoWriter(output, g.fps, audio=wav, audio_sr=sr) as w:
                for f in frames:
                    w.write(f)
            path = Path(output)
        return TalkResult(frames, float(g.fps), wav, w0.detach().cpu(), path)
