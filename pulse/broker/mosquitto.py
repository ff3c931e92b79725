"""Run Pulse against Mosquitto 2.0: render its config (dynamic-security plugin) and run it as a subprocess.

Used by the tests and documented in docs/mqtt-broker.md. Production deployments render the config
once (`write_mosquitto_config`) and run mosquitto under their service manager instead.
"""
from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).with_name("mosquitto.conf")
DYNSEC_FILE = "dynamic-security.json"
DEFAULT_DYNSEC_PLUGIN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)

# Added to the "admin" role that `mosquitto_ctrl dynsec init` creates (which can manage dynsec and
# subscribe to `#` but not publish): Pulse's service account also publishes downlinks (shadow/
# desired, commands, ota) and reads through MQTT 5 shared subscriptions. `#` does not match topics
# starting with `$`, hence the explicit `$share/#`.
_SERVICE_ACLS = [
    {"acltype": "publishClientSend", "topic": "#", "allow": True},
    {"acltype": "subscribePattern", "topic": "tenant/#", "allow": True},
    {"acltype": "subscribePattern", "topic": "$share/#", "allow": True},
    {"acltype": "unsubscribePattern", "topic": "$share/#", "allow": True},
]


def find_dynsec_plugin() -> str | None:
    override = os.environ.get("PULSE_MOSQUITTO_DYNSEC_PLUGIN")
    candidates = (override,) if override else DEFAULT_DYNSEC_PLUGIN_PATHS
    return next((p for p in candidates if p and Path(p).exists()), None)


def write_mosquitto_config(
    dir: Path | str,
    port: int,
    admin_user: str,
    admin_password: str,
    *,
    host: str = "127.0.0.1",
    max_queued_messages: int = 1_000_000,
    dynsec_plugin: str | None = None,
) -> Path:
    """Write `dir/mosquitto.conf` and, if absent, `dir/dynamic-security.json`; return the config path.

    An existing dynamic-security file is kept: it holds every device client created since.
    """
    data_dir = Path(dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    plugin = dynsec_plugin or find_dynsec_plugin()
    if plugin is None:
        raise FileNotFoundError("mosquitto_dynamic_security.so not found (set PULSE_MOSQUITTO_DYNSEC_PLUGIN)")
    dynsec_file = data_dir / DYNSEC_FILE
    if not dynsec_file.exists():
        _init_dynsec(dynsec_file, admin_user, admin_password)

    conf = Template(TEMPLATE.read_text()).substitute(
        host=host,
        port=port,
        dynsec_plugin=plugin,
        dynsec_file=dynsec_file,
        data_dir=data_dir,
        max_queued_messages=max_queued_messages,
        user=getpass.getuser(),
    )
    path = data_dir / "mosquitto.conf"
    path.write_text(conf)
    return path


def _init_dynsec(dynsec_file: Path, admin_user: str, admin_password: str) -> None:
    ctrl = shutil.which("mosquitto_ctrl")
    if ctrl is None:
        raise FileNotFoundError("mosquitto_ctrl not found (Debian package mosquitto-clients)")
    # mosquitto_ctrl salts and hashes the password in the format the plugin expects.
    subprocess.run(
        [ctrl, "dynsec", "init", str(dynsec_file), admin_user, admin_password],
        check=True,
        capture_output=True,
        timeout=30,
    )
    data = json.loads(dynsec_file.read_text())
    admin_roles = {r["rolename"] for c in data["clients"] if c["username"] == admin_user for r in c.get("roles", [])}
    for role in data["roles"]:
        if role["rolename"] in admin_roles:
            role.setdefault("acls", []).extend(_SERVICE_ACLS)
    tmp = dynsec_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.chmod(0o600)  # password hashes
    tmp.replace(dynsec_file)


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class MosquittoProcess:
    """A mosquitto subprocess on a config written by `write_mosquitto_config`."""

    def __init__(self, config_path: Path | str, port: int, *, host: str = "127.0.0.1", binary: str | None = None) -> None:
        self.config_path = Path(config_path)
        self.host = host
        self.port = port
        self.binary = binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.config_path.parent / "mosquitto.log"

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until the listener accepts connections; raise (with the log tail) otherwise."""
        if self.proc is not None and self.proc.poll() is None:
            return
        # stderr to a file, not a pipe: nobody drains a pipe and a full one would block the broker.
        with open(self.config_path.parent / "mosquitto.stderr", "ab") as err:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"mosquitto exited at start:\n{self._log_tail()}")
            if port_open(self.host, self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"mosquitto did not listen on {self.host}:{self.port} within {timeout}s\n{self._log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (mosquitto then saves its persistence file), SIGKILL after `timeout`."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def _log_tail(self, lines: int = 20) -> str:
        out = []
        for path in (self.config_path.parent / "mosquitto.stderr", self.log_path):
            try:
                out += path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                pass
        return "\n".join(out)

    def __enter__(self) -> MosquittoProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
