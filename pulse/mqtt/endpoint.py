"""Where and how to reach an MQTT broker: host, port, credentials and TLS, from one URL.

`mqtt://user:password@host:port` is plain TCP (default port 1883); `mqtts://…` is TLS (default
port 8883) with the server certificate and host name always verified, against the system CAs or,
for a private CA, against `ca_file` only. There is no fallback to plain text: a TLS endpoint that
fails verification fails to connect. Every Pulse MQTT client (bridge intake, downlink, MQTT
channel, Mosquitto's dynsec admin) builds its connection from an `MqttEndpoint`.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pulse.config.settings import SERVICE_MQTT_USER, Settings

PLAIN_PORT = 1883
TLS_PORT = 8883
_SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True}  # scheme -> TLS


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None  # TLS only: trust this CA (PEM) instead of the system's

    @classmethod
    def parse(cls, url: str, ca_file: Path | None = None) -> MqttEndpoint:
        """`mqtt://user:password@host:port` or `mqtts://…`; user and password are percent-decoded."""
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES:
            raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r} (use mqtt:// or mqtts://)")
        tls = _SCHEMES[parts.scheme]
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (TLS_PORT if tls else PLAIN_PORT),
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
            tls=tls,
            ca_file=ca_file,
        )

    def tls_context(self) -> ssl.SSLContext | None:
        """A verifying client context for a TLS endpoint; None for plain TCP."""
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def __str__(self) -> str:  # for errors and logs: never the password
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def service_endpoint(settings: Settings) -> MqttEndpoint:
    """Pulse's own service account: on the external broker of `mqtt_url`, else on the embedded one
    (plain TCP on `mqtt_host:mqtt_port`, password generated into the data dir)."""
    if settings.mqtt_url:
        return MqttEndpoint.parse(settings.mqtt_url, ca_file=settings.mqtt_ca_file)
    return MqttEndpoint(settings.mqtt_host, settings.mqtt_port, SERVICE_MQTT_USER, settings.service_mqtt_password())
