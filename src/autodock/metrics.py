"""Prometheus metrics, one registry per running server."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "autodock_events_received",
            "Webhook events received, by source and result",
            ["source", "result"],
            registry=self.registry,
        )
        self.deploys = Counter(
            "autodock_deploys",
            "Deploys finished, by kind and status",
            ["kind", "status"],
            registry=self.registry,
        )
        self.deploy_seconds = Histogram(
            "autodock_deploy_duration_seconds",
            "Time from start to end of a deploy",
            ["kind"],
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "autodock_queue_depth", "Deploys queued or running", ["status"], registry=self.registry
        )
        self.last_success = Gauge(
            "autodock_last_successful_deploy_timestamp_seconds",
            "Unix time of the last successful deploy, per target",
            ["target"],
            registry=self.registry,
        )
        self.notifications = Counter(
            "autodock_notifications",
            "Notification delivery attempts, by channel and result (sent, retry, dead)",
            ["channel", "result"],
            registry=self.registry,
        )
        self.notifications_queued = Gauge(
            "autodock_notifications_queued",
            "Notifications in the outbox, by status (pending, dead)",
            ["status"],
            registry=self.registry,
        )
        # ---- dashboard/API (issue #5): store-backed gauges, refreshed on each scrape
        self.deploys_stored = Gauge(
            "autodock_deploys_by_status",
            "Deploys in the store, by status",
            ["status"],
            registry=self.registry,
        )
        self.pauses = Gauge("autodock_pauses", "Paused rules and services", registry=self.registry)
        self.stream_clients = Gauge(
            "autodock_stream_clients", "Open /api/v1/stream connections", registry=self.registry
        )
        # ---- the notification outbox sets these (autodock_outbox_*)
        self.outbox_depth = Gauge(
            "autodock_outbox_depth", "Notifications waiting in the outbox", registry=self.registry
        )
        self.outbox_oldest_age = Gauge(
            "autodock_outbox_oldest_age_seconds",
            "Age of the oldest notification waiting in the outbox (0 when empty)",
            registry=self.registry,
        )
