"""The agent's config file (TOML) for one real device, and the drivers it names.

See deploy/agent/agent.example.toml for every key. Secrets stay out of the file: the
MQTT password is read from `password_file` (mode 0600). Validation happens here, once,
with the key's path in the message; the agent never starts half-configured.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Generic, Literal, TypeVar

import msgspec

from contract.errors import ConfigError
from contract.telemetry import DEVICE_ID, Kind
from contract.urls import MqttTarget
from firmware.agent import AgentSpec
from firmware.clock import SystemClock
from firmware.drivers.base import Battery, Climate, Distance, Driver, Position, Temperature
from firmware.errors import AgentConfigError
from firmware.link import Backoff, MqttOptions, MqttProtocol
from firmware.sampler import BinSource, FrogSource, ReadingSource, RoadSource
from firmware.sender import SendPolicy
from firmware.update.config import UpdateConfig

DriverName = Literal["sht31", "sht4x", "bme280", "dht22", "ds18b20", "hc-sr04", "jsn-sr04t", "nmea-gps",
                     "power_supply"]
ROLES: dict[Kind, tuple[set[str], set[str]]] = {  # required, optional (plus `battery` everywhere)
    "frog": ({"climate"}, set()),
    "road": ({"surface"}, {"air", "gps"}),
    "bin": ({"distance"}, {"temperature"}),
}
T = TypeVar("T")


class SensorConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    driver: DriverName
    bus: int = 1
    address: int | None = None
    iio_device: str = "iio:device0"
    probe_id: str | None = None
    trigger_pin: int = 23
    echo_pin: int = 24
    pings: Annotated[int, msgspec.Meta(ge=3, le=31)] = 7
    port: str = "/dev/serial0"
    baud: int = 9600
    supply: str = "battery"


class MqttConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # One broker (`url`) or several, the nodes of a cluster (`urls`, tried in turn): exactly one
    # of the two in the file. Once loaded (load_agent_config), `urls` holds every broker and
    # `url` the first.
    url: str = ""
    urls: tuple[str, ...] = ()
    # "5", or "3.1.1" for a broker that speaks nothing else (NATS 2.9); 3.1.1 needs receipts
    protocol: MqttProtocol = "5"
    username: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive_s: Annotated[int, msgspec.Meta(ge=10, le=3600)] = 60


class SpoolConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    path: str = "/var/lib/cityops-agent/spool.sqlite3"
    budget_mb: Annotated[float, msgspec.Meta(gt=0)] = 50.0


class SendConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    batch_max: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 200
    messages_per_s: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    replay_jitter_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    # delete readings on ingest's receipt (after its commit), not on the broker's PUBACK;
    # false only for a platform older than receipts (docs/ingest.md, "Receipts")
    receipts: bool = True
    receipt_timeout_s: Annotated[float, msgspec.Meta(ge=5, le=3600)] = 60.0


class AgentConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    device_id: str
    kind: Kind
    mqtt: MqttConfig
    sensors: dict[str, SensorConfig]
    interval_s: Annotated[int, msgspec.Meta(ge=10, le=86_400)] | None = None
    spool: SpoolConfig = SpoolConfig()
    send: SendConfig = SendConfig()
    update: UpdateConfig | None = None  # fleet updates (firmware/update, docs/releases.md)


def load_agent_config(path: Path) -> AgentConfig:
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise AgentConfigError(f"cannot read the agent config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AgentConfigError(f"{path} is not valid TOML: {exc}") from None
    try:
        config = msgspec.convert(raw, AgentConfig)
    except msgspec.ValidationError as exc:
        hint = 'protocol is "5" or "3.1.1", in quotes' if "$.mqtt.protocol" in str(exc) else None
        raise AgentConfigError(f"{path}: {exc}", hint=hint) from None
    if not DEVICE_ID.match(config.device_id):
        raise AgentConfigError(f"{path}: device_id {config.device_id!r} must be lower-case letters, digits, "
                               "'-' or '_' (2-64 characters)")
    required, optional = ROLES[config.kind]
    missing = required - config.sensors.keys()
    unknown = config.sensors.keys() - required - optional - {"battery"}
    if missing or unknown:
        problems = [f"missing [sensors.{m}]" for m in sorted(missing)]
        problems += [f"[sensors.{u}] is not a sensor role for a {config.kind}" for u in sorted(unknown)]
        roles = ", ".join([*sorted(required | optional), "battery"])
        raise AgentConfigError(f"{path}: {'; '.join(problems)} (roles for a {config.kind}: {roles})")
    return msgspec.structs.replace(config, mqtt=_checked_mqtt(path, config.mqtt, config.send))


def _checked_mqtt(path: Path, mqtt: MqttConfig, send: SendConfig) -> MqttConfig:
    """One of `url` and `urls`, each a valid MQTT URL, the list coherent; 3.1.1 only with receipts.
    Returns the section with both set (`urls` every broker, `url` the first)."""
    if mqtt.url and mqtt.urls:
        raise AgentConfigError(f"{path}: [mqtt] has both url and urls - at `$.mqtt`",
                               hint="give `url` for one broker, or `urls` (a list) for several, not both")
    if not mqtt.url and not mqtt.urls:
        raise AgentConfigError(f"{path}: [mqtt] needs url (one broker) or urls (several) - at `$.mqtt`",
                               hint='e.g. url = "mqtts://broker.example.org:8883"')
    key, urls = ("urls", mqtt.urls) if mqtt.urls else ("url", (mqtt.url,))
    for index, url in enumerate(urls):
        try:
            MqttTarget.from_url(url)
        except ConfigError as exc:
            where = f"$.mqtt.urls[{index}]" if key == "urls" else "$.mqtt.url"
            raise AgentConfigError(f"{path}: {exc} - at `{where}`", hint=exc.hint) from None
    try:
        MqttOptions.from_urls(urls)
    except ConfigError as exc:
        raise AgentConfigError(f"{path}: {exc} - at `$.mqtt.urls`", hint=exc.hint) from None
    if mqtt.protocol == "3.1.1" and not send.receipts:
        raise AgentConfigError(
            f'{path}: [mqtt] protocol = "3.1.1" with [send] receipts = false: a 3.1.1 PUBACK (NATS\'s) does '
            "not mean the message is stored, so without receipts a node's crash would lose readings already "
            "deleted from the spool - at `$.send.receipts`",
            hint='set [send] receipts = true (the platform sends receipts since issue 26; docs/ingest.md), '
                 'or use protocol = "5" against Mosquitto')
    return msgspec.structs.replace(mqtt, url=urls[0], urls=urls)


class Remembered(Generic[T]):
    """A driver that keeps its last good value (the bin's temperature, for the speed of sound)."""

    def __init__(self, inner: Driver[T]):
        self.inner = inner
        self.name = inner.name
        self.last: T | None = None

    def read(self) -> T:
        self.last = self.inner.read()
        return self.last

    def close(self) -> None:
        self.inner.close()


def make_driver(device_id: str, role: str, cfg: SensorConfig,
                air_temp: Remembered[Temperature] | None = None) -> Driver[object]:
    from firmware.drivers import battery, bme280, dht22, ds18b20, gps, sht, ultrasonic

    name = f"{device_id}/{role}/{cfg.driver}"
    match cfg.driver:
        case "sht31" | "sht4x":
            family: Literal["sht3x", "sht4x"] = "sht3x" if cfg.driver == "sht31" else "sht4x"
            return sht.SHTSensor(name, family, cfg.bus, cfg.address or 0x44)
        case "bme280":
            return bme280.BME280Sensor(name, cfg.bus, cfg.address or 0x76)
        case "dht22":
            return dht22.DHT22Sensor(name, cfg.iio_device)
        case "ds18b20":
            return ds18b20.DS18B20Sensor(name, cfg.probe_id)
        case "hc-sr04" | "jsn-sr04t":
            def temperature() -> float:
                return air_temp.last.temp_c if air_temp is not None and air_temp.last is not None else 15.0
            return ultrasonic.UltrasonicSensor(name, cfg.driver, cfg.trigger_pin, cfg.echo_pin, cfg.pings,
                                               air_temp=temperature)
        case "nmea-gps":
            return gps.SerialGPS(name, cfg.port, cfg.baud)
        case "power_supply":
            return battery.PowerSupplyBattery(name, cfg.supply)
    raise AgentConfigError(f"unknown driver {cfg.driver!r}")  # unreachable: the Literal checks it


def build_source(config: AgentConfig) -> ReadingSource:
    s, dev = config.sensors, config.device_id

    def role(name: str, value_type: type[T]) -> Driver[T] | None:
        return make_driver(dev, name, s[name]) if name in s else None  # type: ignore[return-value]

    if config.kind == "frog":
        climate = role("climate", Climate)
        assert climate is not None
        return FrogSource(climate)
    if config.kind == "road":
        surface = role("surface", Temperature)
        assert surface is not None
        return RoadSource(surface, air=role("air", Climate), position=role("gps", Position))
    temperature = role("temperature", Temperature)
    remembered = Remembered(temperature) if temperature is not None else None
    distance: Driver[Distance] = make_driver(dev, "distance", s["distance"], remembered)  # type: ignore[assignment]
    return BinSource(distance, temperature=remembered)


def read_password(config: MqttConfig) -> str | None:
    if config.password_file is None:
        return None
    try:
        return Path(config.password_file).read_text().strip()
    except OSError as exc:
        raise AgentConfigError(f"cannot read the MQTT password file {config.password_file}: {exc.strerror}",
                               hint="create it with the device's password, mode 0600, owned by the agent's "
                                    "user") from None


def build_spec(config: AgentConfig) -> AgentSpec:
    """Everything the agent needs for this device: drivers, MQTT options, spool, policies."""

    def path(value: str | None) -> Path | None:
        return Path(value) if value else None

    urls = config.mqtt.urls or (config.mqtt.url,)  # both are set once loaded; a hand-built config may have one
    mqtt = MqttOptions.from_urls(urls, username=config.mqtt.username,
                                 password=read_password(config.mqtt), password_file=path(config.mqtt.password_file),
                                 ca_file=path(config.mqtt.ca_file),
                                 cert_file=path(config.mqtt.cert_file), key_file=path(config.mqtt.key_file),
                                 keepalive_s=config.mqtt.keepalive_s, protocol=config.mqtt.protocol)
    battery: Driver[Battery] | None = None
    if "battery" in config.sensors:
        battery = make_driver(config.device_id, "battery", config.sensors["battery"])  # type: ignore[assignment]
    return AgentSpec(device_id=config.device_id, source=build_source(config), clock=SystemClock(), mqtt=mqtt,
                     spool_path=Path(config.spool.path), spool_budget_bytes=int(config.spool.budget_mb * 1e6),
                     interval_s=config.interval_s, battery=battery,
                     send=SendPolicy(batch_max=config.send.batch_max, messages_per_s=config.send.messages_per_s,
                                     replay_jitter_s=config.send.replay_jitter_s, receipts=config.send.receipts,
                                     receipt_timeout_s=config.send.receipt_timeout_s),
                     backoff=Backoff())
