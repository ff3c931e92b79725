"""Which way HTTP reaches the API through Ray Serve: what `pulse.node` hands Serve's processes."""
from __future__ import annotations

from pulse.config.settings import Settings
from pulse.deployment import PROXY_CALLBACK
from pulse.node import direct_ingress, serve_env


def test_one_replica_answers_on_the_api_port_itself(tmp_path):
    s = Settings(data_dir=tmp_path, http_port=8123, api_max_in_flight=5)
    env = serve_env(s)
    assert direct_ingress(s)
    assert env["RAY_SERVE_ENABLE_DIRECT_INGRESS"] == "1"
    # Serve allocates the replica's port from a one-port range: the API's
    assert (env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"], env["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"]) == ("8123", "8124")
    assert env["RAY_SERVE_PORT_QUARANTINE_S"] == "0"  # a replacement replica takes the port back at once
    assert "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH" not in env  # the app sheds load itself
    assert env["PULSE_API_MAX_IN_FLIGHT"] == "5"


def test_several_replicas_or_the_setting_off_go_through_the_proxy_which_sheds(tmp_path):
    for s in (Settings(data_dir=tmp_path, serve_replicas=2), Settings(data_dir=tmp_path, serve_direct_ingress=False)):
        env = serve_env(s)
        assert not direct_ingress(s)
        assert "RAY_SERVE_ENABLE_DIRECT_INGRESS" not in env
        assert env["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"] == PROXY_CALLBACK
        assert {"PULSE_API_MAX_IN_FLIGHT", "PULSE_API_MAX_IN_FLIGHT_BURST", "PULSE_API_QUEUE_TARGET_MS"} <= env.keys()
