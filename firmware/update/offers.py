"""Is this offer genuine, fresh, current and newer? Pure checks, run before anything is
downloaded, in this order (the signature first, so the rest reads signed fields only):

1. `offer_signature` verifies with the fleet's key over every field (manifest.offer_message):
   an offer written by anyone else, or changed in any field, is refused;
2. it has not expired (`expires_at`): an old offer cannot be replayed for ever;
3. its rollout is not older than the newest one this device has taken: an offer from an
   earlier rollout (a deliberate downgrade, say) cannot be replayed after a later one;
4. the version is newer than the one running, or at least the offer's signed `min_version`:
   a genuine old release cannot be forced back.
"""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract.releases import UpdateOffer, offer_signature_valid, version_key
from firmware.update.errors import OfferRefused


def check_offer(offer: UpdateOffer, *, public_key: Ed25519PublicKey, running_version: str, now: datetime,
                last_rollout: int | None) -> None:
    """Raises OfferRefused with the reason; returns when the device may take the offer."""
    if not offer_signature_valid(public_key, offer.message(), offer.offer_signature):
        raise OfferRefused(f"offer of {offer.version} (rollout {offer.rollout_id}): bad offer signature, "
                           "not signed by the fleet's key or changed since")
    if now >= offer.expires_at:
        raise OfferRefused(f"offer of {offer.version} (rollout {offer.rollout_id}) expired at "
                           f"{offer.expires_at.isoformat()}")
    if last_rollout is not None and offer.rollout_id < last_rollout:
        raise OfferRefused(f"offer of {offer.version} is from rollout {offer.rollout_id}, older than rollout "
                           f"{last_rollout} this device already took: a replay")
    offered, running = version_key(offer.version), version_key(running_version)
    if offered is None or running is None:
        raise OfferRefused(f"cannot tell whether {offer.version} is newer than the running {running_version}")
    if offered > running:
        return
    floor = version_key(offer.min_version) if offer.min_version else None
    if floor is not None and offered >= floor:
        return
    raise OfferRefused(f"offer of {offer.version} is not newer than the running {running_version}"
                       + (f" nor at least the signed minimum {offer.min_version}" if offer.min_version else ""))
