"""Import many devices from a CSV: check every row first, then all or nothing.

The header names columns of `spec.SPEC_FIELDS` (device_id and kind required; calibration
as `name=offset;name=offset`). `plan_import` is pure: it returns the valid specs and one
problem per bad row (row numbers as a spreadsheet shows them, the header being row 1).
`import_devices` writes nothing unless every row is good, and then all of them in one
transaction with a fresh secret each.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field

from cityops.storage import Database
from devices.area import CouncilArea
from devices.errors import DeviceError, ImportRejected, InvalidField
from devices.registry import Provisioned, insert_devices
from devices.spec import SPEC_FIELDS, DeviceSpec, parse_spec

log = logging.getLogger("devices.bulk")

REQUIRED_COLUMNS = ("device_id", "kind")
EXTRA = "_extra"  # where csv puts fields past the header's


@dataclass(frozen=True)
class ImportPlan:
    specs: list[DeviceSpec] = field(default_factory=list)
    problems: list[InvalidField] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def plan_import(text: str, area: CouncilArea, registered: set[str]) -> ImportPlan:
    reader = csv.DictReader(io.StringIO(text), restkey=EXTRA)
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in SPEC_FIELDS]
    if missing or unknown:
        reason = (f"missing column(s) {', '.join(missing)}" if missing
                  else f"unknown column(s) {', '.join(unknown)} (expected some of {', '.join(SPEC_FIELDS)})")
        return ImportPlan(problems=[InvalidField("header", reason, row=1)])
    plan = ImportPlan()
    first_row_of: dict[str, int] = {}
    dev_eui_row: dict[str, int] = {}
    for raw in reader:
        row = reader.line_num
        values = {k.strip(): v for k, v in raw.items() if k != EXTRA}
        try:
            if EXTRA in raw:
                raise InvalidField("row", f"{len(header) + len(raw[EXTRA])} fields, the header has "
                                          f"{len(header)}", row=row)
            if any(v is None for v in values.values()):
                raise InvalidField("row", f"fewer fields than the header's {len(header)}", row=row)
            spec = parse_spec(values, area, row=row)
            if spec.device_id in registered:
                raise InvalidField("device_id", f"{spec.device_id!r} is already registered", row=row)
            if spec.device_id in first_row_of:
                raise InvalidField("device_id", f"{spec.device_id!r} repeats row {first_row_of[spec.device_id]}",
                                   row=row)
        except InvalidField as problem:
            plan.problems.append(problem)
            continue
        if spec.lorawan_dev_eui is not None:
            if spec.lorawan_dev_eui in dev_eui_row:
                plan.problems.append(InvalidField("lorawan_dev_eui", f"DevEUI {spec.lorawan_dev_eui} repeats row "
                                                                     f"{dev_eui_row[spec.lorawan_dev_eui]}", row=row))
                continue
            dev_eui_row[spec.lorawan_dev_eui] = row
        first_row_of[spec.device_id] = row
        plan.specs.append(spec)
    if not plan.specs and not plan.problems:
        plan.problems.append(InvalidField("file", "no device rows after the header", row=2))
    return plan


async def registered_ids(db: Database) -> set[str]:
    return {r["device_id"] for r in await db.fetch("SELECT device_id FROM devices")}


async def import_devices(db: Database, text: str, area: CouncilArea) -> tuple[list[DeviceSpec], list[Provisioned]]:
    """Register every row or none; raises ImportRejected listing each bad row. Returns what was
    registered and the native devices' secrets (a LoRaWAN device has none)."""
    plan = plan_import(text, area, await registered_ids(db))
    if not plan.ok:
        raise ImportRejected(plan.problems)
    try:
        async with db.transaction() as conn:
            issued = await insert_devices(conn, plan.specs)
    except DeviceError as exc:  # a duplicate registered meanwhile: the whole import rolled back
        raise ImportRejected([InvalidField("device_id", str(exc))]) from None
    log.info("imported %d devices", len(plan.specs))
    return plan.specs, issued
