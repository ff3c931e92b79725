"""Device scopes: which devices an alert rule, a maintenance window or a routing rule is about.

One key set and one reading of each key, shared by every area that selects devices:

| key            | a device is selected when                         |
| -------------- | ------------------------------------------------- |
| `device_ids`   | its id is listed                                  |
| `group_ids`    | it is a member of a listed group (static or dynamic) |
| `site_ids`     | its site is listed                                |
| `tags`         | it carries a listed tag                           |
| `template_ids` | its template is listed                            |

Within one key the listed values are alternatives (OR): `tags: ["pump", "roof"]` selects devices
carrying either tag. An unset or empty key selects nothing by itself and restricts nothing.

How the keys combine is the documented difference between a *scope* and a *filter*
(docs/fleet-groups.md: "a scope widens; filters narrow"):
- `covers` — the scope of an alert rule (docs/alerting.md) or a maintenance window
  (docs/fleet-groups.md): a device matching **any** key is covered; no key set = the whole tenant.
- `passes` — the device criteria of a notification routing rule (docs/notifications.md): **every**
  key the rule sets must match; no key set = any device.
Both are tested as such (tests/domain/test_scopes.py, tests/services/test_notifier.py).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SCOPE_KEYS = ("device_ids", "group_ids", "site_ids", "tags", "template_ids")

Scope = Mapping[str, Iterable[Any] | None]


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What a scope can select a device by."""

    device_id: str
    site_id: str | None = None
    tags: frozenset[str] = frozenset()
    group_ids: frozenset[str] = frozenset()
    template_id: int | None = None

    def has_any(self, key: str, values: Iterable[Any]) -> bool:
        """Whether the device has one of `values` for `key` (one of SCOPE_KEYS)."""
        wanted = set(values)
        if key == "device_ids":
            return self.device_id in wanted
        if key == "site_ids":
            return self.site_id is not None and self.site_id in wanted
        if key == "template_ids":
            return self.template_id is not None and self.template_id in wanted
        if key == "tags":
            return bool(self.tags & wanted)
        if key == "group_ids":
            return bool(self.group_ids & wanted)
        raise KeyError(f"unknown scope key {key!r}")


def selectors(scope: Scope | None) -> dict[str, list[Any]]:
    """The keys a scope sets (non-empty), with their values."""
    return {k: list(v) for k in SCOPE_KEYS if (v := (scope or {}).get(k))}


def is_tenant_wide(scope: Scope | None) -> bool:
    """A scope that sets no key."""
    return not selectors(scope)


def covers(scope: Scope | None, device: DeviceFacts) -> bool:
    """Scope reading: an empty scope covers the whole tenant; otherwise any matching key is enough."""
    chosen = selectors(scope)
    return not chosen or any(device.has_any(k, v) for k, v in chosen.items())


def passes(criteria: Scope | None, device: DeviceFacts) -> bool:
    """Filter reading: every key the criteria set must match (none set: any device passes)."""
    return all(device.has_any(k, v) for k, v in selectors(criteria).items())
