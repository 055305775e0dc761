"""Releases, rollouts, targets and device reports in PostgreSQL (thin adapter; the rules
are in cohort.py and staging.py)."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cityops.errors import StorageError
from cityops.storage import Database
from cityops.storage.database import Connection
from contract.errors import ReleaseInvalid
from contract.releases import Manifest, Report, UpdateOffer, read_manifest, sha256_file
from devices.releases.cohort import Candidate, Cohort
from devices.releases.errors import ReleaseRejected, RolloutError, UnknownRelease
from devices.releases.offers import check_terms, sign_offer
from devices.releases.signing import signature_valid
from devices.releases.staging import Policy, State, Tally

FAILED_STEPS = ("failed", "rolled_back")
UNIQUE_VIOLATION = "23505"


@dataclass(frozen=True)
class Release:
    version: str
    sha256: str
    signature: str
    size_bytes: int
    path: Path
    published_at: datetime


@dataclass(frozen=True)
class Rollout:
    rollout_id: int
    version: str
    cohort: Cohort
    policy: Policy
    stage_index: int
    state: State
    reason: str | None
    created_at: datetime
    updated_at: datetime
    # the signed offer's terms (migration 0022); None for a rollout started before it: it offers nothing
    expires_at: datetime | None = None
    min_version: str | None = None
    offer_signature: str | None = None

    @property
    def stage_percent(self) -> float:
        return self.policy.stages[min(self.stage_index, len(self.policy.stages) - 1)]

    def offer(self, release: Release) -> UpdateOffer | None:
        """The offer the operator signed for this rollout; None when it has none."""
        if self.expires_at is None or self.offer_signature is None:
            return None
        return UpdateOffer(version=release.version, sha256=release.sha256, size=release.size_bytes,
                           rollout_id=self.rollout_id, expires_at=self.expires_at, signature=release.signature,
                           offer_signature=self.offer_signature, min_version=self.min_version)


def _release(row: asyncpg.Record) -> Release:
    return Release(row["version"], row["sha256"], row["signature"], row["size_bytes"], Path(row["path"]),
                   row["published_at"])


def _rollout(row: asyncpg.Record) -> Rollout:
    policy = Policy(tuple(float(s) for s in json.loads(row["stages"])), row["max_failure_rate"], row["min_healthy"])
    return Rollout(row["rollout_id"], row["version"], Cohort.from_json(json.loads(row["cohort"])), policy,
                   row["stage_index"], row["state"], row["reason"], row["created_at"], row["updated_at"],
                   row["expires_at"], row["min_version"], row["offer_signature"])


# --- releases ---------------------------------------------------------------------------------

def _inspect(archive: Path) -> tuple[Manifest, str]:
    try:
        return read_manifest(archive), sha256_file(archive)
    except ReleaseInvalid as exc:
        raise ReleaseRejected(f"{archive}: {exc}") from None
    except OSError as exc:
        raise ReleaseRejected(f"cannot read {archive}: {exc.strerror}") from None


def _copy_into_store(archive: Path, store_dir: Path, version: str) -> Path:
    folder = store_dir.resolve() / version
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / archive.name
    if archive.resolve() != stored:
        shutil.copyfile(archive, stored)
    return stored


async def publish_release(db: Database, archive: Path, signature: str, public_key: str, store_dir: Path) -> Release:
    """Check the archive (manifest, digest, signature with the fleet's public key), copy it into
    the store and record it. Publishing the same archive again changes nothing."""
    manifest, sha256 = await asyncio.to_thread(_inspect, archive)
    if not signature_valid(public_key, manifest.version, sha256, signature):
        raise ReleaseRejected(f"{archive.name}: the signature does not verify with the fleet's public key "
                              f"(version {manifest.version}, sha256 {sha256[:12]}...)")
    existing = await db.fetchrow("SELECT * FROM releases WHERE version = $1", manifest.version)
    if existing is not None:
        if existing["sha256"] != sha256:
            raise ReleaseRejected(f"release {manifest.version} is already published with other contents",
                                  hint="a version is never reused: build the change as a new version")
        return _release(existing)
    stored = await asyncio.to_thread(_copy_into_store, archive, store_dir, manifest.version)
    row = await db.fetchrow(
        "INSERT INTO releases (version, sha256, signature, size_bytes, path, manifest) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING *",
        manifest.version, sha256, signature, stored.stat().st_size, str(stored),
        msgspec.json.encode(manifest).decode())
    assert row is not None
    return _release(row)


async def get_release(db: Database, version: str) -> Release:
    row = await db.fetchrow("SELECT * FROM releases WHERE version = $1", version)
    if row is None:
        raise UnknownRelease(f"no release {version!r}")
    return _release(row)


async def list_releases(db: Database) -> list[Release]:
    return [_release(r) for r in await db.fetch("SELECT * FROM releases ORDER BY published_at, version")]


# --- rollouts ---------------------------------------------------------------------------------

async def create_rollout(db: Database, version: str, cohort: Cohort, policy: Policy, created_by: str | None = None,
                         *, key: Ed25519PrivateKey, expires_at: datetime, min_version: str | None = None) -> Rollout:
    """Start a rollout and sign its offer with the operator's `key` (the row's id is in the
    signature, so both happen in one transaction)."""
    release = await get_release(db, version)
    check_terms(version, expires_at, min_version, datetime.now(UTC))
    try:
        async with db.transaction() as conn:
            rollout_id = await conn.fetchval(
                "INSERT INTO release_rollouts (version, cohort, stages, max_failure_rate, min_healthy, created_by, "
                "reason) VALUES ($1, $2::jsonb, $3::jsonb, $4, $5, $6, 'created') RETURNING rollout_id",
                version, json.dumps(cohort.as_json()), json.dumps(list(policy.stages)), policy.max_failure_rate,
                policy.min_healthy, created_by)
            offer = sign_offer(key, release, rollout_id, expires_at, min_version)
            row = await conn.fetchrow(
                "UPDATE release_rollouts SET expires_at = $2, min_version = $3, offer_signature = $4 "
                "WHERE rollout_id = $1 RETURNING *", rollout_id, offer.expires_at, min_version, offer.offer_signature)
    except StorageError as exc:
        if exc.sqlstate != UNIQUE_VIOLATION:
            raise
        open_ = await open_rollout(db)
        raise RolloutError(f"rollout {open_.rollout_id if open_ else '?'} ({open_.version if open_ else '?'}) "
                           "is still open", hint="finish it, or `cityops release cancel` it first") from None
    assert row is not None
    return _rollout(row)


async def open_rollout(db: Database | Connection) -> Rollout | None:
    row = await db.fetchrow("SELECT * FROM release_rollouts WHERE state IN ('active', 'paused')")
    return _rollout(row) if row is not None else None


async def get_rollout(db: Database, rollout_id: int) -> Rollout:
    row = await db.fetchrow("SELECT * FROM release_rollouts WHERE rollout_id = $1", rollout_id)
    if row is None:
        raise UnknownRelease(f"no rollout {rollout_id}")
    return _rollout(row)


async def list_rollouts(db: Database) -> list[Rollout]:
    return [_rollout(r) for r in await db.fetch("SELECT * FROM release_rollouts ORDER BY rollout_id")]


async def update_rollout(db: Database | Connection, rollout_id: int, *, state: State | None = None,
                         stage_index: int | None = None, reason: str | None = None) -> None:
    await db.execute(
        "UPDATE release_rollouts SET state = coalesce($2, state), stage_index = coalesce($3, stage_index), "
        "reason = coalesce($4, reason), updated_at = now() WHERE rollout_id = $1",
        rollout_id, state, stage_index, reason)


async def set_state(db: Database, rollout_id: int, state: State, reason: str, *,
                    allowed_from: tuple[State, ...]) -> Rollout:
    rollout = await get_rollout(db, rollout_id)
    if rollout.state not in allowed_from:
        raise RolloutError(f"rollout {rollout_id} is {rollout.state}; it cannot become {state}")
    await update_rollout(db, rollout_id, state=state, reason=reason)
    return await get_rollout(db, rollout_id)


# --- devices, targets, reports ---------------------------------------------------------------

async def candidates(db: Database) -> list[Candidate]:
    rows = await db.fetch(
        "SELECT d.device_id, d.kind, d.lon, d.lat, h.area FROM devices d "
        "LEFT JOIN damp_home_settings h ON h.household_id = d.household_id "
        "WHERE d.status = 'active' ORDER BY d.device_id")
    return [Candidate(r["device_id"], r["kind"], r["lon"], r["lat"], r["area"]) for r in rows]


async def device_configs(db: Database, device_ids: list[str]) -> dict[str, dict[str, Any]]:
    """What the registry says the config topic carries (calibration, bin geometry, reporting interval)."""
    rows = await db.fetch("SELECT device_id, calibration, bin_depth_mm, sensor_height_mm, sample_interval_s "
                          "FROM devices WHERE device_id = ANY($1)", device_ids)
    out = {}
    for r in rows:
        config: dict[str, Any] = {"v": 1}
        calibration = json.loads(r["calibration"]) if r["calibration"] else {}
        if calibration:
            config["calibration"] = calibration
        for name in ("bin_depth_mm", "sensor_height_mm", "sample_interval_s"):
            if r[name] is not None:
                config[name] = r[name]
        out[r["device_id"]] = config
    return out


async def targets(db: Database | Connection, rollout_id: int) -> dict[str, int]:
    rows = await db.fetch("SELECT device_id, stage_index FROM release_targets WHERE rollout_id = $1", rollout_id)
    return {r["device_id"]: r["stage_index"] for r in rows}


async def add_targets(db: Database, rollout_id: int, stage_index: int, device_ids: list[str]) -> None:
    await db.execute(
        "INSERT INTO release_targets (rollout_id, device_id, stage_index) SELECT $1, unnest($2::text[]), $3 "
        "ON CONFLICT DO NOTHING", rollout_id, device_ids, stage_index)


async def record_report(db: Database, device_id: str, report: Report) -> bool:
    """Store one report; False when it was a duplicate."""
    status = await db.execute(
        "INSERT INTO release_reports (device_id, version, step, from_version, reason, rollout_id, reported_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        device_id, report.version, report.step, report.from_version, report.reason, report.rollout_id, report.at)
    return status.endswith(" 1")


async def outcomes(db: Database | Connection, rollout: Rollout) -> dict[str, tuple[int, str]]:
    """For each target: (its stage, its latest step for the rollout's version)."""
    rows = await db.fetch(
        "SELECT t.device_id, t.stage_index, r.step FROM release_targets t LEFT JOIN LATERAL ("
        "  SELECT step FROM release_reports r WHERE r.device_id = t.device_id AND r.version = $2 "
        "  ORDER BY reported_at DESC, id DESC LIMIT 1) r ON true WHERE t.rollout_id = $1",
        rollout.rollout_id, rollout.version)
    return {r["device_id"]: (r["stage_index"], r["step"] or "offered") for r in rows}


def tally(steps: list[str]) -> Tally:
    return Tally(len(steps), sum(s == "healthy" for s in steps), sum(s in FAILED_STEPS for s in steps))


async def versions_in_use(db: Database) -> dict[str, int]:
    rows = await db.fetch("SELECT coalesce(firmware_version, 'unknown') AS v, count(*) AS n FROM devices "
                          "WHERE status = 'active' GROUP BY 1 ORDER BY 1")
    return {r["v"]: r["n"] for r in rows}


async def failures(db: Database, version: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT DISTINCT ON (device_id, version) device_id, version, step, reason, reported_at "
        "FROM release_reports WHERE step IN ('failed', 'rolled_back') AND ($1::text IS NULL OR version = $1) "
        "ORDER BY device_id, version, reported_at DESC LIMIT $2", version, limit)
    return [dict(r) for r in rows]


async def status(db: Database) -> dict[str, Any]:
    """What an operator sees: releases, devices per version, rollouts with their stage counts,
    the latest failures with their reasons."""
    rollouts = []
    for rollout in await list_rollouts(db):
        results = await outcomes(db, rollout)
        steps: dict[str, int] = {}
        for _stage, step in results.values():
            steps[step] = steps.get(step, 0) + 1
        overall = tally([step for _s, step in results.values()])
        rollouts.append({
            "rollout_id": rollout.rollout_id, "version": rollout.version, "state": rollout.state,
            "cohort": rollout.cohort.describe(), "stages": list(rollout.policy.stages),
            "stage": rollout.stage_index + 1, "stage_percent": rollout.stage_percent,
            "max_failure_rate": rollout.policy.max_failure_rate, "min_healthy": rollout.policy.min_healthy,
            "targeted": overall.targeted, "healthy": overall.healthy, "failed": overall.failed,
            "steps": steps, "reason": rollout.reason, "updated_at": rollout.updated_at.isoformat()})
    return {
        "releases": [{"version": r.version, "sha256": r.sha256, "size_bytes": r.size_bytes,
                      "published_at": r.published_at.isoformat()} for r in await list_releases(db)],
        "versions": await versions_in_use(db),
        "rollouts": rollouts,
        "failures": [{**f, "reported_at": f["reported_at"].isoformat()} for f in await failures(db)],
    }
