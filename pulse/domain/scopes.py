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
carrying either tag. Across keys every key that is set must match (AND): `site_ids: ["s1"],
tags: ["pump"]` selects the pumps of site s1. An unset or empty key restricts nothing, so a scope
that sets no key selects every device of the tenant (including devices not registered yet).

Alert-rule scopes, maintenance-window scopes and the device criteria of notification routing rules
all read this way (`selects`). It is the stricter reading: adding a selector can only narrow what a
scope selects, never widen it, so a maintenance window or a routing rule never reaches devices
nobody named. Tests: tests/domain/test_scopes.py.
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


def selects(scope: Scope | None, device: DeviceFacts) -> bool:
    """Whether the scope selects the device: every key it sets matches (none set: every device)."""
    return all(device.has_any(k, v) for k, v in selectors(scope).items())
