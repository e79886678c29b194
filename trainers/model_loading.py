"""Base model + tokenizer loading (local path or hub id), precision, QLoRA and LoRA target mapping.

torch / transformers / peft are imported inside functions so that importing this module stays cheap.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

TRAIN_EXTRA = "pip install 'alignloop[train]'"
PROMPT_TEMPLATE = "User: {prompt}\nAssistant: "

# Leaf module names per role across common architectures (Llama/Mistral/Qwen, GPT-2, GPT-NeoX, Phi, Falcon).
ROLE_MODULES = {
    "attn": ("q_proj", "k_proj", "v_proj", "o_proj", "c_attn", "query_key_value", "qkv_proj", "Wqkv", "out_proj",
             "dense"),
    "mlp": ("gate_proj", "up_proj", "down_proj", "c_fc", "fc1", "fc2", "dense_h_to_4h", "dense_4h_to_h", "w1", "w2",
            "w3", "gate_up_proj"),
}


def render_prompt(prompt: str) -> str:
    """The text a model sees before its answer; training and generation use the same rendering."""
    return PROMPT_TEMPLATE.format(prompt=prompt.strip())


def require_train_deps() -> None:
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import trl  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"training needs torch/transformers/peft/trl ({exc.name} missing): {TRAIN_EXTRA}") from None


def check_qlora() -> None:
    """QLoRA = 4-bit NF4 base via bitsandbytes, which needs CUDA. One clear line when it cannot work here."""
    import torch

    if not torch.cuda.is_available():
        raise ValueError("--qlora needs a CUDA GPU (4-bit NF4 via bitsandbytes); drop --qlora to train LoRA in "
                         "bf16/fp32 on this machine")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ValueError("--qlora needs bitsandbytes: pip install bitsandbytes") from None


def pick_dtype(bf16: bool | Literal["auto"]) -> Any:
    """bf16 on a GPU that supports it (or when forced); fp32 otherwise (bf16 matmuls on CPU are slow)."""
    import torch

    if bf16 is True:
        return torch.bfloat16
    if bf16 == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _is_local(base_model: str) -> bool:
    return Path(base_model).expanduser().exists()


def load_tokenizer(base_model: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(Path(base_model).expanduser()) if _is_local(base_model) else base_model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_base(base_model: str, *, head: Literal["causal", "score"] = "causal", qlora: bool = False,
              bf16: bool | Literal["auto"] = "auto") -> tuple[Any, Any]:
    """(model, tokenizer). ``head='score'`` gives a 1-logit sequence classifier (reward model) on the same base."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    tok = load_tokenizer(base_model)
    dtype = pick_dtype(bf16)
    kwargs: dict[str, Any] = {"dtype": dtype}
    if qlora:
        check_qlora()
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
    source = str(Path(base_model).expanduser()) if _is_local(base_model) else base_model
    try:
        if head == "score":
            model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1, **kwargs)
            model.config.pad_token_id = tok.pad_token_id
        else:
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except OSError as exc:
        raise ValueError(f"cannot load base model {base_model!r}: not a local directory, and the hub said: "
                         f"{str(exc).splitlines()[0]}") from None
    if qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    return model, tok


def resolve_lora_targets(model: Any, targets: list[str]) -> list[str]:
    """Map role names ('attn', 'mlp') to the leaf names of this model's linear layers; literal names pass through."""
    import torch

    leaves = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) or type(module).__name__ in ("Conv1D", "Linear4bit", "Linear8bitLt"):
            leaves.add(name.rsplit(".", 1)[-1])
    out: list[str] = []
    for t in targets:
        wanted = ROLE_MODULES.get(t, (t,))
        found = [m for m in wanted if m in leaves]
        if not found:
            raise ValueError(f"lora target {t!r} matches no linear layer of this model (has: {sorted(leaves)})")
        out.extend(m for m in found if m not in out)
    # never adapt the output/score heads through LoRA; the classifier head is trained fully via modules_to_save
    return [m for m in out if m not in ("lm_head", "score", "classifier")]


def lora_config(model: Any, r: int, alpha: int, dropout: float, targets: list[str], task: str = "CAUSAL_LM") -> Any:
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, bias="none", task_type=task,
                      target_modules=resolve_lora_targets(model, targets))
