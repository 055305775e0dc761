"""The agent's exceptions, one tree.

    AgentError (CityOpsError)     every error the agent raises on purpose
     +-- AgentConfigError         the agent's config file is missing or invalid
     +-- SensorError              a driver could not produce a reading; carries `sensor`
     |    +-- SensorAbsent            nothing answers: unplugged, wrong address, no such file
     |    +-- SensorBusError          I2C / serial / GPIO I/O failed mid-read
     |    +-- ChecksumError           the sensor answered, but its CRC or checksum is wrong
     |    +-- ImplausibleValue        decoded, but not physically possible (85 degC POR, blind zone)
     |    +-- NoFix                   GPS answers but has no position fix
     +-- SpoolError               the on-disk spool cannot store readings (disk full, corrupt)
     +-- BrokerRefused            the broker rejected this device (credentials, not authorised)

A SensorError never becomes a reading: the sampler logs it once, skips that sample and
tries again at the next one. The CLI prints `error:`/`hint:` for the rest and exits 1.
"""

from __future__ import annotations

from contract.errors import CityOpsError


class AgentError(CityOpsError):
    pass


class AgentConfigError(AgentError):
    hint = "check the agent config file (see deploy/agent/agent.example.toml)"


class SensorError(AgentError):
    """A failed read. `sensor` names the driver instance, `cause` the reason in a few words."""

    def __init__(self, sensor: str, cause: str):
        super().__init__(f"{sensor}: {cause}")
        self.sensor = sensor
        self.cause = cause


class SensorAbsent(SensorError):
    hint = "check the wiring, the bus number and address, and that the interface is enabled"


class SensorBusError(SensorError):
    pass


class ChecksumError(SensorError):
    pass


class ImplausibleValue(SensorError):
    pass


class NoFix(SensorError):
    hint = "the GPS needs a clear view of the sky; a cold start can take minutes"


class SpoolError(AgentError):
    hint = "check free space and permissions where the spool file lives"


class BrokerRefused(AgentError):
    """The broker answered and said no; `reason` is its CONNACK reason."""

    hint = "check the device's MQTT username, password (or certificate) and the broker's ACL"

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason
