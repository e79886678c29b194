"""Escalation: which judged traces go to ``judge.escalations`` (``escalator``, pure), its rules (``config``) and the
worker hook that feeds it (``wiring``)."""
