"""Simulators: devices (MQTT publishers) and the external APIs Pulse is a client of."""

# `pulse sim NAME` -> "module:Class" of a `pulse.simulators.server.Simulator`
API_SIMULATORS: dict[str, str] = {
    "thingspace": "pulse.simulators.thingspace:ThingSpaceSim",
    "onence": "pulse.simulators.onence:OneNceSim",
    "telemetron": "pulse.simulators.telemetron:TelemetronSim",
}
