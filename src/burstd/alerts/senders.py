"""Receivers: one POST each to a Slack incoming webhook or a signed JSON webhook.

A sender makes one delivery attempt and says whether a failure is worth retrying (5xx,
timeouts, connection errors) or not (4xx: the receiver refused this body and will again).
Retries, deduplication and the queue are the notifier's job.

Webhook URLs are secrets (a Slack URL is its own credential), so no message built here
contains one: errors name the receiver and the HTTP status, not where it lives.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import TYPE_CHECKING, Protocol

import aiohttp

from burstd.model.alerts import Alert, Receiver, SlackReceiver, WebhookReceiver

if TYPE_CHECKING:
    from slack_sdk.webhook.async_client import AsyncWebhookClient

SIGNATURE_HEADER = "X-Burstd-Signature"


class Clock(Protocol):
    def now(self) -> float: ...


class DeliveryError(Exception):
    """One attempt failed. ``retryable`` is false when trying again cannot help (a 4xx)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Sender(Protocol):
    name: str

    async def send(self, alert: Alert) -> None:
        """Implementation required. Deliver ``alert`` once; raise ``DeliveryError``."""
        ...

    async def close(self) -> None:
        """Implementation required. Release connections. Idempotent."""
        ...


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Burstd-Signature`` value: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of
    "<t>.<body>">``, as Stripe-style receivers check it (the timestamp bounds replays)."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, header: str, body: bytes) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` (for receivers and tests)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def _status_error(who: str, status: int) -> DeliveryError:
    return DeliveryError(f"{who}: HTTP {status}", retryable=status >= 500 or status == 429)


def _timed_out(who: str, timeout: float) -> DeliveryError:
    return DeliveryError(f"{who}: no answer within {timeout:g}s", retryable=True)


def _read_secret(path: object) -> str:
    with open(str(path), encoding="utf-8") as f:
        return f.read().strip()


class WebhookSender:
    """POSTs ``Alert.to_dict()`` as JSON, signed when the receiver has a secret."""

    def __init__(self, receiver: WebhookReceiver, clock: Clock) -> None:
        self.name = receiver.name
        self._url = receiver.url
        self._timeout = receiver.timeout
        self._secret = _read_secret(receiver.secret_file).encode() if receiver.secret_file else None
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    async def send(self, alert: Alert) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body = json.dumps(alert.to_dict(), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "burstd"}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, int(self._clock.now()), body)
        who = f"webhook {self.name}"
        try:
            async with self._session.post(
                self._url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                allow_redirects=False,
            ) as response:
                if response.status >= 300:
                    raise _status_error(who, response.status)
        except TimeoutError:
            raise DeliveryError(
                f"{who}: no answer within {self._timeout:g}s", retryable=True
            ) from None
        except aiohttp.ClientError as e:
            # The exception text may contain the URL; its type is enough to act on.
            raise DeliveryError(f"{who}: {type(e).__name__}", retryable=True) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def slack_text(alert: Alert) -> str:
    subject = ", ".join(
        f"{name} {value}"
        for name, value in (("rule", alert.rule), ("target", alert.target), ("unit", alert.unit))
        if value
    )
    head = f"*burstd {alert.kind.replace('_', ' ')}*" + (f" ({subject})" if subject else "")
    cost = f"\ncost: {alert.cost_per_hour:.2f}/h" if alert.cost_per_hour is not None else ""
    return f"{head}\n{alert.reason}{cost}"


def _quiet_logger() -> logging.Logger:
    # slack-sdk logs the webhook URL at debug level; its URL is a credential.
    logger = logging.getLogger("burstd.alerts.slack-sdk")
    logger.propagate = False
    logger.setLevel(logging.CRITICAL)
    logger.disabled = True
    return logger


class SlackSender:
    """Posts to a Slack incoming webhook with slack-sdk's async client (its retries off: the
    notifier retries, with its own backoff and dead letter)."""

    def __init__(self, receiver: SlackReceiver) -> None:
        self.name = receiver.name
        self._url = _read_secret(receiver.url_file)
        self._timeout = receiver.timeout
        self._client: AsyncWebhookClient | None = None
        self._session: aiohttp.ClientSession | None = None

    async def send(self, alert: Alert) -> None:
        if self._client is None:
            # Imported on first use: a daemon without a Slack receiver never pays for it.
            from slack_sdk.webhook.async_client import AsyncWebhookClient

            self._session = aiohttp.ClientSession()
            self._client = AsyncWebhookClient(
                url=self._url,
                timeout=max(1, round(self._timeout)),
                session=self._session,
                logger=_quiet_logger(),
                retry_handlers=[],
            )
        who = f"slack {self.name}"
        try:
            response = await self._client.send(text=slack_text(alert))
        except TimeoutError:
            raise DeliveryError(
                f"{who}: no answer within {self._timeout:g}s", retryable=True
            ) from None
        except aiohttp.ClientError as e:
            raise DeliveryError(f"{who}: {type(e).__name__}", retryable=True) from None
        if response.status_code >= 300:
            raise _status_error(who, response.status_code)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._client = None


def make_sender(receiver: Receiver, clock: Clock) -> Sender:
    if isinstance(receiver, SlackReceiver):
        return SlackSender(receiver)
    return WebhookSender(receiver, clock)
