"""``a2v talk evaluate --video``: a video with no face keeps the run's metrics (exit 0, the sync reported as not
measured); a video that does not exist fails before eval.json is written."""

import json

import numpy as np
import pytest

from a2v.errors import InputError


@pytest.fixture(scope="module")
def run(tiny_cfg, tiny_generator, tiny_clips, tmp_path_factory):
    from a2v.recipes.talk.train import run_invert, run_stage

    root = tmp_path_factory.mktemp("talk_eval_run")
    run_invert(tiny_cfg, None, root, clips=tiny_clips, generator=tiny_generator, progress=False)
    run_stage(tiny_cfg, "vae", None, root, progress=False)
    run_stage(tiny_cfg, "embed2lat", None, root, progress=False)
    return root


@pytest.fixture(scope="module")
def faceless_video(tiny_clips, tmp_path_factory):
    from a2v.video import VideoWriter

    path = tmp_path_factory.mktemp("talk_eval_video") / "gray.mp4"
    with VideoWriter(path, 25.0, audio=tiny_clips[0].audio, audio_sr=16000) as w:
        for _ in range(15):
            w.write(np.full((64, 64, 3), 128, np.uint8))
    return path


def test_no_face_in_the_video_keeps_the_other_metrics(run, faceless_video, capsys):
    pytest.importorskip("facenet_pytorch")
    pytest.importorskip("dlib")
    from a2v.cli import main

    (run / "eval.json").unlink(missing_ok=True)
    rc = main(["talk", "evaluate", str(run), "--video", str(faceless_video), "--device", "cpu"])
    out = capsys.readouterr().err
    assert rc == 0
    m = json.loads((run / "eval.json").read_text())
    assert {"inversion_psnr_db", "vae_recon_mse", "embed2lat_val_mse"} <= set(m) and "sync_corr" not in m
    assert "no face" in m["not_measured"]["sync"] and str(faceless_video) in m["not_measured"]["sync"]
    assert "sync: not measured" in out and "embed2lat_val_mse" in out


def test_measured_sync_is_written_and_missing_video_fails_first(run, faceless_video, monkeypatch, capsys):
    import a2v.metrics.sync as sync
    from a2v.cli import main
    from a2v.recipes.talk.evaluate import evaluate_run

    monkeypatch.setattr(sync, "measure_video_sync", lambda *a, **k: {"sync_corr": 0.5, "sync_lag_frames": 1,
                                                                     "n_face_frames": 14, "n_frames": 15})
    m = evaluate_run(run, video=faceless_video)
    assert m["sync_corr"] == 0.5 and m["sync_face_frames"] == 14 and "not_measured" not in m
    assert json.loads((run / "eval.json").read_text()) == m

    (run / "eval.json").unlink()
    with pytest.raises(InputError, match="not found"):
        evaluate_run(run, video=run / "none.mp4")
    capsys.readouterr()
    assert main(["talk", "evaluate", str(run), "--video", str(run / "none.mp4")]) == 2
    assert not (run / "eval.json").exists()  # failed before writing
    assert capsys.readouterr().err.strip().startswith("error: video to evaluate not found")
