"""Email through an SMTP relay: the email channel's real adapter.

One connection is kept open and reused for every message (``RSET`` is implied by each new
``MAIL FROM``); a connection the relay closed while idle is replaced at once. Connection
errors, timeouts and SMTP errors are transient and retried on a new connection; a recipient
refused with a 5xx code is ``Refused`` for good.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from flows.notifications.port import Delivered, Delivery, Refused
from flows.notifications.retries import with_retries

#: Errors that mean the kept connection is gone (closed by the relay, reset): open a new one.
STALE = (smtplib.SMTPServerDisconnected, ConnectionError)


class SmtpEmail:
    """Email through an SMTP relay, over one kept connection."""

    def __init__(self, host: str, port: int, sender: str, timeout_s: float = 5.0, retries: int = 3) -> None:
        self.host, self.port, self.sender, self.timeout_s, self.retries = host, port, sender, timeout_s, retries
        self._smtp: smtplib.SMTP | None = None

    def deliver(self, notification_id: str, to: str, subject: str, body: str) -> Delivery:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message["Message-ID"] = f"<{notification_id}@shopstream>"
        message.set_content(body)

        def send() -> Delivery:
            try:
                self._send(message)
            except smtplib.SMTPRecipientsRefused as err:
                codes = [code for code, _ in err.recipients.values()]
                if all(500 <= code < 600 for code in codes):
                    return Refused(f"mailbox refused: {err.recipients}")
                raise
            return Delivered(message["Message-ID"])

        transient = (OSError, smtplib.SMTPException)
        return with_retries(send, transient, self.retries, f"smtp {self.host}:{self.port}")

    def _send(self, message: EmailMessage) -> None:
        reused = self._smtp is not None
        try:
            self._attempt(message)
        except STALE:
            if not reused:
                raise
            self._attempt(message)  # the kept connection had been closed by the relay: once more, anew

    def _attempt(self, message: EmailMessage) -> None:
        try:
            self._connection().send_message(message)
        except smtplib.SMTPRecipientsRefused:
            raise  # the connection is fine: smtplib reset the transaction
        except (OSError, smtplib.SMTPException):
            self.close()
            raise

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        return self._smtp

    def close(self) -> None:
        """Drop the kept connection (QUIT when the relay still listens)."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
