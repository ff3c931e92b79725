"""device templates, modules, sensors, transports; seeds the system templates

Revision ID: 0003
Revises: 0001

Hand-written to match pulse/storage/tables.py. Boolean defaults use sa.true()/sa.false() so the
same revision runs on SQLite and PostgreSQL. System templates are inserted without explicit ids
(explicit ids would not advance a PostgreSQL sequence) and looked up by slug afterwards.
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _device_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"],
                                   name=op.f(f"fk_{table}_tenant_id_devices"), ondelete="CASCADE")


def _template_fk(table: str, column: str = "template_id", ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["device_templates.id"],
                                   name=op.f(f"fk_{table}_{column}_device_templates"), ondelete=ondelete)


def upgrade() -> None:
    templates = op.create_table(
        "device_templates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("manufacturer", sa.String(length=200), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("firmware_version_pattern", sa.String(length=200), nullable=True),
        sa.Column("is_locked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("transport_defaults", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("image_url", sa.String(length=1000), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_device_templates_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_templates")),
        sa.UniqueConstraint("tenant_id", "slug", name="uq_device_templates_tenant_slug"),
    )
    metrics = op.create_table(
        "template_metrics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("metric_key", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("data_type", sa.String(length=16), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("min_value", sa.Float(), nullable=True),
        sa.Column("max_value", sa.Float(), nullable=True),
        sa.Column("precision_digits", sa.Integer(), nullable=True),
        sa.Column("is_required", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("enum_values", sa.JSON(none_as_null=True), nullable=True),
        _template_fk("template_metrics"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_metrics")),
        sa.UniqueConstraint("template_id", "metric_key", name="uq_template_metrics_key"),
    )
    commands = op.create_table(
        "template_commands",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("command_key", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("parameters_schema", sa.JSON(), nullable=False),
        sa.Column("response_schema", sa.JSON(none_as_null=True), nullable=True),
        _template_fk("template_commands"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_commands")),
        sa.UniqueConstraint("template_id", "command_key", name="uq_template_commands_key"),
    )
    slots = op.create_table(
        "template_slots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("slot_key", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("slot_type", sa.String(length=16), nullable=False),
        sa.Column("interface_type", sa.String(length=16), nullable=False),
        sa.Column("max_devices", sa.Integer(), nullable=True),
        sa.Column("compatible_templates", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("is_required", sa.Boolean(), server_default=sa.false(), nullable=False),
        _template_fk("template_slots"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_slots")),
        sa.UniqueConstraint("template_id", "slot_key", name="uq_template_slots_key"),
    )
    op.create_table(
        "device_modules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("slot_key", sa.String(length=64), nullable=False),
        sa.Column("bus_address", sa.String(length=64), nullable=True),
        sa.Column("module_template_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("serial_number", sa.String(length=200), nullable=True),
        sa.Column("metric_key_map", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _device_fk("device_modules"),
        _template_fk("device_modules", "module_template_id", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_modules")),
    )
    op.create_index("ix_device_modules_device", "device_modules", ["tenant_id", "device_id"])
    op.create_table(
        "device_sensors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("metric_key", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("template_metric_id", sa.Integer(), nullable=True),
        sa.Column("device_module_id", sa.Integer(), nullable=True),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("min_range", sa.Float(), nullable=True),
        sa.Column("max_range", sa.Float(), nullable=True),
        sa.Column("precision_digits", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("last_value_text", sa.String(length=256), nullable=True),
        sa.Column("last_seen_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _device_fk("device_sensors"),
        sa.ForeignKeyConstraint(["template_metric_id"], ["template_metrics.id"],
                                name=op.f("fk_device_sensors_template_metric_id_template_metrics"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["device_module_id"], ["device_modules.id"],
                                name=op.f("fk_device_sensors_device_module_id_device_modules"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_sensors")),
        sa.UniqueConstraint("tenant_id", "device_id", "metric_key", name="uq_device_sensors_metric"),
    )
    op.create_index("ix_device_sensors_tenant_metric", "device_sensors", ["tenant_id", "metric_key"])
    op.create_table(
        "device_transports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("ingestion_protocol", sa.String(length=32), nullable=False),
        sa.Column("physical_connectivity", sa.String(length=16), nullable=True),
        sa.Column("protocol_config", sa.JSON(), nullable=False),
        sa.Column("connectivity_config", sa.JSON(), nullable=False),
        sa.Column("carrier_integration_id", sa.Integer(), nullable=True),
        sa.Column("is_primary", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _device_fk("device_transports"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_transports")),
    )
    op.create_index("ix_device_transports_device", "device_transports", ["tenant_id", "device_id"])
    op.create_index("uq_device_transports_primary", "device_transports", ["tenant_id", "device_id"], unique=True,
                    sqlite_where=sa.text("is_primary"), postgresql_where=sa.text("is_primary"))
    _seed(templates, metrics, commands, slots)


def downgrade() -> None:
    op.drop_index("uq_device_transports_primary", table_name="device_transports")
    op.drop_index("ix_device_transports_device", table_name="device_transports")
    op.drop_table("device_transports")
    op.drop_index("ix_device_sensors_tenant_metric", table_name="device_sensors")
    op.drop_table("device_sensors")
    op.drop_index("ix_device_modules_device", table_name="device_modules")
    op.drop_table("device_modules")
    op.drop_table("template_slots")
    op.drop_table("template_commands")
    op.drop_table("template_metrics")
    op.drop_table("device_templates")


# ---- system templates ----------------------------------------------------------------------------
def _metric(key, name, data_type, unit=None, lo=None, hi=None, digits=None, required=False, enum=None):
    return dict(metric_key=key, display_name=name, data_type=data_type, unit=unit, min_value=lo, max_value=hi,
                precision_digits=digits, is_required=required, enum_values=enum)


def _command(key, name, description, properties=None, required=(), response=None):
    schema = {"type": "object", "properties": properties or {}, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return dict(command_key=key, display_name=name, description=description, parameters_schema=schema,
                response_schema=response)


_ACK = {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok", "failed", "rejected"]}}}
_REBOOT = _command("reboot", "Reboot", "Restart the device firmware.",
                   {"delay_s": {"type": "integer", "minimum": 0, "maximum": 3600}}, response=_ACK)


def _set_interval(lo: int, hi: int) -> dict:
    return _command("set_interval", "Set reporting interval", "Change how often telemetry is sent.",
                    {"interval_s": {"type": "integer", "minimum": lo, "maximum": hi}}, ["interval_s"], _ACK)


SYSTEM_TEMPLATES = [
    {
        "template": dict(
            name="PT100 Temperature Probe", slug="temperature-probe-pt100", category="standalone_sensor",
            manufacturer="Pulse Sensors", model="TP-100", firmware_version_pattern=r"^2\.\d+\.\d+$",
            description="Class A PT100 RTD probe with a LoRaWAN radio; also fits analog expansion ports.",
            transport_defaults={"ingestion_protocol": "lorawan", "physical_connectivity": "lora",
                                "protocol_config": {"lorawan_class": "A", "fport": 2}, "connectivity_config": {}}),
        "metrics": [
            _metric("temperature", "Temperature", "float", "°C", -50, 250, 1, required=True),
            _metric("battery_pct", "Battery", "integer", "%", 0, 100, 0),
            _metric("probe_status", "Probe status", "enum", enum=["ok", "open_circuit", "short_circuit"]),
        ],
        "commands": [
            _set_interval(60, 86400),
            _command("calibrate", "Calibrate offset", "Apply a fixed offset to readings.",
                     {"offset_c": {"type": "number", "minimum": -10, "maximum": 10}}, ["offset_c"], _ACK),
        ],
        "slots": [],
    },
    {
        "template": dict(
            name="SHT3x Humidity Sensor", slug="humidity-sensor-sht3x", category="standalone_sensor",
            manufacturer="Pulse Sensors", model="HS-31", firmware_version_pattern=r"^1\.\d+\.\d+$",
            description="Relative humidity and temperature over Wi-Fi; I2C variant fits gateway buses.",
            transport_defaults={"ingestion_protocol": "mqtt_direct", "physical_connectivity": "wifi",
                                "protocol_config": {"qos": 1, "keepalive_s": 60}, "connectivity_config": {}}),
        "metrics": [
            _metric("humidity", "Relative humidity", "float", "%RH", 0, 100, 1, required=True),
            _metric("temperature", "Temperature", "float", "°C", -40, 125, 1, required=True),
            _metric("dew_point", "Dew point", "float", "°C", -60, 60, 1),
            _metric("battery_pct", "Battery", "integer", "%", 0, 100, 0),
        ],
        "commands": [_set_interval(10, 86400), _REBOOT],
        "slots": [],
    },
    {
        "template": dict(
            name="GPS Tracker", slug="gps-tracker", category="edge_device",
            manufacturer="Pulse Mobility", model="GT-4G", firmware_version_pattern=r"^3\.\d+\.\d+$",
            description="LTE-M asset tracker with GNSS fix, motion and battery reporting.",
            transport_defaults={"ingestion_protocol": "mqtt_direct", "physical_connectivity": "cellular",
                                "protocol_config": {"qos": 1, "keepalive_s": 300},
                                "connectivity_config": {"apn": "iot.1nce.net"}}),
        "metrics": [
            _metric("latitude", "Latitude", "float", "°", -90, 90, 6, required=True),
            _metric("longitude", "Longitude", "float", "°", -180, 180, 6, required=True),
            _metric("speed", "Speed", "float", "km/h", 0, 400, 1),
            _metric("heading", "Heading", "float", "°", 0, 360, 0),
            _metric("altitude", "Altitude", "float", "m", -500, 9000, 0),
            _metric("satellites", "Satellites in view", "integer", None, 0, 64, 0),
            _metric("gps_fix", "GPS fix", "boolean"),
            _metric("battery_pct", "Battery", "integer", "%", 0, 100, 0, required=True),
        ],
        "commands": [
            _set_interval(30, 86400), _REBOOT,
            _command("set_geofence", "Set geofence", "Report when the tracker leaves a circle.",
                     {"latitude": {"type": "number", "minimum": -90, "maximum": 90},
                      "longitude": {"type": "number", "minimum": -180, "maximum": 180},
                      "radius_m": {"type": "integer", "minimum": 50, "maximum": 100000}},
                     ["latitude", "longitude", "radius_m"], _ACK),
        ],
        "slots": [],
    },
    {
        "template": dict(
            name="Lifeline Gateway v1", slug="lifeline-gateway-v1", category="gateway",
            manufacturer="Lifeline Systems", model="LG-100", firmware_version_pattern=r"^1\.\d+\.\d+$",
            description="Cellular edge gateway with RS-485, analog and I2C expansion and a BLE radio.",
            transport_defaults={"ingestion_protocol": "mqtt_direct", "physical_connectivity": "cellular",
                                "protocol_config": {"qos": 1, "keepalive_s": 60}, "connectivity_config": {}}),
        "metrics": [
            _metric("supply_voltage", "Supply voltage", "float", "V", 0, 36, 2, required=True),
            _metric("signal_rssi", "Cellular signal", "integer", "dBm", -120, 0, 0, required=True),
            _metric("cpu_temp", "CPU temperature", "float", "°C", -40, 125, 1),
            _metric("uptime_s", "Uptime", "integer", "s", 0, None, 0),
            _metric("battery_pct", "Backup battery", "integer", "%", 0, 100, 0),
            _metric("uplink", "Active uplink", "enum", enum=["cellular", "ethernet", "wifi"]),
        ],
        "commands": [
            _REBOOT, _set_interval(10, 3600),
            _command("set_log_level", "Set log level", "Change firmware log verbosity.",
                     {"level": {"type": "string", "enum": ["debug", "info", "warning", "error"]}}, ["level"], _ACK),
        ],
        "slots": [
            dict(slot_key="rs485", display_name="RS-485 bus", slot_type="expansion", interface_type="rs485",
                 max_devices=32, compatible=None),
            dict(slot_key="analog_1", display_name="Analog port 1", slot_type="sensor", interface_type="analog",
                 max_devices=1, compatible=["temperature-probe-pt100"]),
            dict(slot_key="analog_2", display_name="Analog port 2", slot_type="sensor", interface_type="analog",
                 max_devices=1, compatible=["temperature-probe-pt100"]),
            dict(slot_key="i2c", display_name="I2C bus", slot_type="sensor", interface_type="i2c",
                 max_devices=8, compatible=["humidity-sensor-sht3x"]),
            dict(slot_key="ble", display_name="BLE radio", slot_type="accessory", interface_type="ble",
                 max_devices=16, compatible=None),
        ],
    },
]


def _seed(templates: sa.Table, metrics: sa.Table, commands: sa.Table, slots: sa.Table) -> None:
    conn = op.get_bind()
    now = datetime.now(timezone.utc)
    ids: dict[str, int] = {}
    for spec in SYSTEM_TEMPLATES:
        t = spec["template"]
        conn.execute(templates.insert().values(tenant_id=None, source="system", is_locked=True, metadata={},
                                               created_at=now, updated_at=now, **t))
        ids[t["slug"]] = conn.execute(sa.select(templates.c.id).where(
            templates.c.tenant_id.is_(None), templates.c.slug == t["slug"])).scalar_one()
    for spec in SYSTEM_TEMPLATES:
        tid = ids[spec["template"]["slug"]]
        if spec["metrics"]:
            conn.execute(metrics.insert(), [dict(m, template_id=tid) for m in spec["metrics"]])
        if spec["commands"]:
            conn.execute(commands.insert(), [dict(c, template_id=tid) for c in spec["commands"]])
        for s in spec["slots"]:
            compatible = [ids[slug] for slug in s["compatible"]] if s["compatible"] else None
            conn.execute(slots.insert().values(
                template_id=tid, compatible_templates=compatible, is_required=False,
                **{k: v for k, v in s.items() if k != "compatible"}))
