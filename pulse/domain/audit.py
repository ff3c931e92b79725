"""What a mutating customer request did, read from its route: the tenant audit trail's vocabulary.

The audit trail is written once, for every route (docs/audit-log.md), so the entity and the action
cannot come from each handler; they come from the route's path template and method instead:

- the entity is the first `<collection>/{id}` pair (`devices/{device_id}` -> device, the id's value);
  a route without a path parameter names its collection (`POST /devices` -> device, the id is read
  from the created resource in the response);
- the action is the method's verb (POST create, PUT/PATCH update, DELETE delete), prefixed by the
  literal segments below the entity (`PUT devices/{id}/tags` -> `tags.update`); a POST or PATCH
  ending in a singular word is that word (`PATCH alerts/{id}/acknowledge` -> `acknowledge`,
  `POST devices/{id}/tokens/rotate` -> `tokens.rotate`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

CUSTOMER_PREFIX = "/api/v1/customer/"
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
VERBS = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}
SEVERITY = {"DELETE": "warning"}  # anything else a user changes is "info"
# POSTs that only compute an answer (a body too rich for a query string): reads, not changes
READ_ONLY_POSTS = frozenset({CUSTOMER_PREFIX + "analytics/query", CUSTOMER_PREFIX + "analytics/sql",
                             CUSTOMER_PREFIX + "alert-rules/backtest"})
ACTOR_USER = "user"
SOURCE_SERVICE = "api"


@dataclass(frozen=True)
class Action:
    entity_type: str
    entity_id: str | None
    action: str
    category: str  # the API area: the template's first segment (`devices`, `alert_rules`, ...)
    severity: str
    params: dict[str, str] = field(default_factory=dict)  # the other path parameters

    @property
    def event_type(self) -> str:
        return f"{self.entity_type}.{self.action}"


def is_audited(method: str, route: str) -> bool:
    """A request the trail records (when it succeeded): a change under the customer API."""
    return (method in MUTATING_METHODS and route.startswith(CUSTOMER_PREFIX)
            and not (method == "POST" and route in READ_ONLY_POSTS))


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _singular(word: str) -> str:
    word = word.replace("-", "_")
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") else word


def _is_command(method: str, segments: list[str]) -> bool:
    # `acknowledge`, `rotate`, `test`, `backtest`: a POST/PATCH ending in a word that names no collection
    last = segments[-1] if segments else ""
    return method in ("POST", "PATCH") and len(segments) > 1 and not _is_param(last) and not last.endswith("s")


def describe(method: str, template: str, params: Mapping[str, str], result: Any = None) -> Action:
    """The entity and action of `method` on the route `template` (with `params` its path parameters);
    `result` (the response body, parsed) names the entity a create made."""
    segments = [s for s in template.removeprefix(CUSTOMER_PREFIX).split("/") if s]
    command = segments.pop() if _is_command(method, segments) else None
    first_param = next((i for i, s in enumerate(segments) if _is_param(s)), len(segments))
    head, below = segments[:first_param], segments[first_param + 1:]
    entity_type = "_".join(_singular(s) for s in head) or "tenant"
    key = segments[first_param][1:-1] if first_param < len(segments) else None
    words = [s for s in below if not _is_param(s)]
    action = ".".join([*words, command or VERBS[method]])
    entity_id = params.get(key) if key else _created_id(entity_type, result)
    return Action(entity_type=entity_type, entity_id=None if entity_id is None else str(entity_id), action=action,
                  category=(segments[0] if segments else "tenant").replace("-", "_"),
                  severity=SEVERITY.get(method, "info"),
                  params={k: str(v) for k, v in params.items() if k != key})


def _created_id(entity_type: str, result: Any) -> Any:
    """The created resource's id: `<entity>_id`, or a shorter suffix of it (`alert_rule` -> `rule_id`), or `id`."""
    if not isinstance(result, Mapping):
        return None
    words = entity_type.split("_")
    for key in [*("_".join(words[i:]) + "_id" for i in range(len(words))), "id"]:
        if result.get(key) is not None:
            return result[key]
    return None


def entity_name(action: Action, result: Any) -> str | None:
    """The entity's name when the response is the entity itself (a create or update of it)."""
    if action.action in ("create", "update") and isinstance(result, Mapping) and isinstance(result.get("name"), str):
        return result["name"][:200]
    return None


def message(actor: str, action: Action) -> str:
    """One line a person reads (and `search` matches): who did what to which entity."""
    target = f"{action.entity_type} {action.entity_id}" if action.entity_id else action.entity_type
    return f"{actor} {action.action} {target}"


@dataclass(frozen=True)
class EventFilter:
    """Which of a tenant's events to list; None = any. `search` is a case-insensitive substring of the message."""

    category: str | None = None
    severity: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    search: str | None = None
