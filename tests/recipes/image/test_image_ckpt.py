"""Published Lightning checkpoints: a file in taming-transformers' exact .ckpt layout is refused by the
weights_only loader with a one-line hint, converted once with an explicit trust flag, then loads."""

from __future__ import annotations

import sys

import pytest
import torch
from image_testutil import TAMING_YAML, _to_taming, lightning_ckpt, tiny_taming_reference

from a2v.errors import InputError
from a2v.recipes.image.ckpt import convert_lightning_checkpoint, read_state_dict
from a2v.recipes.image.generate.vqgan import load_taming_vqgan


def test_taming_lightning_ckpt_converts_once_with_trust(tmp_path, monkeypatch):
    ref = tiny_taming_reference()
    taming = _to_taming(ref.state_dict(), 2)
    ckpt = tmp_path / "last.ckpt"
    lightning_ckpt(ckpt, taming, monkeypatch)
    yaml = tmp_path / "vqgan.yaml"
    yaml.write_text(TAMING_YAML)
    assert "pytorch_lightning" not in sys.modules and "omegaconf" not in sys.modules
    with pytest.raises(InputError, match="a2v image convert-vqgan .*last.ckpt --trust-pickle") as err:
        load_taming_vqgan(ckpt, yaml)  # weights_only=True refuses the callbacks / hyper-parameters
    assert "e.g. pytorch_lightning." in str(err.value) and "\n" not in str(err.value)  # names the class, one line
    with pytest.raises(InputError, match="--trust-pickle"):
        convert_lightning_checkpoint(ckpt, tmp_path / "x.safetensors")  # no silent unpickling
    assert not (tmp_path / "x.safetensors").exists()
    out = tmp_path / "vqgan.safetensors"
    rep = convert_lightning_checkpoint(ckpt, out, trust_pickle=True, required_prefix="quantize.")
    assert rep["tensors"] == len(taming) and rep["global_step"] == "1234" and rep["unpickled"] == "True"
    assert "pytorch_lightning" not in sys.modules  # nothing was imported to read it
    vq = load_taming_vqgan(out, yaml)
    z = torch.randn(1, 8, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(vq.decode(z).sample, ref.decode(z).sample)
    # the config may keep naming the .ckpt: the converted file beside it is read instead of refusing the .ckpt
    rep = convert_lightning_checkpoint(ckpt, ckpt.with_suffix(".safetensors"), trust_pickle=True)
    with torch.no_grad():
        torch.testing.assert_close(load_taming_vqgan(ckpt, yaml).decode(z).sample, ref.decode(z).sample)
    with pytest.raises(InputError, match="no 'audio_encoder.\\*' tensors"):
        convert_lightning_checkpoint(ckpt, tmp_path / "y.safetensors", True, required_prefix="audio_encoder.")


def test_tensor_only_ckpt_loads_directly_and_cli_converts(tmp_path, monkeypatch, capsys):
    from a2v.cli import main

    ref = tiny_taming_reference()
    taming = _to_taming(ref.state_dict(), 2)
    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": taming, "epoch": 1, "global_step": 7}, plain)  # tensors and ints only
    assert set(read_state_dict(plain, "VQGAN checkpoint", "x")) == set(taming)
    ckpt = tmp_path / "last.ckpt"
    lightning_ckpt(ckpt, taming, monkeypatch)
    out = tmp_path / "a.safetensors"
    assert main(["image", "convert-vqgan", str(ckpt), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--trust-pickle" in err and not out.exists()
    assert main(["image", "convert-vqgan", str(ckpt), "-o", str(out), "--trust-pickle"]) == 0
    assert set(read_state_dict(out, "VQGAN", "x")) == set(taming)
    assert main(["image", "convert-wav2clip", str(ckpt), "-o", str(tmp_path / "b.safetensors"),
                 "--trust-pickle"]) == 2  # a VQGAN is not a Wav2CLIP checkpoint
    assert "audio_encoder" in capsys.readouterr().err
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="not a readable torch checkpoint"):
        read_state_dict(junk, "VQGAN checkpoint", "x")
    with pytest.raises(InputError, match="not a readable torch checkpoint"):
        convert_lightning_checkpoint(junk, tmp_path / "j.safetensors", trust_pickle=True)
    wav = tmp_path / "speech.wav"  # a file of another kind given by mistake: its bytes run as pickle opcodes
    wav.write_bytes(b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80>\x00\x00")
    with pytest.raises(InputError, match="not a readable torch checkpoint"):
        read_state_dict(wav, "VQGAN checkpoint", "x")
    with pytest.raises(InputError, match="not a readable torch checkpoint"):
        convert_lightning_checkpoint(wav, tmp_path / "w.safetensors", trust_pickle=True)
    assert not (tmp_path / "w.safetensors").exists()
