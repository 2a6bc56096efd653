"""Text encoder (BERT family) over transformers' AutoTokenizer/AutoModel: token embeddings + mask."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from a2v.encoders._hub import hub_offline, missing_weights, resolve_pretrained
from a2v.encoders.speech import _check_weight_files
from a2v.errors import ConfigError, InputError


class TextEncoder(nn.Module):
    """Sentences -> contextual token embeddings.

    ``encode(texts: list[str]) -> (emb float32 (B,L,D), mask bool (B,L))``: L = the longest
    tokenised text in the batch (special tokens [CLS]/[SEP] included, at most
    ``max_length``), ``mask`` True on real tokens; padded positions of ``emb`` are zero.
    ``layer``: "last" or an int index into the hidden states (0 = input embeddings).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        layer: str | int = "last",
        freeze: bool = True,
        max_length: int = 512,
        model_id: str = "",
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        n_layers = int(model.config.num_hidden_layers)
        if not (layer == "last" or (isinstance(layer, int) and -n_layers - 1 <= layer <= n_layers)):
            raise ConfigError(f"text encoder layer {layer!r} must be 'last' or an int in 0..{n_layers}")
        self.layer = layer
        self.dim = int(model.config.hidden_size)
        self.max_length = int(max_length)
        self.frozen = freeze
        self.model_id = model_id
        if freeze:
            model.requires_grad_(False)
            model.eval()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        layer: str | int = "last",
        freeze: bool = True,
        device: str | torch.device | None = None,
        max_length: int = 512,
        allow_download: bool | None = None,
        set_key: str = "text.encoder",
    ) -> TextEncoder:
        """Load a BERT-family model and its tokenizer from a folder or the Hugging Face cache.

        ``name_or_path``: a hub id ("bert-base-chinese") or a folder written by
        ``save_pretrained`` (model and tokenizer). MissingWeightsError when absent, whose hint
        names ``set_key`` (the caller's config key for the folder).
        """
        from transformers import AutoModel, AutoTokenizer

        what = "text encoder"
        src = resolve_pretrained(name_or_path, what, set_key, allow_download)
        local = Path(src).is_dir()
        if local:
            _check_weight_files(Path(src), what)
        only_local = local or hub_offline()
        try:
            tok = AutoTokenizer.from_pretrained(src, local_files_only=only_local)
        except (OSError, ValueError) as e:
            raise missing_weights("text encoder tokenizer", str(name_or_path), set_key) from e
        try:
            model = AutoModel.from_pretrained(src, local_files_only=only_local)
        except OSError as e:
            raise missing_weights(what, str(name_or_path), set_key) from e
        max_len = min(max_length, int(getattr(model.config, "max_position_embeddings", max_length)))
        enc = cls(model, tok, layer, freeze, max_len, model_id=str(name_or_path))
        return enc.to(device) if device is not None else enc

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def train(self, mode: bool = True) -> TextEncoder:
        """Set training mode; a frozen model stays in eval mode."""
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    def encode(self, texts: list[str] | str) -> tuple[torch.Tensor, torch.Tensor]:
        """texts: B strings -> (emb float32 (B,L,D), mask bool (B,L)); longer texts are cut at max_length.

        Raises InputError for an empty list.
        """
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 0:
            raise InputError("text encoder got no texts; give at least one string")
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = self.model(**batch, output_hidden_states=self.layer != "last")
        emb = out.last_hidden_state if self.layer == "last" else out.hidden_states[self.layer]  # (B,L,D)
        mask = batch["attention_mask"].bool()  # (B,L)
        return emb * mask[..., None].to(emb.dtype), mask

    def forward(self, texts: list[str] | str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(texts)
