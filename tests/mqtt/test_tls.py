"""`mqtts://` end to end against Mosquitto with a TLS listener and a private CA made for the test:
the bridge's subscriber, the downlink, the MQTT channel and dynsec provisioning all connect over
TLS with `mqtt_ca_file`, and a broker certificate from another CA is refused (no plain-text retry)."""
from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pulse.broker.auth_plugin import SERVICE_USERNAME
from pulse.broker.credentials import credentials_for
from pulse.broker.mosquitto import MosquittoProcess, write_mosquitto_config
from pulse.config.settings import Settings
from pulse.domain.messages import Publish
from pulse.mqtt.endpoint import MqttEndpoint, service_endpoint
from pulse.mqtt.errors import MqttError
from pulse.mqtt.publisher import Downlink, MqttPublisher
from pulse.mqtt.subscriber import MqttSubscriber
from pulse.storage.db import Database
from tests.broker.fixtures import _require_mosquitto, free_port
from tests.integrations.helpers import FAST, T0, jobs_of, make_channel, notifier_for, sample_alert

pytestmark = [pytest.mark.broker]

HOST = "127.0.0.1"


# ---- a private CA and a broker certificate ---------------------------------------------------------
def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def make_ca(dir: Path, cn: str) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return _pem(dir / f"{cn}.pem", cert.public_bytes(serialization.Encoding.PEM)), key, cert


def make_server_cert(dir: Path, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate) -> tuple[Path, Path]:
    """A broker certificate for 127.0.0.1 / localhost signed by the CA; -> (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return (_pem(dir / "server.pem", cert.public_bytes(serialization.Encoding.PEM)),
            _pem(dir / "server.key", key_pem))


# ---- Mosquitto with a TLS listener ---------------------------------------------------------------
@dataclass
class TlsBroker:
    settings: Settings  # mqtt_url = mqtts://service account@127.0.0.1:<tls port>, mqtt_ca_file = the CA
    db: Database
    ca_file: Path
    other_ca_file: Path  # a CA that did not sign the broker's certificate

    def endpoint(self, **changes: Any) -> MqttEndpoint:
        """The service account's endpoint (TLS, the CA), with `changes` (e.g. another ca_file or user)."""
        return replace(service_endpoint(self.settings), **changes)


@pytest.fixture
async def tls_broker(tmp_path: Path, broker_db: Database) -> AsyncIterator[TlsBroker]:
    _require_mosquitto()
    certs = tmp_path / "certs"
    certs.mkdir()
    ca_file, ca_key, ca_cert = make_ca(certs, "pulse-test-ca")
    other_ca_file, _, _ = make_ca(certs, "other-ca")
    cert_file, key_file = make_server_cert(certs, ca_key, ca_cert)
    plain_port, tls_port = free_port(), free_port()
    password = secrets.token_urlsafe(24)
    conf = write_mosquitto_config(tmp_path / "mosquitto", plain_port, SERVICE_USERNAME, password)
    with conf.open("a") as f:  # per_listener_settings is off: dynsec and the rest apply to this one too
        f.write(f"\nlistener {tls_port} {HOST}\ncafile {ca_file}\ncertfile {cert_file}\nkeyfile {key_file}\n")
    proc = MosquittoProcess(conf, tls_port, host=HOST)
    await asyncio.to_thread(proc.start)
    settings = Settings(data_dir=tmp_path / "pulse", database_url=broker_db.url, mqtt_ca_file=ca_file,
                        mqtt_url=f"mqtts://{SERVICE_USERNAME}:{password}@{HOST}:{tls_port}", **FAST)
    try:
        yield TlsBroker(settings, broker_db, ca_file, other_ca_file)
    finally:
        await asyncio.to_thread(proc.stop)


async def _subscribed(broker: TlsBroker, topic_filter: str) -> MqttSubscriber:
    sub = MqttSubscriber()
    await sub.connect(broker.endpoint(), f"tls-test-{secrets.token_hex(4)}", clean_session=True)
    await sub.subscribe(topic_filter, qos=1)
    return sub


async def _next(sub: MqttSubscriber) -> tuple[str, bytes, int]:
    [msg] = await asyncio.wait_for(sub.batch(1, 0.05), 5)
    sub.ack([msg])
    return msg


# ---- tests ---------------------------------------------------------------------------------------
async def test_the_service_endpoint_of_an_mqtts_url_is_tls_with_the_configured_ca(tls_broker: TlsBroker):
    ep = service_endpoint(tls_broker.settings)
    assert ep.tls and ep.ca_file == tls_broker.ca_file and ep.username == SERVICE_USERNAME


async def test_the_bridge_subscriber_receives_a_qos1_message_over_tls(tls_broker: TlsBroker):
    sub = await _subscribed(tls_broker, "tenant/acme/alerts/#")
    publisher = MqttPublisher(tls_broker.endpoint())
    try:
        await publisher.publish("tenant/acme/alerts/d1", b'{"n": 1}', qos=1)
        topic, payload, packet_id = await _next(sub)
        assert (topic, payload) == ("tenant/acme/alerts/d1", b'{"n": 1}') and packet_id  # QoS 1: has an id
    finally:
        await publisher.close()
        await sub.close()


async def test_the_downlink_publishes_over_tls(tls_broker: TlsBroker):
    sub = await _subscribed(tls_broker, "tenant/acme/device/d1/#")
    downlink = Downlink(tls_broker.settings)
    try:
        await downlink.publish([Publish("tenant/acme/device/d1/commands", b'{"cmd": "reboot"}', qos=1)])
        await downlink.drain(5)
        topic, payload, _ = await _next(sub)
        assert (topic, payload) == ("tenant/acme/device/d1/commands", b'{"cmd": "reboot"}')
        assert downlink.sent == 1
    finally:
        await downlink.close()
        await sub.close()


async def test_the_mqtt_channel_delivers_over_tls(tls_broker: TlsBroker):
    n = await notifier_for(tls_broker.settings, tls_broker.db)
    sub = await _subscribed(tls_broker, "tenant/acme/alerts/#")
    try:
        ch = await make_channel(n, "mqtt", {"topic": "tenant/{tenant_id}/alerts/{device_id}/{event}"})
        await n.enqueue("acme", sample_alert(), "OPEN", [ch["channel_id"]], now=T0)
        while await n.run_due(now=T0):
            pass
        [job] = await jobs_of(n)
        assert job["status"] == "COMPLETED", job["last_error"]
        topic, payload, _ = await _next(sub)
        assert topic == "tenant/acme/alerts/boiler-7/OPEN" and json.loads(payload)["event"] == "OPEN"
    finally:
        await sub.close()
        await n.stop()


async def test_device_credentials_are_provisioned_over_tls(tls_broker: TlsBroker):
    credentials = credentials_for(tls_broker.settings)
    try:
        await credentials.set_device_secret("acme", "d9", "s3cret-device-token")
    finally:
        await credentials.close()
    device = MqttSubscriber()
    try:
        await device.connect(tls_broker.endpoint(username="acme/d9", password="s3cret-device-token"), "acme-d9")
    finally:
        await device.close()


async def test_a_broker_certificate_from_another_ca_is_refused_without_plaintext_fallback(tls_broker: TlsBroker):
    wrong = tls_broker.endpoint(ca_file=tls_broker.other_ca_file)
    sub = MqttSubscriber()
    with pytest.raises(MqttError, match="certificate verify failed"):
        await sub.connect(wrong, "tls-test-wrong-ca")
    await sub.close()
    publisher = MqttPublisher(wrong, timeout_s=2)
    with pytest.raises(MqttError, match="certificate verify failed"):
        await publisher.publish("tenant/acme/alerts/d1", b"{}")
    await publisher.close()

    # The downlink keeps the message and retries; nothing ever reaches the broker, in TLS or in clear.
    watcher = await _subscribed(tls_broker, "tenant/acme/device/d1/#")
    downlink = Downlink(tls_broker.settings.model_copy(update={"mqtt_ca_file": tls_broker.other_ca_file}))
    try:
        await downlink.publish([Publish("tenant/acme/device/d1/commands", b"{}", qos=1)])
        with pytest.raises(asyncio.TimeoutError):
            await downlink.drain(1.5)
        assert downlink.sent == 0 and downlink.queue.qsize() == 0  # taken, held for the retry
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(watcher.batch(1, 0.05), 0.5)
    finally:
        await downlink.close()
        await watcher.close()
