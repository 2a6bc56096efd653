"""Streaming video writing (PyAV): H.264 (libx264, yuv420p) with an optional AAC audio track.

Frames are encoded as they arrive, so a long video is never held in memory. Output is
atomic: it is written to a temporary file beside the target and renamed on success;
an error inside the writer leaves no file behind.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from a2v.errors import InputError
from a2v.io import atomic_path
from a2v.video.probe import open_video, probe, video_stream
from a2v.video.reader import read_audio, read_frames

CONTAINERS = (".mp4", ".mov", ".m4v", ".mkv")
AUDIO_BITRATE = 128_000  # bit/s, AAC
COPY_CODECS = {"h264", "hevc", "av1"}  # video codecs remuxed as is by mux_audio (others are re-encoded)


class VideoWriter:
    """Write uint8 (H,W,3) RGB frames to an H.264 video with an optional mono AAC track.

    Use as a context manager::

        with VideoWriter("out.mp4", fps=25, audio=wav, audio_sr=16000) as w:
            for frame in frames:      # uint8 (H,W,3), every frame the same size
                w.write(frame)

    Args:
        path: output file; .mp4, .mov, .m4v or .mkv.
        fps: frame rate in frames/s (may be fractional, e.g. 29.97).
        audio: optional float32 waveform in [-1, 1] at ``audio_sr`` Hz, mono (S,) or
            mono/stereo (C,S) with C in {1, 2}; it is trimmed or zero-padded to the video
            duration (frames / fps) and muxed as AAC with its channels and rate.
        audio_sr: sample rate of ``audio`` in Hz.
        crf: x264 constant rate factor (0 lossless .. 51 worst; 18 is visually lossless).
        preset: x264 speed preset ("ultrafast" .. "veryslow").

    Frames with an odd height or width are padded by one edge-replicated row/column,
    since yuv420p needs even sizes. Packets are interleaved (audio follows the frames).
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        audio: np.ndarray | None = None,
        audio_sr: int = 16000,
        crf: int = 18,
        preset: str = "medium",
    ) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in CONTAINERS:
            raise ValueError(f"video output must end in one of {CONTAINERS}: {self.path}")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.rate = Fraction(fps).limit_denominator(1001 * 1000)
        self.fps = float(fps)
        self.audio = _audio_array(audio) if audio is not None else None
        self.audio_sr = int(audio_sr)
        self.crf = int(crf)
        self.preset = preset
        self.num_frames = 0
        self._size: tuple[int, int] | None = None  # (H, W) as given
        self._stack: contextlib.ExitStack | None = None
        self._container: av.container.OutputContainer | None = None
        self._vstream = None
        self._audio: _AudioTrack | None = None

    def __enter__(self) -> VideoWriter:
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        options = {"movflags": "+faststart"} if self.path.suffix.lower() != ".mkv" else {}
        self._container = av.open(str(tmp), mode="w", options=options)
        self._stack.callback(self._container.close)
        return self

    def write(self, frame: np.ndarray) -> None:
        """Encode one frame: uint8 (H,W,3) RGB in [0, 255], the same size as the first one."""
        if self._container is None:
            raise RuntimeError("VideoWriter.write() outside its `with` block")
        rgb = np.asarray(frame)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"frame must be uint8 (H,W,3) RGB, got {rgb.dtype} {rgb.shape}")
        if self._size is None:
            self._open_streams(rgb.shape[0], rgb.shape[1])
        elif rgb.shape[:2] != self._size:
            raise ValueError(f"frame {self.num_frames} is {rgb.shape[:2]}, the first was {self._size} (H,W)")
        pad_h, pad_w = rgb.shape[0] % 2, rgb.shape[1] % 2
        if pad_h or pad_w:
            rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")  # (H,W,3) -> (H+1?,W+1?,3)
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        vf.pts = self.num_frames
        vf.time_base = 1 / self.rate
        for packet in self._vstream.encode(vf):
            self._container.mux(packet)
        self.num_frames += 1
        if self._audio is not None:
            self._audio.feed_until(self.num_frames / self.rate)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        stack, self._stack = self._stack, None
        try:
            if exc_type is None:
                if self.num_frames == 0:
                    raise InputError(f"no frames were given for {self.path}; nothing written")
                for packet in self._vstream.encode(None):
                    self._container.mux(packet)
                if self._audio is not None:
                    self._audio.finish(self.num_frames / self.rate)
        except BaseException:
            stack.__exit__(*sys.exc_info())
            raise
        stack.__exit__(exc_type, exc, tb)  # closes the container; renames or removes the file
        self._container = None
        return False

    def _open_streams(self, height: int, width: int) -> None:
        self._size = (height, width)
        vs = self._container.add_stream("libx264", rate=self.rate)
        vs.width, vs.height = width + width % 2, height + height % 2
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": str(self.crf), "preset": self.preset}
        self._vstream = vs
        if self.audio is not None:
            self._audio = _AudioTrack(self._container, self.audio, self.audio_sr)


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    audio: np.ndarray | None = None,
    audio_sr: int = 16000,
    crf: int = 18,
    preset: str = "medium",
    progress: bool = False,
    total: int | None = None,
) -> int:
    """Write uint8 (H,W,3) RGB frames (any iterable, consumed lazily) to ``path``; returns the frame count.

    Arguments as in :class:`VideoWriter`; ``progress`` shows a tqdm bar (``total`` frames if known).
    """
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"write {Path(path).name}", unit="frame")
    try:
        with VideoWriter(path, fps, audio=audio, audio_sr=audio_sr, crf=crf, preset=preset) as w:
            for frame in frames:
                w.write(frame)
                if bar is not None:
                    bar.update(1)
        return w.num_frames
    finally:
        if bar is not None:
            bar.close()


def mux_audio(
    video_path: str | Path,
    audio: str | Path | np.ndarray,
    out_path: str | Path,
    audio_sr: int | None = None,
) -> Path:
    """Put an audio track on a video: the video stream is copied, the audio encoded as AAC.

    Args:
        video_path: input video; any audio track it has is replaced.
        audio: a media file with sound (wav, flac, mp3, a video...) or a float32 (S,)
            mono waveform in [-1, 1] at ``audio_sr`` Hz. It is mixed to mono and trimmed
            or zero-padded to the video duration.
        out_path: output .mp4/.mov/.m4v/.mkv, written atomically.

    H.264, HEVC and AV1 video packets are remuxed without re-encoding; other codecs (or a
    container that refuses the codec) are re-encoded with libx264 (crf 18).
    """
    vpath, out = Path(video_path), Path(out_path)
    if out.suffix.lower() not in CONTAINERS:
        raise ValueError(f"video output must end in one of {CONTAINERS}: {out}")
    if isinstance(audio, str | Path):
        wav, sr = read_audio(audio)
    else:
        if audio_sr is None:
            raise ValueError("audio_sr (Hz) is required when audio is an array")
        wav, sr = _audio_array(audio), int(audio_sr)
    info = probe(vpath)
    if info.codec in COPY_CODECS:
        try:
            _remux(vpath, wav, sr, out, info.duration_s)
            return out
        except _CopyFailed:  # the output container does not take this codec: re-encode it
            pass
    write_video(out, read_frames(vpath, fps=info.fps), info.fps, audio=wav, audio_sr=sr)
    return out


def _remux(vpath: Path, wav: np.ndarray, sr: int, out: Path, duration_s: float) -> None:
    """Copy the video packets of ``vpath`` and encode ``wav`` beside them into ``out`` (atomic)."""
    with open_video(vpath) as src, atomic_path(out) as tmp:
        vs = video_stream(src, vpath)
        options = {"movflags": "+faststart"} if out.suffix.lower() != ".mkv" else {}
        try:
            with av.open(str(tmp), mode="w", options=options) as dst:
                ov = dst.add_stream_from_template(vs)
                track = _AudioTrack(dst, wav, sr)
                for packet in src.demux(vs):
                    if packet.dts is None:  # demuxer flush packet
                        continue
                    track.feed_until(float(packet.dts * packet.time_base))
                    packet.stream = ov
                    dst.mux(packet)
                track.finish(duration_s)
        except av.FFmpegError as e:
            raise _CopyFailed(str(e)) from e


_LAYOUTS = {1: "mono", 2: "stereo"}


class _AudioTrack:
    """Encode a float32 (S,) mono or (C,S) waveform as AAC in step with the video, padded/trimmed at the end."""

    def __init__(self, container: av.container.OutputContainer, wav: np.ndarray, sr: int) -> None:
        wav = wav[None] if wav.ndim == 1 else wav  # (S,)->(1,S); (C,S) kept
        self.layout = _LAYOUTS[wav.shape[0]]
        self.stream = container.add_stream("aac", rate=sr, layout=self.layout, bit_rate=AUDIO_BITRATE * wav.shape[0])
        self.container, self.wav, self.sr = container, wav, sr
        self.pos = 0  # samples encoded so far

    def feed_until(self, t_s: float) -> None:
        """Encode samples up to time ``t_s`` (seconds), zero-padding past the end of the waveform."""
        stop = int(round(float(t_s) * self.sr))
        if stop <= self.pos:
            return
        chunk = self.wav[:, self.pos : stop]  # (C,s)
        if chunk.shape[1] < stop - self.pos:
            chunk = np.pad(chunk, ((0, 0), (0, stop - self.pos - chunk.shape[1])))  # (C,s) -> (C,stop-pos)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(chunk, np.float32), format="fltp", layout=self.layout
        )  # (C,s)
        frame.sample_rate = self.sr
        frame.pts = self.pos
        frame.time_base = Fraction(1, self.sr)
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.pos = stop

    def finish(self, duration_s: float) -> None:
        """Encode up to ``duration_s`` (the rest of the waveform is dropped) and flush the encoder."""
        self.feed_until(duration_s)
        for packet in self.stream.encode(None):
            self.container.mux(packet)


def _mono_audio(audio: np.ndarray) -> np.ndarray:
    """Check and convert a waveform to float32 (S,) mono."""
    wav = np.asarray(audio)
    if wav.ndim != 1:
        raise ValueError(f"audio must be mono float (S,), got shape {wav.shape}; average the channels first")
    if not np.issubdtype(wav.dtype, np.floating):
        raise ValueError(f"audio must be float in [-1, 1], got {wav.dtype}")
    return wav.astype(np.float32, copy=False)


def _audio_array(audio: np.ndarray) -> np.ndarray:
    """Check a waveform: float (S,) mono or (C,S) with C in {1, 2} -> float32, same shape."""
    wav = np.asarray(audio)
    if wav.ndim == 2 and wav.shape[0] in _LAYOUTS:
        if not np.issubdtype(wav.dtype, np.floating):
            raise ValueError(f"audio must be float in [-1, 1], got {wav.dtype}")
        return wav.astype(np.float32, copy=False)
    if wav.ndim == 2:
        raise ValueError(f"audio must be mono (S,) or (C,S) with 1 or 2 channels, got shape {wav.shape}; downmix first")
    return _mono_audio(wav)


class _CopyFailed(Exception):
    """The output container cannot take the input's video codec as is."""
