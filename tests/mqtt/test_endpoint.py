"""MQTT URLs -> endpoints: TLS only for mqtts://, the default port follows the scheme, the CA file is
used only for TLS, and Pulse's service account comes from the settings (pure, no broker)."""
from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from pulse.config.settings import SERVICE_MQTT_USER, Settings
from pulse.mqtt.endpoint import MqttEndpoint, service_endpoint


def test_plain_url_defaults_to_port_1883_without_tls():
    ep = MqttEndpoint.parse("mqtt://pulse:s%40cret@broker.example")
    assert (ep.host, ep.port, ep.username, ep.password, ep.tls) == ("broker.example", 1883, "pulse", "s@cret", False)
    assert ep.tls_context() is None


def test_mqtts_url_defaults_to_port_8883_with_a_verifying_context():
    ep = MqttEndpoint.parse("mqtts://pulse:pw@broker.example")
    assert (ep.port, ep.tls) == (8883, True)
    ctx = ep.tls_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_an_explicit_port_wins_and_a_url_without_credentials_connects_anonymously():
    ep = MqttEndpoint.parse("mqtts://broker.example:9883")
    assert (ep.port, ep.username, ep.password) == (9883, None, None)


def test_unknown_schemes_are_refused():
    with pytest.raises(ValueError, match="scheme"):
        MqttEndpoint.parse("http://broker.example")


def test_the_password_stays_out_of_repr_and_str():
    ep = MqttEndpoint.parse("mqtts://pulse:hunter2@broker.example")
    assert "hunter2" not in repr(ep) and str(ep) == "mqtts://broker.example:8883"


def test_service_endpoint_takes_the_url_and_ca_file_from_settings(tmp_path: Path):
    s = Settings(data_dir=tmp_path, mqtt_url="mqtts://svc:pw@10.0.0.5", mqtt_ca_file=tmp_path / "ca.pem")
    assert service_endpoint(s) == MqttEndpoint("10.0.0.5", 8883, "svc", "pw", tls=True, ca_file=tmp_path / "ca.pem")


def test_service_endpoint_of_the_embedded_broker_is_plain_with_the_generated_password(tmp_path: Path):
    s = Settings(data_dir=tmp_path, mqtt_host="127.0.0.1", mqtt_port=1999)
    ep = service_endpoint(s)
    assert (ep.host, ep.port, ep.username, ep.tls) == ("127.0.0.1", 1999, SERVICE_MQTT_USER, False)
    assert ep.password == s.service_mqtt_password()
