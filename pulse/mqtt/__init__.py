"""Pulse's MQTT clients, in one place below every package that talks to the broker.

`endpoint` turns `mqtt://` / `mqtts://` URLs into where and how to connect (TLS included);
`subscriber` is the ingest bridge's lean intake; `publisher` is the one outbound publisher, used
by the downlink (background queue) and the MQTT notification channel (awaited publishes).
Both the broker package and the integrations use it, and they must not import each other.
"""
