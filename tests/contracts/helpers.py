"""What the contract tests share: checking an answer against the documented status and keys, and
the list of routes of an area, so that no route goes untested silently."""
from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter
from fastapi.routing import APIRoute


def answers(r, status: int, keys: Iterable[str]) -> dict:
    """The JSON body of `r`, after checking the status and that it has at least `keys`."""
    assert r.status_code == status, r.text
    body = r.json()
    missing = set(keys) - set(body)
    assert not missing, f"documented keys missing: {sorted(missing)}"
    return body


def has_keys(item: dict, keys: Iterable[str]) -> None:
    missing = set(keys) - set(item)
    assert not missing, f"documented keys missing: {sorted(missing)}"


def routes_of(*routers: APIRouter) -> set[tuple[str, str]]:
    """(METHOD, path) of every HTTP route of the given routers (their paths include the prefix)."""
    return {(method, r.path) for router in routers for r in router.routes if isinstance(r, APIRoute)
            for method in r.methods}


def assert_accounted_for(routers: Iterable[APIRouter], checked: set[tuple[str, str]],
                         not_met: dict[tuple[str, str], str]) -> None:
    """Every route of `routers` is contract-checked or names why not, and nothing listed is stale."""
    served = routes_of(*routers)
    unaccounted = served - checked - set(not_met)
    assert not unaccounted, f"routes without a contract test or a reason: {sorted(unaccounted)}"
    assert not (checked | not_met.keys()) - served, "a listed route is not served"
