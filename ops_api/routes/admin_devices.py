"""Registry operations for admins, through devices.registry (the same rules as `cityops device`):

    POST  /admin/devices                     register; the secret is in the answer, once
    PATCH /admin/devices/{device_id}         change attributes, or move it (lon, lat)
    POST  /admin/devices/{device_id}/retire  broker access revoked, ingest refuses it
    POST  /admin/devices/{device_id}/rotate  a new secret, in the answer, once

After each change the broker's password and ACL files are rewritten (and Mosquitto
reloaded when CITYOPS_DEVICES__BROKER_PID_FILE is set). A failed sync does not undo the
change: the answer says so, and `cityops device sync-broker` applies it later.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from cityops.settings import Settings
from cityops.storage import Database
from devices import registry
from devices.area import CouncilArea
from devices.broker_auth import sync_broker
from devices.errors import BrokerAuthError, DeviceRetired, DuplicateDevice, InvalidField, UnknownDevice
from devices.spec import DeviceSpec, validate
from ops_api.deps import DB, Admin, AppSettings
from ops_api.errors import Conflict, InvalidRequest, NotFound

router = APIRouter(prefix="/admin/devices", tags=["admin"])

Text = Field(default=None, max_length=64)


class DeviceIn(BaseModel):
    device_id: str = Field(min_length=2, max_length=64)
    kind: Literal["frog", "road", "bin"]
    lon: float | None = Field(default=None, allow_inf_nan=False)
    lat: float | None = Field(default=None, allow_inf_nan=False)
    mobile: bool = False
    household_id: str | None = Text
    road_segment_id: str | None = Text
    bin_depth_mm: int | None = Field(default=None, gt=0, le=10_000)
    sensor_height_mm: int | None = Field(default=None, ge=0, le=10_000)
    sensor_type: str | None = Text
    calibration: dict[str, float] = Field(default_factory=dict, max_length=10)


class DeviceChanges(BaseModel):
    """Only the fields sent change; null clears an attribute. lon and lat together move the device."""

    lon: float | None = Field(default=None, allow_inf_nan=False)
    lat: float | None = Field(default=None, allow_inf_nan=False)
    household_id: str | None = Text
    road_segment_id: str | None = Text
    bin_depth_mm: int | None = Field(default=None, gt=0, le=10_000)
    sensor_height_mm: int | None = Field(default=None, ge=0, le=10_000)
    sensor_type: str | None = Text
    calibration: dict[str, float] | None = Field(default=None, max_length=10)


class Retirement(BaseModel):
    reason: str = Field(default="", max_length=500)


class Issued(BaseModel):
    device_id: str
    secret: str = Field(description="shown this once, never stored in clear: put it in the agent's password file")
    broker: str


class Changed(BaseModel):
    device: dict[str, Any]
    broker: str


@contextmanager
def _registry_errors() -> Iterator[None]:
    """The registry's refusals as HTTP errors."""
    try:
        yield
    except InvalidField as exc:
        raise InvalidRequest(exc.reason, field=exc.field, hint=exc.hint) from None
    except UnknownDevice as exc:
        raise NotFound(str(exc), hint="GET /devices lists the registered devices") from None
    except (DuplicateDevice, DeviceRetired) as exc:
        raise Conflict(str(exc), hint=exc.hint) from None


async def _sync(db: Database, settings: Settings) -> str:
    s = settings.devices
    try:
        result = await sync_broker(db, s.broker_password_file, s.broker_acl_file, pid_file=s.broker_pid_file)
    except BrokerAuthError as exc:
        return f"broker NOT updated: {exc}; run `cityops device sync-broker` once fixed"
    if result.reloaded_pid is None:
        return "broker files written; broker not reloaded (CITYOPS_DEVICES__BROKER_PID_FILE unset)"
    return f"broker files written and broker reloaded (pid {result.reloaded_pid})"


def _area(settings: Settings) -> CouncilArea:
    return CouncilArea.from_wkt(settings.devices.area_wkt)


@router.post("", status_code=201, summary="Register a device; its secret is shown once (admin)",
             responses={409: {"description": "the id is taken"}, 422: {"description": "a field breaks a rule"}})
async def add(body: DeviceIn, db: DB, admin: Admin, settings: AppSettings) -> Issued:
    with _registry_errors():
        spec = validate(DeviceSpec(**body.model_dump()), _area(settings))
        issued = await registry.add_device(db, spec)
    return Issued(device_id=issued.name, secret=issued.secret, broker=await _sync(db, settings))


@router.patch("/{device_id}", summary="Change a device's attributes or location (admin)",
              responses={404: {"description": "no such device"}, 409: {"description": "retired"}})
async def update(device_id: str, body: DeviceChanges, db: DB, admin: Admin, settings: AppSettings) -> Changed:
    changes = body.model_dump(exclude_unset=True)
    lon, lat = changes.pop("lon", None), changes.pop("lat", None)
    if changes.get("calibration", ...) is None:
        changes["calibration"] = {}
    area = _area(settings)
    with _registry_errors():
        if (lon is None) != (lat is None):
            raise InvalidField("lon" if lon is None else "lat", "give lon and lat together to move a device")
        await registry.get_device(db, device_id)  # 404 before anything else
        if changes:
            await registry.update_device(db, device_id, changes, area)
        if lon is not None and lat is not None:
            await registry.move_device(db, device_id, lon, lat, area)
        record = await registry.get_device(db, device_id)
    return Changed(device=record.as_json(), broker=await _sync(db, settings))


@router.post("/{device_id}/retire", summary="Retire a device for good: its broker access goes (admin)",
             responses={404: {"description": "no such device"}, 409: {"description": "already retired"}})
async def retire(device_id: str, db: DB, admin: Admin, settings: AppSettings,
                 body: Retirement | None = None) -> Changed:
    with _registry_errors():
        await registry.retire_device(db, device_id, body.reason if body else "")
        record = await registry.get_device(db, device_id)
    return Changed(device=record.as_json(), broker=await _sync(db, settings))


@router.post("/{device_id}/rotate", summary="A new secret for a device, shown once (admin)",
             responses={404: {"description": "no such device"}, 409: {"description": "retired"}})
async def rotate(device_id: str, db: DB, admin: Admin, settings: AppSettings) -> Issued:
    with _registry_errors():
        issued = await registry.rotate_secret(db, device_id)
    return Issued(device_id=issued.name, secret=issued.secret, broker=await _sync(db, settings))
