"""Prometheus metrics of drift monitoring, calibration and the retraining trigger (registry passed in)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from streams.drift.monitor import DriftAlarm


class DriftMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.events = Counter("alignloop_drift_events_total", "Drift events raised, by policy and signal.",
                              ["policy_id", "signal"], registry=registry)
        self.last_event = Gauge("alignloop_drift_last_event_timestamp_seconds", "Unix time of the last drift event.",
                                ["policy_id", "signal"], registry=registry)
        self.magnitude = Gauge("alignloop_drift_last_magnitude_zscore", "Size of the last drift, in reference "
                               "standard deviations of a block mean.", ["policy_id", "signal"], registry=registry)
        self.signal_mean = Gauge("alignloop_drift_signal_mean", "Latest block mean of a monitored signal (judge "
                                 "scores, refusal rate, tool error rate, log latency, ...).", ["policy_id", "signal"],
                                 registry=registry)
        self.signal_z = Gauge("alignloop_drift_signal_zscore", "Latest block mean in reference standard deviations.",
                              ["policy_id", "signal"], registry=registry)
        self.warming = Gauge("alignloop_drift_monitors_warming", "Monitors still learning their reference.",
                             registry=registry)
        self.monitors = Gauge("alignloop_drift_monitors", "Monitors, one per (policy, signal).", registry=registry)
        self.traces = Counter("alignloop_drift_traces_total", "Judged traces the monitors read.", registry=registry)
        self.state_saves = Counter("alignloop_drift_state_saves_total", "Detector state checkpoints written.",
                                   registry=registry)
        self.state_restores = Counter("alignloop_drift_state_restores_total", "Worker starts, by how the detector "
                                      "state came back.", ["result"], registry=registry)
        self.state_invalid = Counter("alignloop_drift_state_invalid_total", "Stored drift snapshots refused at "
                                     "start-up (forged, corrupt, a future version or another config), by reason.",
                                     ["reason"], registry=registry)
        self.rejected = Gauge("alignloop_drift_rejected_values", "NaN, infinite or absurdly large signal values the "
                              "monitors ignored since start.", registry=registry)
        self.train_requests = Counter("alignloop_drift_train_requests_total", "Retraining requests published.",
                                      ["policy_id", "reason"], registry=registry)
        self.labels = Counter("alignloop_calibration_labels_total", "Labels read, by whether they joined a "
                              "remembered trace.", ["matched"], registry=registry)
        self.ece = Gauge("alignloop_calibration_ece_ratio", "Windowed expected calibration error.",
                         ["judge", "policy_id"], registry=registry)
        self.brier = Gauge("alignloop_calibration_brier_score", "Windowed Brier score.", ["judge", "policy_id"],
                           registry=registry)
        self.window = Gauge("alignloop_calibration_window_labels", "Labels in the calibration window.",
                            ["judge", "policy_id"], registry=registry)
        self.bin_pred = Gauge("alignloop_calibration_bin_predicted_ratio", "Mean predicted pass probability per "
                              "reliability bin.", ["judge", "policy_id", "bin"], registry=registry)
        self.bin_obs = Gauge("alignloop_calibration_bin_observed_ratio", "Observed pass rate per reliability bin.",
                             ["judge", "policy_id", "bin"], registry=registry)
        self.misjudged = Counter("alignloop_calibration_misjudged_total", "Labels that disagree with the judge.",
                                 ["judge", "policy_id"], registry=registry)
        self.store_size = Gauge("alignloop_calibration_store_traces", "Traces remembered for the label join.",
                                registry=registry)
        for m in ("true", "false"):
            self.labels.labels(m)

    def on_alarm(self, a: DriftAlarm, unix_ts: float) -> None:
        self.events.labels(a.policy_id, a.signal).inc()
        self.last_event.labels(a.policy_id, a.signal).set(unix_ts)
        self.magnitude.labels(a.policy_id, a.signal).set(a.z)
