"""fit_person + generate end to end on a tiny config: one person's clip -> pipeline folder -> mp4."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_lipsync_pipeline import TEMPLATE_CFG, make_talking_video

from a2v.errors import InputError

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_fit_then_generate(tmp_path) -> None:
    pytest.importorskip("skimage")
    from a2v.config import load_config
    from a2v.recipes.lipsync.config import LipSyncConfig
    from a2v.recipes.lipsync.fit import fit_person, tiny_stage2
    from a2v.recipes.lipsync.pipeline import LipSyncPipeline
    from a2v.video import probe

    video = tmp_path / "anna.mp4"
    wav = make_talking_video(video, seconds=2.0)
    cfg = load_config(LipSyncConfig, REPO / "configs" / "lipsync" / "tiny.yaml")
    stage2 = replace(tiny_stage2(), template=TEMPLATE_CFG)
    out = fit_person(video, tmp_path / "anna", cfg, progress=False, stage2=stage2, device="cpu")
    for name in ("pipeline.json", "mouth_model.safetensors", "renderer/generator.safetensors",
                 "template/template.json", "template/source.mp4", "fit.json"):
        assert (out / name).is_file(), name
    pipe = LipSyncPipeline.from_pretrained(out, allow_unusable=True)  # 2 steps: judged not usable
    assert pipe.template.speaker == "anna" and "anna" in pipe.features.speakers

    speech = np.concatenate([wav, wav[:12000]])  # 2.75 s: longer than the 2 s template
    report = pipe.generate(speech, tmp_path / "out.mp4", progress=False)
    info = probe(tmp_path / "out.mp4")
    n = round(2.75 * 25)
    assert info.fps == 25 and info.num_frames == n and info.has_audio and info.audio_sr == 16000
    assert abs(info.duration_s - 2.75) < 0.1
    assert report["frames"] == n and report["frames_without_face"] == 0

    with pytest.raises(InputError, match="already holds"):
        fit_person(video, out, cfg, progress=False, stage2=stage2)


def test_fit_refuses_a_video_without_sound(tmp_path) -> None:
    from a2v.recipes.lipsync.config import LipSyncConfig
    from a2v.recipes.lipsync.fit import fit_person
    from a2v.video import VideoWriter

    silent = tmp_path / "silent.mp4"
    with VideoWriter(silent, 25) as w:
        for _ in range(3):
            w.write(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(InputError, match="audio"):
        fit_person(silent, tmp_path / "o", LipSyncConfig(), progress=False)
    with pytest.raises(InputError, match="not found"):
        fit_person(tmp_path / "nope.mp4", tmp_path / "o", LipSyncConfig(), progress=False)
