"""Does the tiny face config give a recognisable face on its tiny task? Detector rate vs training length.

    python benchmarks/face_tiny_task.py [--steps 400,1500]

The tiny task: the tiny-config decoder (16 px, T = 100; base 8 channels) learns 4 LFW faces of
scikit-image, each keyed by its own unit embedding (as in
tests/recipes/face/test_face_conditioning.py), with Adam 3e-3, batch 8, 10% condition dropout.
After each training length, 16 samples (4 per face) per sampler x guidance weight are drawn from
one fixed noise, and scored: how many dlib's HOG detector finds a face in (on the picture enlarged
to 160 px, as ``a2v face evaluate`` does; the 4 training faces: 4/4), and the MSE to the
condition's face ([-1, 1] scale). Writes benchmarks/results/face_tiny_task.json. CPU, 1 thread.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from a2v.config import load_config, replace
from a2v.diffusion.ddpm import ddpm_sample, ddpm_training_loss, make_scheduler
from a2v.io import write_json_atomic
from a2v.recipes.face.config import FaceConfig
from a2v.recipes.face.data import to_model_image, to_uint8
from a2v.recipes.face.decoder import FaceDecoder
from a2v.recipes.face.evaluate import landmarks_of
from a2v.recipes.face.tiny_data import tiny_faces

REPO = Path(__file__).resolve().parents[1]
N_FACES, SIZE_PX, PER_FACE = 4, 16, 4


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="400,1500", help="training lengths to score, comma-separated")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tiny = load_config(FaceConfig, REPO / "configs" / "face" / "tiny.yaml")
    cfg = replace(tiny, ["decoder.base_channels=8", "decoder.norm_groups=4", "decoder.num_heads=1"])
    faces = to_model_image(tiny_faces(N_FACES, SIZE_PX), SIZE_PX)  # (4,3,16,16)
    emb = torch.linalg.qr(torch.randn(128, N_FACES))[0].T.contiguous()  # (4,128) orthonormal
    net = FaceDecoder(cfg.decoder, 128)
    d = cfg.decoder
    sched = make_scheduler("ancestral", d.num_train_timesteps, d.beta_schedule)
    x0, cond = faces.repeat(2, 1, 1, 1), emb.repeat(2, 1)  # (8,...)
    g = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    c = emb.repeat_interleave(PER_FACE, 0)  # (16,128)
    target = faces.repeat_interleave(PER_FACE, 0)  # (16,3,16,16)
    _, found_true = landmarks_of(to_uint8(faces))
    rows, done, t0 = [], 0, time.time()
    for n_steps in sorted(int(s) for s in args.steps.split(",")):
        net.train()
        for _ in range(n_steps - done):
            loss = ddpm_training_loss(net, x0, cond, sched, cond_dropout_prob=d.cond_dropout_prob, generator=g)
            opt.zero_grad()
            loss.backward()
            opt.step()
        done = n_steps
        net.eval()
        for sampler, steps in (("ddim", 20), ("ddim", 50), ("ancestral", None)):
            s = make_scheduler(sampler, d.num_train_timesteps, d.beta_schedule, clip_sample=True)
            for w in (0.0, 1.0, 2.0):
                with torch.no_grad():
                    x = ddpm_sample(net, (len(c), 3, SIZE_PX, SIZE_PX), s, cond=c, num_inference_steps=steps, w=w,
                                    generator=torch.Generator().manual_seed(123), progress=False)  # (16,3,16,16)
                _, found = landmarks_of(to_uint8(x))
                row = {"train_steps": n_steps, "sampler": sampler, "sample_steps": steps or d.num_train_timesteps,
                       "guidance": w, "faces_found": int(found.sum()), "of": len(found),
                       "mse_to_own_face": float(((x - target) ** 2).mean())}
                rows.append(row)
                print(row, flush=True)
    out = {"task": __doc__.split("\n\n")[2].strip(), "training_faces_found": int(found_true.sum()),
           "rows": rows, "seconds": round(time.time() - t0, 1)}
    write_json_atomic(REPO / "benchmarks" / "results" / "face_tiny_task.json", out)


if __name__ == "__main__":
    main()
