"""One rule for named weight files (a2v.weight_files), the same in `a2v info` and the loaders."""

from __future__ import annotations

from pathlib import Path

import pytest

from a2v.errors import InputError, MissingWeightsError
from a2v.weight_files import locate_weight_file, resolve_weight_file

VQ_CKPT, VQ_YAML = "vqgan_imagenet_f16_16384.ckpt", "vqgan_imagenet_f16_16384.yaml"


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """(working folder, torch hub checkpoints folder, NVlabs download folder), all empty."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("DNNLIB_CACHE_DIR", str(tmp_path / "dnnlib"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    hub, dl = tmp_path / "torch" / "hub" / "checkpoints", tmp_path / "dnnlib" / "downloads"
    hub.mkdir(parents=True)
    dl.mkdir(parents=True)
    return work, hub, dl


def test_order_working_folder_hub_then_nvlabs_cache(dirs):
    work, hub, dl = dirs
    assert locate_weight_file("w.pkl") is None
    with pytest.raises(MissingWeightsError, match="w.pkl") as e:
        resolve_weight_file("w.pkl", what="StyleGAN network pickle", key="generator.path")
    assert str(hub) in str(e.value) and "generator.path" in str(e.value)
    (dl / "0123abcd_w.pkl").write_bytes(b"x")  # how NVlabs' open_url keeps a download
    assert resolve_weight_file("w.pkl", what="x") == dl / "0123abcd_w.pkl"
    (hub / "w.pkl").write_bytes(b"x")
    assert resolve_weight_file("w.pkl", what="x") == hub / "w.pkl"
    (work / "w.pkl").write_bytes(b"x")
    assert resolve_weight_file("w.pkl", what="x") == Path("w.pkl")


def test_paths_with_a_folder_are_taken_as_given(dirs):
    work, hub, _ = dirs
    (hub / "w.pkl").write_bytes(b"x")
    with pytest.raises(MissingWeightsError, match="sub/w.pkl"):
        resolve_weight_file("sub/w.pkl", what="x", key="k")
    (work / "sub").mkdir()
    (work / "sub" / "w.pkl").write_bytes(b"x")
    assert resolve_weight_file("sub/w.pkl", what="x") == Path("sub/w.pkl")
    with pytest.raises(MissingWeightsError, match="no x given: set k"):
        resolve_weight_file("", what="x", key="k")


def test_vqgan_loader_reads_the_file_info_reports(dirs):
    from a2v.info import collect_weights
    from a2v.recipes.image.generate.vqgan import load_taming_vqgan

    _, hub, _ = dirs
    w = collect_weights()
    assert not w["VQGAN ImageNet f16 16384"]["available"] and not w["VQGAN ImageNet f16 16384 config"]["available"]
    with pytest.raises(MissingWeightsError, match=VQ_CKPT):
        load_taming_vqgan(VQ_CKPT, VQ_YAML)
    (hub / VQ_YAML).write_text("model:\n  params:\n    embed_dim: 8\n    n_embed: 32\n    ddconfig:\n"
                               "      z_channels: 8\n      resolution: 32\n      in_channels: 3\n      out_ch: 3\n"
                               "      ch: 32\n      ch_mult: [1, 2]\n      num_res_blocks: 1\n"
                               "      attn_resolutions: []\n")
    import pickle

    (hub / VQ_CKPT).write_bytes(pickle.dumps({"state_dict": InputError("not a tensor")}))  # a non-tensor pickle
    w = collect_weights()
    assert w["VQGAN ImageNet f16 16384"]["detail"] == str(hub / VQ_CKPT)
    assert w["VQGAN ImageNet f16 16384 config"]["detail"] == str(hub / VQ_YAML)
    with pytest.raises(InputError, match=str(hub / VQ_CKPT)):  # the loader opened exactly that file
        load_taming_vqgan(VQ_CKPT, VQ_YAML)
