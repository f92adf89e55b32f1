"""Email digests over SMTP: one message carrying every pending event of a rule.

Mail is read on phones, forwarded, kept by providers in the clear: a message says only that there are new
matches, their ids, tiers and kinds, and (only where the rule asks for them) the URLs they were found at. Never the
picture, never a subject's name; the reviewer opens likeness to see more.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any

from likeness.errors import FetchError
from likeness.settings import AlertSettings


def compose(sender: str, to: list[str], events: list[dict[str, Any]]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = f"likeness: {len(events)} new alert(s)"
    message.set_content("\n".join([*(_line(e) for e in events), "", _FOOTER]))
    return message


_FOOTER = "Review them in likeness (`likeness matches list`, or the review pages). This message holds no pictures."


def _line(event: dict[str, Any]) -> str:
    if event["event"] == "honeypot_missed":
        plant = event["plant"]
        return f"- honeypot {plant['honeypot_id']} missed: plant {plant['id']}, due {plant['due_at']}"
    match = event["match"]
    who = f"subject {match['subject_id']}" if match.get("subject_id") else f"hash {match.get('hash_id')}"
    where = "".join(f"\n    found at {url}" for url in match.get("locations", []))
    return f"- match {match['id']}: {match['kind']}, tier {match['tier']}, {who}, media {match['media_id']}{where}"


def send(message: EmailMessage, settings: AlertSettings) -> None:
    """Raises FetchError when the SMTP server cannot be reached or refuses the message."""
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_s) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                smtp.login(settings.smtp_user, password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise FetchError(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {type(exc).__name__}: {exc}") from exc
