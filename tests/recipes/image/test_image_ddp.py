"""The image recipe on 2 CPU processes (torchrun, DDP over gloo): identical queues and momentum heads on both
ranks, every rank's keys in the queues, one exported pipeline that loads.

Run by the test below, this file is also the worker script:
``python -m torch.distributed.run --nproc_per_node 2 test_image_ddp.py DATA OUT WAVLM``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "image" / "tiny.yaml"
STEPS, BATCH, WORLD = 3, 4, 2


def _sets(wavlm: Path) -> list[str]:
    return [f"audio.encoder={wavlm}", "loss.kind=moco", "data.aug_views=0", f"train.max_steps={STEPS}", f"train.batch_size={BATCH}", "train.cpu=true",
            "train.eval_every=0", "train.ckpt_every=0", "train.log_every=1", "data.val_fraction=0"]


def _worker(data: Path, out: Path, wavlm: Path) -> None:
    """One rank: the recipe's own ``train``, then this rank's trained and state modules to rank<r>.safetensors."""
    from accelerate import PartialState
    from safetensors.torch import save_file

    import a2v.recipes.image.train as image_train
    from a2v.config import load_config
    from a2v.recipes.image.config import ImageConfig

    tasks = []

    class Recorded(image_train.ContrastTask):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            tasks.append(self)

    image_train.ContrastTask = Recorded  # train() builds its task by this name
    cfg = load_config(ImageConfig, CONFIG, _sets(wavlm))
    image_train.train(cfg, data, out, progress=False)
    task = tasks[0]
    mods = {**task.modules(), **task.state_modules()}
    tensors = {f"{n}.{k}": v.detach().cpu().contiguous() for n, m in mods.items() for k, v in m.state_dict().items()}
    save_file(tensors, str(out / f"rank{PartialState().process_index}.safetensors"))


def _inputs(root: Path) -> Path:
    """8 (tone .wav, coloured .png) pairs in two class folders."""
    from image_testutil import tone

    from a2v.audio import save_audio
    from a2v.video import write_png

    src = root / "inputs"
    for c, (label, base) in enumerate((("bell", 300.0), ("drum", 900.0))):
        for k in range(4):
            save_audio(src / label / f"{label}{k}.wav", tone(base * (1 + 0.1 * k), 1.0, seed=k), 16000)
            img = np.zeros((32, 32, 3), np.uint8)
            img[..., c] = 40 + 50 * k
            write_png(src / label / f"{label}{k}.png", img)
    return src


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_share_queues_and_momentum_head(tmp_path, wavlm_dir):
    from safetensors.torch import load_file

    from a2v.recipes.image.cli import prepare
    from a2v.recipes.image.pipeline import ImagePipeline
    from a2v.train import EpochBatchSampler

    data, out = tmp_path / "data", tmp_path / "run"
    prepare([_inputs(tmp_path)], data, config=CONFIG, set_=["data.val_fraction=0"], progress=False)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(Path(__file__).parent),
                                                                            os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(WORLD),
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), __file__, str(data), str(out),
           str(wavlm_dir)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]

    r0, r1 = load_file(str(out / "rank0.safetensors")), load_file(str(out / "rank1.safetensors"))
    assert r0.keys() == r1.keys() and any(k.startswith("head_key.") for k in r0)
    for k in r0:  # trained head, momentum head and both queues: the same on both ranks
        assert torch.equal(r0[k], r1[k]), k
    for q in ("image_queue", "audio_queue"):  # WORLD * BATCH / WORLD keys per step: both ranks' batches
        assert int(r0[f"contrast.{q}.count"]) == STEPS * BATCH and int(r0[f"contrast.{q}.ptr"]) == STEPS * BATCH

    # the image queue holds the tower embeddings of the global batches, rank 0's half then rank 1's
    (cache,) = (data / "cache").glob("image_emb_*.safetensors")
    emb = torch.nn.functional.normalize(load_file(str(cache))["embeddings"], dim=-1)  # (N,E)
    sampler = EpochBatchSampler(len(emb), BATCH, seed=0)
    batches = [b for e in range(2) for b in sampler.global_batches(e)][:STEPS]
    expected = emb[torch.tensor([i for b in batches for i in b])]  # (STEPS*BATCH,E)
    torch.testing.assert_close(r0["contrast.image_queue.keys"][:STEPS * BATCH], expected)
    assert torch.count_nonzero(r0["contrast.image_queue.keys"][STEPS * BATCH:]) == 0

    pipe = ImagePipeline.from_pretrained(out / "pipeline")
    for k, v in pipe.audio.head.state_dict().items():
        assert torch.equal(v, r0[f"head.{k}"]), k
    from image_testutil import tone

    e = pipe.embed_audio(tone(440.0, 1.0))
    assert e.shape == (pipe.audio.head.out_dim,) and torch.isclose(e.norm(), torch.tensor(1.0))


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
