"""Intake: webhook endpoints that turn registry payloads into durably stored events."""
