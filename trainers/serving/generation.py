"""Generation on the runtime's worker thread: one request, one adapter (or the base), greedy or sampled,
token by token to a callback for streaming, cancellable between tokens (a client that went away)."""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from trainers.serving.errors import ServingError


@dataclass
class GenerationRequest:
    input_ids: list[int]
    max_new_tokens: int = 16
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    on_tokens: Callable[[list[int]], None] | None = None  # called on the worker thread, per new token
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class GenerationResult:
    token_ids: list[int]
    text: str
    finish_reason: str  # stop | length | cancelled
    prompt_tokens: int


class _Cancel:
    """A StoppingCriteria: stop between tokens once the request is cancelled."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class _StopText:
    """A StoppingCriteria: stop once the new text contains a stop sequence. It decodes the last few tokens
    itself, which works with any tokenizer (transformers' ``stop_strings`` needs one whose vocabulary it can
    embed, and raised on the tiny test tokenizer)."""

    def __init__(self, tokenizer: Any, stops: list[str], prompt_len: int) -> None:
        self.tok, self.stops, self.start = tokenizer, stops, prompt_len
        self.window = 4 * max(len(s) for s in stops) + 4  # tokens: a byte-level token may hold a quarter of a character

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        tail = input_ids[0, max(self.start, input_ids.shape[1] - self.window):].tolist()
        text = self.tok.decode(tail, skip_special_tokens=True)
        hit = any(s in text for s in self.stops)
        return torch.full((input_ids.shape[0],), hit, dtype=torch.bool, device=input_ids.device)


class _Streamer:
    """transformers' streamer protocol: ``put`` first gets the prompt (skipped), then each new token."""

    def __init__(self, on_tokens: Callable[[list[int]], None]) -> None:
        self.on_tokens, self.prompt_seen = on_tokens, False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.on_tokens(value.reshape(-1).tolist())

    def end(self) -> None:
        pass


def select_adapter(runtime: Any, resident: Any | None) -> Any:
    """Worker thread: make ``resident`` the active adapter (the switch a request pays); returns the context to
    generate in (adapters disabled for the base model)."""
    model = runtime.model
    if resident is None:
        return model.disable_adapter() if model is not runtime.base else contextlib.nullcontext()
    if resident.peft_name not in getattr(model, "peft_config", {}):
        raise ServingError(f"adapter {resident.content_hash} was detached before this request ran; retry",
                           status=503, type="server_error", code="adapter_detached", param="model")
    if model.active_adapter != resident.peft_name:
        model.set_adapter(resident.peft_name)
    return contextlib.nullcontext()


def generate_on_model(runtime: Any, req: GenerationRequest, resident: Any | None) -> GenerationResult:
    """Worker thread only. ``resident`` None = the base model (adapters disabled)."""
    import torch
    from transformers import StoppingCriteriaList

    model, tok = runtime.model, runtime.tokenizer
    if req.cancel.is_set():
        return GenerationResult([], "", "cancelled", len(req.input_ids))
    scope = select_adapter(runtime, resident)
    device = next(runtime.base.parameters()).device
    ids = torch.tensor([req.input_ids], device=device)
    kwargs: dict[str, Any] = dict(input_ids=ids, attention_mask=torch.ones_like(ids),
                                  max_new_tokens=req.max_new_tokens, pad_token_id=tok.pad_token_id,
                                  eos_token_id=tok.eos_token_id)
    criteria: list[Any] = [_Cancel(req.cancel)]
    if req.stop:
        criteria.append(_StopText(tok, req.stop, len(req.input_ids)))
    kwargs["stopping_criteria"] = StoppingCriteriaList(criteria)
    if req.temperature > 0:
        kwargs.update(do_sample=True, temperature=req.temperature, top_p=req.top_p)
        if req.seed is not None:
            torch.manual_seed(req.seed)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    if req.on_tokens is not None:
        kwargs["streamer"] = _Streamer(req.on_tokens)
    with scope, torch.inference_mode():
        out = model.generate(**kwargs)
    new = out[0, len(req.input_ids):].tolist()
    text = tok.decode(new, skip_special_tokens=True)
    finish = "stop" if (new and new[-1] == tok.eos_token_id) or len(new) < req.max_new_tokens else "length"
    if req.cancel.is_set():
        finish = "cancelled"
    for s in req.stop:  # OpenAI leaves the stop sequence out of the text
        if s in text:
            text, finish = text[: text.index(s)], "stop"
    return GenerationResult(new, text, finish, len(req.input_ids))
