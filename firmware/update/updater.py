"""One offer, start to finish: check the offer (offers.py), download (resuming) from the
device's own base, verify, check space, install. Runs in a worker thread of the agent; every
step is reported (through the outbox) and every failure ends in a `failed` report with its
reason. A refused version is remembered in failed.json and not tried again (a new release
gets a new version); download hiccups are retried. An offer that fails its own checks is
only logged (errors.OfferRefused), once per offer while the agent runs.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract.releases import Report, Step, UpdateOffer, now_utc
from firmware.update.download import Credentials, download
from firmware.update.errors import DownloadFailed, OfferRefused, UpdateError, UpdatesDisabled, VerificationFailed
from firmware.update.install import FreeBytes, check_space, disk_free, install
from firmware.update.layout import Layout
from firmware.update.offers import check_offer
from firmware.update.source import ReleaseBase
from firmware.update.verify import load_public_key, verify_archive

log = logging.getLogger("firmware.update.updater")


class Updater:
    def __init__(self, layout: Layout, running_version: str, *, public_key: str | None, base_url: str | None,
                 credentials: Callable[[], Credentials | None], allow_http: bool = False,
                 ca_file: Path | None = None,
                 reserve_bytes: int = 20_000_000, free_bytes: FreeBytes = disk_free, retry_max_s: float = 300.0,
                 cancelled: threading.Event | None = None, on_report: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = now_utc):
        self.layout = layout
        self.running_version = running_version
        self.public_key = public_key
        self.base_url = base_url
        self.allow_http = allow_http
        self.ca_file = ca_file          # the CA base_url's certificate chains to (None: the system's)
        self.clock = clock
        self._refused: set[UpdateOffer] = set()  # whole offers (a forged copy must not block the genuine one)
        self.credentials = credentials
        self.reserve_bytes = reserve_bytes
        self.free_bytes = free_bytes
        self.retry_max_s = retry_max_s
        self.cancelled = cancelled or threading.Event()
        self.on_report = on_report
        self._rng = random.Random()

    def skip_reason(self, offer: UpdateOffer) -> str | None:
        """Why this offer is not for us, or None to go ahead."""
        if offer.version == self.running_version:
            return "already running it"
        if offer in self._refused:
            return "refused already"
        failed = self.layout.failed().get(offer.version)
        if failed is not None:
            return f"refused before: {failed}"
        return None

    def report(self, step: Step, offer: UpdateOffer, reason: str | None = None) -> None:
        self.layout.put_report(Report(step=step, version=offer.version, at=now_utc(),
                                      from_version=self.running_version, reason=reason,
                                      rollout_id=offer.rollout_id))
        self.on_report()

    def prepare(self, offer: UpdateOffer) -> bool:
        """Download, verify and install; True when the version is ready to switch to.
        False when cancelled (the agent is stopping; the next start picks it up again)."""
        try:
            public_key, base = self._configured()
            check_offer(offer, public_key=public_key, running_version=self.running_version, now=self.clock(),
                        last_rollout=self.layout.last_rollout())
        except OfferRefused as exc:
            log.warning("update offer refused: %s", exc.reason)
            self._refused.add(offer)
            return False
        except UpdateError as exc:
            self._refused.add(offer)
            return self._failed(offer, exc)
        try:
            self.layout.ensure()
            self.layout.note_rollout(offer.rollout_id)
            part = self.layout.downloads / f"{offer.version}.tar.gz.part"
            self.report("downloading", offer)
            if not self._download(base, offer, part):
                return False
            try:
                verify_archive(part, version=offer.version, sha256=offer.sha256, signature=offer.signature,
                               public_key=public_key)
            except VerificationFailed:
                part.unlink(missing_ok=True)  # a tampered or corrupt file is not kept to resume from
                raise
            self.report("verified", offer)
            try:
                install(part, self.layout, offer.version, reserve_bytes=self.reserve_bytes,
                        free_bytes=self.free_bytes)
            finally:
                part.unlink(missing_ok=True)
            self.report("installed", offer)
            return True
        except UpdateError as exc:
            if not exc.remember:
                self._refused.add(offer)
            return self._failed(offer, exc)
        except OSError as exc:  # the update folder itself is unusable: nothing can be written or reported
            log.error("update to %s impossible: %s", offer.version, exc)
            return False

    def _configured(self) -> tuple[Ed25519PublicKey, ReleaseBase]:
        if self.public_key is None:
            raise UpdatesDisabled("updates are disabled on this device: no public_key in [update]")
        try:
            public_key = load_public_key(self.public_key)
        except VerificationFailed as exc:
            raise UpdatesDisabled(exc.reason) from None
        return public_key, ReleaseBase.parse(self.base_url, allow_http=self.allow_http, ca_file=self.ca_file)

    def _failed(self, offer: UpdateOffer, exc: UpdateError) -> bool:
        log.warning("update to %s refused: %s", offer.version, exc.reason)
        try:
            if exc.remember:
                self.layout.mark_failed(offer.version, exc.reason)
            self.report("failed", offer, exc.reason)
        except OSError as write_error:
            log.error("cannot record the refusal of %s: %s", offer.version, write_error)
        return False

    def _download(self, base: ReleaseBase, offer: UpdateOffer, part: Path) -> bool:
        attempt = 0
        while not self.cancelled.is_set():
            credentials = self.credentials()
            if credentials is None:
                raise DownloadFailed("no device secret to authenticate the download with", permanent=True)
            have = part.stat().st_size if part.exists() else 0
            check_space(self.layout.downloads, offer.size - have + self.reserve_bytes, self.free_bytes,
                        f"the download of {offer.version}")
            try:
                download(base, offer.version, part, offer.size, credentials, cancelled=self.cancelled)
                return True
            except DownloadFailed as exc:
                if exc.permanent:
                    raise
                attempt += 1
                delay = exc.retry_after_s if exc.retry_after_s is not None else \
                    min(self.retry_max_s, 2.0 ** min(attempt, 16)) * self._rng.uniform(0.5, 1.0)
                log.info("download of %s: %s; again in %.1f s", offer.version, exc.reason, delay)
                self.cancelled.wait(delay)
        return False
