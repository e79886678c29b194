"""Drift events (``drift.events``) and retraining requests (``train.requests``): the contracts live in
``schemas.drift``; re-exported here for the drift package's callers."""
from schemas.drift import DriftEvent, TrainRequest

__all__ = ["DriftEvent", "TrainRequest"]
