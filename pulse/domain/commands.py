"""A device command's lifecycle and limits, shared by the API, the store and the scheduler's sweep."""
from __future__ import annotations

OPEN_STATUSES = ("pending", "delivered")
STATUSES = ("pending", "delivered", "succeeded", "failed", "rejected", "expired")
MAX_PARAMS_BYTES = 4096  # JSON-encoded params: the command travels in one MQTT message
