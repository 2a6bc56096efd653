"""Talk recipe end to end on the tiny config: invert clips the tiny generator made, 2 VAE steps, 2 Embed2Lat
steps, export the pipeline, generate an mp4 with audio; save/load round trip; evaluation; the CLI."""

import json

import numpy as np
import pytest
import torch

from a2v.errors import InputError, MissingWeightsError


@pytest.fixture(scope="module")
def run(tiny_cfg, tiny_generator, tiny_clips, tmp_path_factory):
    from a2v.recipes.talk.train import run_invert, run_stage

    root = tmp_path_factory.mktemp("talk_run")
    run_invert(tiny_cfg, None, root, clips=tiny_clips, generator=tiny_generator, progress=False)
    run_stage(tiny_cfg, "vae", None, root, progress=False)
    pipe_dir = run_stage(tiny_cfg, "embed2lat", None, root, progress=False)
    return root, pipe_dir


def test_stages_write_their_folders(run, tiny_cfg, tiny_generator):
    from a2v.recipes.talk.data import LatentStore

    root, pipe_dir = run
    store = LatentStore(root / "latents")
    assert store.ids == ["clip0", "clip1", "clip2"]
    clip = store.clip("clip0")
    assert clip["ws"].shape == (15, tiny_generator.num_ws, tiny_generator.w_dim)
    assert clip["audio"].shape == (9600,) and torch.isfinite(clip["mse"]).all()
    for stage in ("vae", "embed2lat"):
        state = json.loads((root / stage / "checkpoints" / "step_000002" / "state.json").read_text())
        assert state["step"] == 2 and state["config"]["latents"]["layers"] == [5, 6, 7]
    assert (root / "vae" / "normalizer.json").is_file()
    assert json.loads((root / "embed2lat" / "checkpoints" / "best.json").read_text())["metric"] == "val_mse"
    assert sorted(p.name for p in pipe_dir.iterdir()) == ["embed2lat.safetensors", "generator", "talk.json",
                                                          "vae.safetensors"]


def test_generate_writes_mp4_with_audio(run, tiny_clips, tmp_path, wav2vec2_dir):
    from a2v.recipes.talk.pipeline import TalkPipeline
    from a2v.video import probe

    pipe = TalkPipeline.from_pretrained(run[1])
    audio = np.concatenate([tiny_clips[0].audio, tiny_clips[1].audio[:3200]])  # 0.8 s -> 20 frames
    res = pipe.generate(tiny_clips[0].frames[0], audio, tmp_path / "out.mp4", progress=False)
    assert res.frames.shape == (20, 32, 32, 3) and res.frames.dtype == np.uint8
    info = probe(tmp_path / "out.mp4")
    assert info.num_frames == 20 and info.fps == 25.0 and info.has_audio and info.audio_sr == 16000
    assert res.w0.shape == (8, 32)
    # the offsets move the face over time: motion_scale 0 gives one still image, the learned offsets do not
    still = pipe.generate(tiny_clips[0].frames[0], audio, motion_scale=0.0, w0=res.w0, progress=False)
    assert all(np.array_equal(f, still.frames[0]) for f in still.frames)
    big = pipe.generate(tiny_clips[0].frames[0], audio, motion_scale=50.0, w0=res.w0, progress=False)
    assert not all(np.array_equal(f, big.frames[0]) for f in big.frames)


def test_save_load_round_trip(run, tiny_clips, tmp_path):
    from a2v.recipes.talk.pipeline import TalkPipeline

    pipe = TalkPipeline.from_pretrained(run[1])
    pipe.save_pretrained(tmp_path / "copy")
    again = TalkPipeline.from_pretrained(tmp_path / "copy", speech_encoder=pipe._encoder())
    wav = tiny_clips[2].audio
    dw_a, dw_b = pipe.predict_offsets(wav, 15), again.predict_offsets(wav, 15)
    assert dw_a.shape == (15, 96)
    torch.testing.assert_close(dw_a, dw_b)
    w0 = pipe.generator.w_avg.expand(8, 32)
    assert np.array_equal(pipe.synthesize(w0, dw_a), again.synthesize(w0, dw_b))
    assert again.cfg == pipe.cfg and again.normalizer == pipe.normalizer
    with pytest.raises(MissingWeightsError, match="talk.json"):
        TalkPipeline.from_pretrained(tmp_path / "nothing")


def test_face_crop_with_a_detector(run, tiny_clips):
    from a2v.face import Detections
    from a2v.recipes.talk.pipeline import TalkPipeline

    class Fake:
        def __init__(self, boxes):
            self.boxes = np.asarray(boxes, np.float32).reshape(-1, 4)

        def detect(self, frames):
            return [Detections(self.boxes, np.ones(len(self.boxes), np.float32))]

    pipe = TalkPipeline.from_pretrained(run[1])
    photo = np.zeros((400, 300, 3), np.uint8)
    crop, tf = pipe.face_crop(photo, True, Fake([[10, 10, 50, 50], [100, 100, 220, 240]]))
    assert crop.shape == (256, 256, 3) and tf is not None
    assert np.allclose(tf.points_to_frame(np.array([128.0, 128.0])), [160, 170])  # centre of the larger face
    with pytest.raises(InputError, match="no face"):
        pipe.face_crop(photo, True, Fake([[10, 10, 50, 50]]))
    w0 = pipe.generator.w_avg.expand(8, 32)
    res = pipe.generate(photo, tiny_clips[0].audio[:4800], detect_face=True, paste_back=True, w0=w0,
                        detector=Fake([[100, 100, 220, 240]]), progress=False)
    assert res.frames.shape == (8, 400, 300, 3)  # 0.3 s at 25 fps, pasted into the photo
    assert (res.frames[:, :20] == 0).all() and res.frames[:, 170, 160].any()  # outside untouched, face inside


def test_evaluate_run(run):
    from a2v.recipes.talk.evaluate import evaluate_run

    m = evaluate_run(run[0])
    assert {"inversion_psnr_db", "inversion_mse", "vae_recon_mse", "embed2lat_val_mse"} <= set(m)
    assert m["eval_clips"] == 1 and m["inversion_psnr_db"] > 0
    assert json.loads((run[0] / "eval.json").read_text()) == m


def test_cli_generate(run, tiny_clips, tmp_path, capsys):
    from a2v.audio import save_audio
    from a2v.cli import main
    from a2v.video import probe, write_png

    photo = write_png(tmp_path / "face.png", tiny_clips[1].frames[0])
    wav = save_audio(tmp_path / "speech.wav", tiny_clips[1].audio, 16000)
    out = tmp_path / "cli.mp4"
    rc = main(["talk", "generate", "-m", str(run[1]), "-f", str(photo), "-a", str(wav), "-o", str(out),
               "--no-detect", "--set", "generate.invert_steps=2", "--device", "cpu"])
    assert rc == 0 and probe(out).num_frames == 15
    assert main(["talk", "generate", "-m", str(tmp_path / "none"), "-f", str(photo), "-a", str(wav)]) == 2
    capsys.readouterr()
    assert main(["talk", "generate", "-f", str(photo), "-a", str(wav)]) == 2  # no model: one line, no usage box
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: a2v talk generate needs --model") and "\n" not in err


def test_cli_train_invert_from_a_prepared_dataset(tiny_clips, tmp_path):
    from talk_testutil import write_prepared_dataset

    from a2v.cli import main
    from a2v.recipes.talk.data import LatentStore

    data = write_prepared_dataset(tmp_path / "data", tiny_clips[:2])
    rc = main(["talk", "train", "--stage", "invert", "-d", str(data), "-o", str(tmp_path / "run"), "--preset", "tiny",
               "--no-progress", "--set", "invert.first_steps=3", "--set", "invert.later_steps=1"])
    assert rc == 0
    store = LatentStore(tmp_path / "run" / "latents")
    assert store.ids == ["clip0", "clip1"] and store.clip("clip1")["ws"].shape == (15, 8, 32)
    assert (tmp_path / "run" / "generator" / "generator.json").is_file()  # the random built-in G is kept
    assert main(["talk", "train", "--stage", "vae", "-o", str(tmp_path / "none"), "--preset", "tiny"]) == 2


def test_cli_train_all_names_a_missing_speech_encoder_before_inverting(tiny_clips, tmp_path, capsys):
    from talk_testutil import write_prepared_dataset

    from a2v.cli import main

    data = write_prepared_dataset(tmp_path / "data", tiny_clips[:1])
    rc = main(["talk", "train", "--stage", "all", "-d", str(data), "-o", str(tmp_path / "run"), "--preset", "tiny",
               "--no-progress", "--set", f"audio.encoder={tmp_path / 'no_w2v'}"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: speech encoder weights folder") and "no_w2v" in err and "\n" not in err
    assert not (tmp_path / "run" / "latents").exists()  # nothing inverted before the failure
