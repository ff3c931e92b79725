"""Reports rendered for people: the alert digest e-mail."""
from __future__ import annotations

import html
from typing import Any

SEVERITY_ORDER = ("critical", "major", "minor", "warning", "info")


def _line(counts: dict[str, int]) -> str:
    parts = [f"{counts[s]} {s}" for s in SEVERITY_ORDER if counts.get(s)]
    return ", ".join(parts) or "none"


def digest_email(content: dict[str, Any], frequency: str) -> tuple[str, str, str]:
    """(subject, plain text, HTML) for `pulse.storage.digest.digest_content` output."""
    opened, open_now = content["opened"], content["open_now"]
    period = f"{content['since']:%Y-%m-%d %H:%M} – {content['until']:%Y-%m-%d %H:%M} UTC"
    subject = f"[Pulse] {frequency} alert digest for {content['tenant_id']}: {opened['total']} new, {open_now['total']} open"
    top = content.get("top_devices") or []
    text = "\n".join([
        f"Alert digest for {content['tenant_id']} ({period})",
        "",
        f"New alerts: {opened['total']} ({_line(opened['by_severity'])})",
        f"Still open: {open_now['total']} ({_line(open_now['by_severity'])})",
        "",
        "Devices with the most new alerts:" if top else "No device raised an alert in this period.",
        *[f"  {d['device_id']}: {d['alerts']}" for d in top],
    ])
    rows = "".join(f"<tr><td>{html.escape(d['device_id'])}</td><td>{d['alerts']}</td></tr>" for d in top)
    body = (f"<h2>Alert digest for {html.escape(content['tenant_id'])}</h2><p>{html.escape(period)}</p>"
            f"<p><b>New alerts:</b> {opened['total']} ({html.escape(_line(opened['by_severity']))})<br>"
            f"<b>Still open:</b> {open_now['total']} ({html.escape(_line(open_now['by_severity']))})</p>"
            + (f"<table><tr><th>Device</th><th>New alerts</th></tr>{rows}</table>" if rows else ""))
    return subject, text, body
