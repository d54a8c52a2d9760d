"""Email through an SMTP relay: the email channel's real adapter.

Connection errors, timeouts and SMTP errors are transient and retried; a recipient
refused with a 5xx code is ``Refused`` for good.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from flows.notifications.port import Delivered, Delivery, Refused
from flows.notifications.retries import with_retries


class SmtpEmail:
    """Email through an SMTP relay."""

    def __init__(self, host: str, port: int, sender: str, timeout_s: float = 5.0, retries: int = 3) -> None:
        self.host, self.port, self.sender, self.timeout_s, self.retries = host, port, sender, timeout_s, retries

    def deliver(self, notification_id: str, to: str, subject: str, body: str) -> Delivery:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message["Message-ID"] = f"<{notification_id}@shopstream>"
        message.set_content(body)

        def send() -> Delivery:
            try:
                with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                    smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused as err:
                codes = [code for code, _ in err.recipients.values()]
                if all(500 <= code < 600 for code in codes):
                    return Refused(f"mailbox refused: {err.recipients}")
                raise
            return Delivered(message["Message-ID"])

        transient = (OSError, smtplib.SMTPException)
        return with_retries(send, transient, self.retries, f"smtp {self.host}:{self.port}")
