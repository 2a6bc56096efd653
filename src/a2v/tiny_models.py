"""``a2v models tiny``: random-initialised, tiny Hugging Face model folders, built offline.

For smoke runs and tiny configs of the recipes whose encoders load a transformers folder
(``from_pretrained(path)``): wav2vec 2.0, WavLM and HuBERT speech encoders (with a
``Wav2Vec2FeatureExtractor``) and BERT (with a WordPiece tokenizer whose vocabulary holds the
special tokens, lowercase letters, digits and their ``##`` continuations, so any lowercase ASCII
text tokenizes). The weights are random: the folders exercise the code paths, not the quality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

KINDS = ("wav2vec2", "wavlm", "hubert", "bert")

app = typer.Typer(help="Model folders for offline use. Example: a2v models tiny --kind wavlm -o models/tiny-wavlm",
                  no_args_is_help=True)

_SPEECH = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
               conv_dim=(8,) * 7,  # default kernels and strides: 320 samples per frame (20 ms at 16 kHz)
               num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)


def bert_vocab() -> list[str]:
    """WordPiece vocabulary: special tokens, a-z, 0-9, punctuation and their ``##`` forms."""
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    punct = list(".,!?'-:;\"()")
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *punct, *(f"##{c}" for c in chars)]


def write_tiny_model(kind: str, folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random ``kind`` model (+ feature extractor or tokenizer) into ``folder``; returns it."""
    import inspect
    import os
    import shutil
    import tempfile

    import torch

    from a2v.errors import InputError

    if kind not in KINDS:
        raise InputError(f"unknown tiny model kind '{kind}' (choose {', '.join(KINDS)})")
    from transformers import (
        AutoModel,
        BertConfig,
        BertTokenizerFast,
        HubertConfig,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        WavLMConfig,
    )

    out = Path(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))  # renamed onto out when complete
    try:
        if kind == "bert":
            vocab = bert_vocab()
            vf = tmp / "vocab.txt"
            vf.write_text("\n".join(vocab) + "\n", encoding="utf-8")
            arg = "vocab" if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters else "vocab_file"
            BertTokenizerFast(**{arg: str(vf)}, do_lower_case=True).save_pretrained(tmp)
            cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=128)
            AutoModel.from_config(cfg).save_pretrained(tmp)
        else:
            cfg = {"wav2vec2": Wav2Vec2Config, "wavlm": WavLMConfig, "hubert": HubertConfig}[kind](**_SPEECH)
            AutoModel.from_config(cfg).save_pretrained(tmp)
            Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(tmp)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


@app.command()
def tiny(
    kind: Annotated[str, typer.Option("--kind", "-k", help="wav2vec2 | wavlm | hubert | bert")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write (must not exist).")],
    seed: Annotated[int, typer.Option(help="Random seed of the weights.")] = 0,
) -> None:
    """Write a tiny random-initialised transformers folder (config, safetensors, preprocessor/tokenizer).

    Example: a2v models tiny --kind wavlm -o models/tiny-wavlm
    """
    from a2v.cliutil import info
    from a2v.errors import InputError

    if output.exists():
        raise InputError(f"{output} exists: give a new folder")
    write_tiny_model(kind, output, seed)
    info(f"wrote a tiny random {kind} to {output} (for smoke runs: the weights are untrained)")
