"""Carrier providers by name. `provider_for` builds one from an integration's stored credentials."""
from __future__ import annotations

from importlib import import_module
from typing import Any

from pulse.integrations.carriers.base import CarrierError, CarrierProvider, Credentials

# name -> "module:Class"; imported on use so one carrier's module never loads the others.
PROVIDERS: dict[str, str] = {
    "thingspace": "pulse.integrations.carriers.thingspace:ThingSpaceProvider",
    "1nce": "pulse.integrations.carriers.onence:OneNceProvider",
}


def provider_class(name: str) -> type[CarrierProvider]:
    try:
        module, cls = PROVIDERS[name].split(":")
    except KeyError:
        raise CarrierError(f"Unsupported carrier provider {name!r}; one of {', '.join(PROVIDERS)}", 400) from None
    return getattr(import_module(module), cls)


def provider_for(name: str, credentials: Credentials, **kwargs: Any) -> CarrierProvider:
    return provider_class(name)(credentials, **kwargs)
