"""Curation: judged traces and preferences into ``sft_examples`` and ``preferences`` rows (``rules``, pure) and
the idempotent Delta landing of them (``sink``)."""
