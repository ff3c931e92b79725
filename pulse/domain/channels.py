"""The vocabulary of notifications, in one place for every layer that names it.

The HTTP schemas (which channel types and events a body may name), the channel implementations
in pulse.integrations.channels (which must provide exactly these types), the Notifier and the
job store all spell these words the same way because they import them from here.
"""
from __future__ import annotations

# The channel types, in the order error messages and the API documentation list them.
CHANNEL_TYPES = ("webhook", "email", "slack", "teams", "pagerduty", "mqtt", "telemetron")

# The alert events a routing rule can select and a channel is told about.
EVENTS = ("OPEN", "ACKNOWLEDGED", "CLOSED", "ESCALATED")
# A channel test's event: sent on request, never routed.
TEST_EVENT = "TEST"

# A delivery job's life: PENDING -> PROCESSING (claimed by one sender) -> COMPLETED | FAILED,
# or back to PENDING for a retry.
PENDING, PROCESSING, COMPLETED, FAILED = "PENDING", "PROCESSING", "COMPLETED", "FAILED"
JOB_STATUSES = (PENDING, PROCESSING, COMPLETED, FAILED)
