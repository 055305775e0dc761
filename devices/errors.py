"""The devices package's exceptions.

    CityOpsError
     +-- DeviceError                 anything the registry or provisioning refuses
          +-- InvalidField           a value that breaks a rule; names the field (and CSV row)
          +-- DuplicateDevice        the id is already registered
          +-- UnknownDevice          no such device (or service account)
          +-- DeviceRetired          the device is retired; nothing more may change
          +-- ImportRejected         a CSV import with bad rows; carries every row's problems
          +-- BrokerAuthError        the broker's password/ACL files could not be written or reloaded

Each carries fields (device_id, field, row) besides the message, and a `hint`.
"""

from __future__ import annotations

from collections.abc import Sequence

from cityops.errors import CityOpsError


class DeviceError(CityOpsError):
    pass


class InvalidField(DeviceError):
    hint = "fix the value and run the command again; nothing was changed"

    def __init__(self, field: str, reason: str, *, row: int | None = None):
        where = f"row {row}, " if row is not None else ""
        super().__init__(f"{where}{field}: {reason}")
        self.field, self.reason, self.row = field, reason, row


class _AboutDevice(DeviceError):
    template = "device {device_id!r}"

    def __init__(self, device_id: str):
        super().__init__(self.template.format(device_id=device_id))
        self.device_id = device_id


class DuplicateDevice(_AboutDevice):
    template = "device_id: {device_id!r} is already registered"
    hint = "pick another id, or `cityops device show <id>` to see the registered one"


class UnknownDevice(_AboutDevice):
    template = "no device {device_id!r}"
    hint = "`cityops device list` shows the registered devices"


class DeviceRetired(_AboutDevice):
    template = "device {device_id!r} is retired"
    hint = "a retired device stays retired; register the hardware under a new id"


class ImportRejected(DeviceError):
    hint = "fix the rows listed above (or run with --dry-run to check); nothing was imported"

    def __init__(self, problems: Sequence[InvalidField | DuplicateDevice]):
        super().__init__(f"{len(problems)} problem(s) in the CSV; nothing was imported")
        self.problems = list(problems)


class BrokerAuthError(DeviceError):
    hint = "check CITYOPS_DEVICES__BROKER_PASSWORD_FILE, __BROKER_ACL_FILE and __BROKER_PID_FILE"
