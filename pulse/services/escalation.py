"""Escalation policies: their use cases need nothing but the store (levels are checked by
pulse.domain.escalation, targets against the tenant's channels and schedules by
pulse.storage.escalation), so they are the store's functions, exported here for the routes.
Moving alerts along a policy is the Notifier's scheduler tick (`Notifier.escalate_due`)."""
from __future__ import annotations

from pulse.storage.escalation import create as create_policy
from pulse.storage.escalation import delete as delete_policy
from pulse.storage.escalation import get as get_policy
from pulse.storage.escalation import list_policies
from pulse.storage.escalation import update as update_policy

__all__ = ["list_policies", "create_policy", "get_policy", "update_policy", "delete_policy"]
