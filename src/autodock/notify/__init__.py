"""Notifications: Slack, generic JSON webhooks and Docker Hub callbacks, from a durable outbox.

``messages`` turns deploy records into outbox rows (pure); ``outbox`` delivers them;
``slack``, ``webhook`` and ``hub_callback`` speak each receiver's protocol.
"""

from __future__ import annotations

__all__: list[str] = []
