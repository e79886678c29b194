"""Online drift detection and calibration tracking. Pure step logic here; the worker hook is a thin adapter.

The names below are imported on first use (PEP 562): the monitor pulls in river (and through it scikit-learn and
SciPy, 1.5-6 s of imports), which a process that only reads the drift config (every process loads the configs:
``streams.configs`` imports ``streams.drift.config``), such as a replay process, never needs."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.drift.bank import MonitorBank
    from streams.drift.config import DriftConfig, MonitorConfig, load_drift_config
    from streams.drift.monitor import DriftAlarm, DriftMonitor

__all__ = ["DriftAlarm", "DriftConfig", "DriftMonitor", "MonitorBank", "MonitorConfig", "load_drift_config"]
_WHERE = {"MonitorBank": "streams.drift.bank", "DriftConfig": "streams.drift.config",
          "MonitorConfig": "streams.drift.config", "load_drift_config": "streams.drift.config",
          "DriftAlarm": "streams.drift.monitor", "DriftMonitor": "streams.drift.monitor"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
