"""The HTTP API, metrics and dashboard."""
