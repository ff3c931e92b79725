"""What the carrier API tests share: paths, and an API whose carrier calls fail fast."""
from __future__ import annotations

INTEGRATIONS = "/api/v1/customer/carrier/integrations"


def line(device: str, what: str) -> str:
    return f"/api/v1/customer/devices/{device}/carrier/{what}"


def fast_carrier_retries(api):
    """The API with fast carrier retries, so an unreachable carrier fails in milliseconds."""
    s = api.services.settings
    s.carrier_retry_attempts, s.carrier_retry_base_s, s.carrier_http_timeout_s = 2, 0.01, 5.0
    return api
