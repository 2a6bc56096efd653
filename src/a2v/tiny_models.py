"""``a2v models tiny``: random-initialised, tiny Hugging Face model folders, built offline.

For smoke runs and tiny configs of the recipes whose encoders load a transformers folder
(``from_pretrained(path)``): wav2vec 2.0, WavLM and HuBERT speech encoders (with a
``Wav2Vec2FeatureExtractor``) and BERT (with a WordPiece tokenizer whose vocabulary holds the
special tokens, lowercase letters, digits and their ``##`` continuations, so any lowercase ASCII
text tokenizes), and Whisper (a byte-level tokenizer without merges, Whisper's 99+ language
tokens, the task and timestamp tokens, a log-mel feature extractor and a generation config with
``lang_to_id``, so :func:`a2v.encoders.langid.identify_language` and the Whisper ASR path load it).
The weights are random: the folders exercise the code paths, not the quality. A tiny Whisper can be
pinned to one language (``pin_language``): it then names that language whatever the audio, with a
known probability, for testing what callers do with the answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

KINDS = ("wav2vec2", "wavlm", "hubert", "bert", "whisper")

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


def whisper_language_tokens() -> list[str]:
    """Whisper's language tokens in its own order ("<|en|>", "<|zh|>", "<|de|>", ...)."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    return [f"<|{code}|>" for code in LANGUAGES]


def pin_language(model, code: str, logit: float = 10.0) -> None:  # noqa: ANN001 - WhisperForConditionalGeneration
    """Make a Whisper model name ``code`` at its first decoder step whatever the audio, in place.

    The decoder's final layer norm is set to output one fixed unit vector u (weight 0, bias u) and
    the output rows of the language tokens to ``logit * u`` for ``<|code|>`` and 0 for the others,
    so over L language tokens P(code) = e^logit / (e^logit + L - 1) (logit 0: uniform).
    """
    import torch

    gen = model.generation_config
    token = f"<|{code}|>"
    if token not in (gen.lang_to_id or {}):
        raise ValueError(f"{token} is not a language token of this model")
    d = model.config.d_model
    u = torch.zeros(d)
    u[0] = 1.0
    with torch.no_grad():
        norm = model.model.decoder.layer_norm
        norm.weight.zero_()
        norm.bias.copy_(u)
        out = model.get_output_embeddings().weight  # (V,D), tied to the decoder's token embedding
        for tok, i in gen.lang_to_id.items():
            out[i] = u * (logit if tok == token else 0.0)


def _write_tiny_whisper(tmp: Path, language: str | None, logit: float) -> None:
    """Tiny Whisper (d_model 32, 1+1 layers, 80 mel bins) + tokenizer + feature extractor into ``tmp``."""
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizer,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}  # 256 byte symbols, no merges
    langs = whisper_language_tokens()
    specials = ["<|endoftext|>", "<|startoftranscript|>", *langs, "<|translate|>", "<|transcribe|>",
                "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]
    for tok in specials + [f"<|{i * 0.02:.2f}|>" for i in range(1501)]:  # timestamps 0.00..30.00 s
        vocab[tok] = len(vocab)
    tokenizer = WhisperTokenizer(vocab=vocab, merges=[], language="en", task="transcribe")
    tokenizer.add_special_tokens({"additional_special_tokens": specials[1:]})
    eot, sot = vocab["<|endoftext|>"], vocab["<|startoftranscript|>"]
    cfg = WhisperConfig(
        vocab_size=len(vocab), num_mel_bins=80, d_model=32, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_target_positions=64, pad_token_id=eot, bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot,
    )
    model = WhisperForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, bos_token_id=eot, max_length=16,
        is_multilingual=True, lang_to_id={t: vocab[t] for t in langs},
        task_to_id={"transcribe": vocab["<|transcribe|>"], "translate": vocab["<|translate|>"]},
        no_timestamps_token_id=vocab["<|notimestamps|>"], prev_sot_token_id=vocab["<|startofprev|>"],
        max_initial_timestamp_index=50, alignment_heads=[[0, 0], [0, 1]],  # word times from cross-attention
        begin_suppress_tokens=[], suppress_tokens=[],
    )
    if language is not None:
        pin_language(model, language, logit)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(tmp)


def write_tiny_model(
    kind: str, folder: str | Path, seed: int = 0, language: str | None = None, language_logit: float = 10.0
) -> Path:
    """Write a tiny random ``kind`` model (+ feature extractor or tokenizer) into ``folder``; returns it.

    ``language`` (Whisper only): pin the model to that language code (see :func:`pin_language`,
    margin ``language_logit``); None = random answers.
    """
    import inspect
    import os
    import shutil
    import tempfile

    import torch

    from a2v.errors import InputError

    if kind not in KINDS:
        raise InputError(f"unknown tiny model kind '{kind}' (choose {', '.join(KINDS)})")
    if language is not None and kind != "whisper":
        raise InputError(f"--language pins a tiny Whisper's answer; it does not apply to --kind {kind}")
    if language is not None and f"<|{language}|>" not in whisper_language_tokens():
        raise InputError(f"--language {language!r} is not a Whisper language code (e.g. en, zh, de, es)")
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
        if kind == "whisper":
            _write_tiny_whisper(tmp, language, language_logit)
        elif kind == "bert":
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
    kind: Annotated[str, typer.Option("--kind", "-k", help="wav2vec2 | wavlm | hubert | bert | whisper")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write (must not exist).")],
    seed: Annotated[int, typer.Option(help="Random seed of the weights.")] = 0,
    language: Annotated[str | None, typer.Option(
        help="Whisper only: the language code the tiny model always identifies (p about 0.995); default random.")] = None,
) -> None:
    """Write a tiny random-initialised transformers folder (config, safetensors, preprocessor/tokenizer).

    Example: a2v models tiny --kind wavlm -o models/tiny-wavlm   |   a2v models tiny --kind whisper -o models/tiny-whisper
    """
    from a2v.cliutil import info
    from a2v.errors import InputError

    if output.exists():
        raise InputError(f"{output} exists: give a new folder")
    write_tiny_model(kind, output, seed, language=language)
    info(f"wrote a tiny random {kind} to {output} (for smoke runs: the weights are untrained)")
