"""The use cases of each area (devices, commands, alerts, carriers, …), one module per area.

Services take the store, the pipelines, the integrations and the `Runtime` port (`ports.py`), and
raise domain errors; routes and the actor runtime's service loops call them (docs/architecture.md)."""
