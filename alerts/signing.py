"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>" with the subscriber's secret.

Headers on every webhook POST:

    X-CityOps-Timestamp   unix seconds when it was signed
    X-CityOps-Signature   v1=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>
    X-CityOps-Delivery    the notification id: the same on every retry (idempotency key)
    Idempotency-Key       the same value, under the conventional name

A receiver recomputes the HMAC over the raw bytes it got, compares in constant time, and
refuses timestamps older than a few minutes (replays). `verify` does exactly that.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-CityOps-Timestamp"
SIGNATURE_HEADER = "X-CityOps-Signature"
DELIVERY_HEADER = "X-CityOps-Delivery"
IDEMPOTENCY_HEADER = "Idempotency-Key"
VERSION = "v1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{VERSION}={mac.hexdigest()}"


def signed_headers(secret: str, timestamp: int, body: bytes, delivery_id: int) -> dict[str, str]:
    return {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(secret, timestamp, body), DELIVERY_HEADER: str(delivery_id),
            IDEMPOTENCY_HEADER: str(delivery_id)}


def verify(secret: str, timestamp: str, sig: str, body: bytes, now: float, tolerance_s: float = 300.0) -> bool:
    """True when `sig` is ours over this body and the timestamp is within the tolerance."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, ts, body), sig)
