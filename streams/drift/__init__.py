"""Online drift detection and calibration tracking. Pure step logic here; the worker hook is a thin adapter."""
from streams.drift.bank import MonitorBank
from streams.drift.config import DriftConfig, MonitorConfig, load_drift_config
from streams.drift.monitor import DriftAlarm, DriftMonitor

__all__ = ["DriftAlarm", "DriftConfig", "DriftMonitor", "MonitorBank", "MonitorConfig", "load_drift_config"]
