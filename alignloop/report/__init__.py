"""`alignloop report`: an HTML report with PNG plots of the Grafana views, read from the Delta tables."""
from alignloop.report.build import build_report

__all__ = ["build_report"]
