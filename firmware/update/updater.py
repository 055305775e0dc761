"""One offer, start to finish: download (resuming), verify, check space, install. Runs in a
worker thread of the agent; every step is reported (through the outbox) and every failure
ends in a `failed` report with its reason. A refused version is remembered in failed.json
and not tried again (a new release gets a new version); download hiccups are retried.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from pathlib import Path

from firmware.update.download import Credentials, download
from firmware.update.errors import DownloadFailed, UpdateError, VerificationFailed
from firmware.update.install import FreeBytes, check_space, disk_free, install
from firmware.update.layout import Layout
from firmware.update.manifest import Report, Step, UpdateOffer, now_utc
from firmware.update.verify import load_public_key, verify_archive

log = logging.getLogger("firmware.update.updater")


class Updater:
    def __init__(self, layout: Layout, running_version: str, *, public_key: str | None,
                 credentials: Callable[[], Credentials | None], reserve_bytes: int = 20_000_000,
                 free_bytes: FreeBytes = disk_free, retry_max_s: float = 300.0,
                 cancelled: threading.Event | None = None, on_report: Callable[[], None] = lambda: None):
        self.layout = layout
        self.running_version = running_version
        self.public_key = public_key
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
            if self.public_key is None:
                raise VerificationFailed("updates are disabled on this device: no public_key in [update]")
            public_key = load_public_key(self.public_key)
            self.layout.ensure()
            part = self.layout.downloads / f"{offer.version}.tar.gz.part"
            self.report("downloading", offer)
            if not self._download(offer, part):
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
            log.warning("update to %s refused: %s", offer.version, exc.reason)
            try:
                self.layout.mark_failed(offer.version, exc.reason)
                self.report("failed", offer, exc.reason)
            except OSError as write_error:
                log.error("cannot record the refusal of %s: %s", offer.version, write_error)
            return False
        except OSError as exc:  # the update folder itself is unusable: nothing can be written or reported
            log.error("update to %s impossible: %s", offer.version, exc)
            return False

    def _download(self, offer: UpdateOffer, part: Path) -> bool:
        attempt = 0
        while not self.cancelled.is_set():
            credentials = self.credentials()
            if credentials is None:
                raise DownloadFailed("no device secret to authenticate the download with", permanent=True)
            have = part.stat().st_size if part.exists() else 0
            check_space(self.layout.downloads, offer.size - have + self.reserve_bytes, self.free_bytes,
                        f"the download of {offer.version}")
            try:
                download(offer.url, part, offer.size, credentials, cancelled=self.cancelled)
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
