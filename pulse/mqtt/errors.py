"""The one error Pulse's MQTT clients raise, whatever library or socket failed underneath, so callers
(the bridge, the downlink, the MQTT channel) catch one type and need not know aiomqtt or ssl."""
from __future__ import annotations


class MqttError(Exception):
    """Refused by the broker (credentials, TLS certificate), unreachable, or the connection broke."""
