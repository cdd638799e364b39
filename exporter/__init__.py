"""model-exporter: a Prometheus exporter sidecar for ML models."""

__version__ = "0.1.0"
