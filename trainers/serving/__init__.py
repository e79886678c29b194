"""Serving runtime: one base model loaded once, many LoRA adapters resident, swapped per request.

``adapter_files`` identifies and checks adapter directories (content hash, corrupt or foreign adapters);
``runtime`` keeps the base and the resident adapters (background attach, warm-up, LRU eviction) and generates
(greedy or sampled, streaming). torch / transformers / peft are imported inside functions.
"""
from trainers.serving.adapter_files import AdapterFiles, adapter_content_hash, read_adapter
from trainers.serving.errors import ServingError

__all__ = ["AdapterFiles", "ServingError", "adapter_content_hash", "read_adapter"]
