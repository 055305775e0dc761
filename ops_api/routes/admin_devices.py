"""Registry operations for admins, through devices.registry (the same rules as `cityops device`):

    POST  /admin/devices                     register; the secret is in the answer, once
    PATCH /admin/devices/{device_id}         change attributes, or move it (lon, lat)
    POST  /admin/devices/{device_id}/retire  broker access revoked, ingest refuses it
    POST  /admin/devices/{device_id}/rotate  a new secret, in the answer, once

Each add, rotate and retire is then applied to the running broker (devices.broker_sync:
dynamic security over its control API, read back; or the password and ACL files) and the
answer says so (`broker_status`). When the broker was not updated the answer is 502 and
says what stands, choosing the safer side (docs/devices.md, "The admin API"):

    add     the device stays registered; no secret is shown (the broker never took it):
            rotate it once the broker answers
    rotate  undone: the registry keeps the old secret, which the broker still holds
    retire  stays retired (ingest refuses its readings), but its secret still connects:
            POST .../retire again (it retries the broker) or `cityops device sync-broker`

An account left off the broker by an earlier failed add is named in `broker` but does not
fail a later, unrelated change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from cityops.settings import Settings
from cityops.storage import Database
from devices import registry
from devices.area import CouncilArea
from devices.broker_sync import apply_to_broker
from devices.errors import DeviceRetired, DuplicateDevice, InvalidField, UnknownDevice
from devices.spec import DeviceSpec, validate
from ops_api.deps import DB, Admin, AppSettings
from ops_api.errors import ApiError, Conflict, InvalidRequest, NotFound

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
    sample_interval_s: int | None = Field(default=None, ge=10, le=86_400)
    lorawan_dev_eui: str | None = Field(default=None, max_length=23, description="LoRaWAN: the DevEUI, 16 hex digits")
    codec: str | None = Field(default=None, max_length=140, description="LoRaWAN: a codec, or map:<profile>")
    network_server: str | None = Text


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
    sample_interval_s: int | None = Field(default=None, ge=10, le=86_400,
                                          description="a LoRaWAN device gets the change as a downlink")
    lorawan_dev_eui: str | None = Field(default=None, max_length=23)
    codec: str | None = Field(default=None, max_length=140)
    network_server: str | None = Text


class Retirement(BaseModel):
    reason: str = Field(default="", max_length=500)


BrokerStatus = Literal["updated", "unchanged"]


class Issued(BaseModel):
    device_id: str
    secret: str | None = Field(description="shown this once, never stored in clear: put it in the agent's password "
                                           "file (null for a LoRaWAN device: its keys live on the network server)")
    broker_status: BrokerStatus = Field(description="updated: the running broker took it (or its files were written)")
    broker: str


class Changed(BaseModel):
    device: dict[str, Any]
    broker_status: BrokerStatus
    broker: str


class BrokerNotUpdated(ApiError):
    """The registry changed (or was put back) but the broker did not follow: 502."""

    status = 502


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


async def _apply(db: Database, settings: Settings, issued: list[tuple[str, str, bool]], *, what: str,
                 hint: str) -> str:
    """The broker brought in line; BrokerNotUpdated (502) naming `what` stands when it was not."""
    done, message = await apply_to_broker(db, settings, issued, others_may_wait=True)
    if not done:
        raise BrokerNotUpdated(f"BROKER NOT UPDATED: {what}. {message}", hint=hint)
    return message


def _area(settings: Settings) -> CouncilArea:
    return CouncilArea.from_wkt(settings.devices.area_wkt)


@router.post("", status_code=201, summary="Register a device; its secret is shown once (admin)",
             responses={409: {"description": "the id is taken"}, 422: {"description": "a field breaks a rule"},
                        502: {"description": "registered, but the broker was not updated (no secret shown)"}})
async def add(body: DeviceIn, db: DB, admin: Admin, settings: AppSettings) -> Issued:
    with _registry_errors():
        spec = validate(DeviceSpec(**body.model_dump()), _area(settings))
        issued = await registry.add_device(db, spec)
    if issued is None:
        return Issued(device_id=spec.device_id, secret=None, broker_status="unchanged",
                      broker="a LoRaWAN device: no broker account")
    broker = await _apply(db, settings, [(issued.name, issued.secret, False)],
                          what=f"{issued.name} is registered but the broker does not know it; its secret is not "
                               "shown (the broker never took it)",
                          hint=f"once the broker answers, POST /admin/devices/{issued.name}/rotate for a secret "
                               "that works")
    return Issued(device_id=issued.name, secret=issued.secret, broker_status="updated", broker=broker)


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
    return Changed(device=record.as_json(), broker_status="unchanged", broker="attributes only: no broker change")


@router.post("/{device_id}/retire", summary="Retire a device for good: its broker access goes (admin)",
             description="Retiring a retired device again retries the broker.",
             responses={404: {"description": "no such device"},
                        502: {"description": "retired, but the broker still lets its secret in"}})
async def retire(device_id: str, db: DB, admin: Admin, settings: AppSettings,
                 body: Retirement | None = None) -> Changed:
    with _registry_errors():
        with suppress(DeviceRetired):  # a retry: the broker may not have followed the first time
            await registry.retire_device(db, device_id, body.reason if body else "")
        record = await registry.get_device(db, device_id)
    broker = await _apply(db, settings, [],
                          what=f"{device_id} is retired (ingest refuses its readings) but its secret STILL "
                               "CONNECTS to the broker",
                          hint=f"POST /admin/devices/{device_id}/retire again once the broker answers, or run "
                               "`cityops device sync-broker`")
    return Changed(device=record.as_json(), broker_status="updated", broker=broker)


@router.post("/{device_id}/rotate", summary="A new secret for a device, shown once (admin)",
             responses={404: {"description": "no such device"}, 409: {"description": "retired"},
                        502: {"description": "the broker was not updated: nothing rotated"}})
async def rotate(device_id: str, db: DB, admin: Admin, settings: AppSettings) -> Issued:
    with _registry_errors():
        previous = await registry.secret_hash(db, device_id)
        issued = await registry.rotate_secret(db, device_id)
    done, message = await apply_to_broker(db, settings, [(issued.name, issued.secret, False)], others_may_wait=True)
    if not done:
        undone = await registry.undo_rotation(db, device_id, issued.secret, previous)
        stands = ("not rotated: the old secret stays, in the registry and on the broker" if undone else
                  "rotated in the registry but not on the broker, and the old secret could not be put back")
        raise BrokerNotUpdated(f"BROKER NOT UPDATED: {device_id} {stands}. {message}",
                               hint=f"POST /admin/devices/{device_id}/rotate again once the broker answers")
    return Issued(device_id=issued.name, secret=issued.secret, broker_status="updated", broker=message)
