"""The one settings object, read from `CITYOPS_*` environment variables and `.env`.

Nested groups use `__`: `CITYOPS_STORAGE__TIMESCALE=off`, `CITYOPS_API__PORT=8080`.
The two service URLs are top level (`CITYOPS_DATABASE_URL`, `CITYOPS_MQTT_URL`);
leaving one unset means "use the embedded default" that `cityops demo` starts. The NATS
JetStream cluster, ingest's other transport, is `CITYOPS_NATS__URLS` and friends (NatsSettings).
URLs may hold passwords, so they are secrets: print them with `redact_url`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import lru_cache
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cityops.errors import ConfigError
from cityops.nats_cluster.config import CONSUMER, STREAM
from contract.urls import redact_url as redact_url  # imported from here across the platform

DB_SCHEMES = ("postgresql", "postgres")
MQTT_SCHEMES = ("mqtt", "mqtts")
NATS_SCHEMES = ("nats", "tls")


class StorageSettings(BaseModel):
    # auto: use TimescaleDB when the server has it; require: refuse to run without it;
    # off: plain PostgreSQL even where TimescaleDB is installed.
    timescale: Literal["auto", "require", "off"] = "auto"
    compress_after: timedelta = timedelta(days=7)
    retain_for: timedelta = timedelta(days=730)
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    # the services' database roles are <prefix><service> (migration 0023; `cityops db roles`),
    # and their passwords for `cityops db roles --apply` (CITYOPS_STORAGE__ROLE_PASSWORDS__INGEST=...)
    role_prefix: str = Field(default="cityops_", pattern=r"^[a-z][a-z0-9_]{0,40}$")
    role_passwords: dict[str, SecretStr] = {}


class EmbeddedSettings(BaseModel):
    data_dir: Path = Path(".cityops")
    postgres_port: int = Field(default=54329, ge=1, le=65535)
    mqtt_port: int = Field(default=18830, ge=1, le=65535)
    # "auto": a `mosquitto` binary on PATH if there is one, otherwise amqtt in-process
    broker: Literal["auto", "mosquitto", "amqtt"] = "auto"


class IngestSettings(BaseModel):
    # where telemetry comes from: "mqtt", the broker at CITYOPS_MQTT_URL (shared subscription,
    # persistent session), or "nats", the JetStream cluster at CITYOPS_NATS__URLS through its durable
    # pull consumer (docs/ingest.md, "NATS")
    transport: Literal["mqtt", "nats"] = "mqtt"
    # consumers sharing this group split the telemetry between them ($share/<group>/...);
    # empty: one consumer on a plain subscription (Mosquitto restores those after a
    # restart, but not shared ones; see ingest/source.py)
    share_group: str = Field(default="ingest", pattern=r"^[A-Za-z0-9_-]*$")
    # the broker keeps this consumer's session (and queues for it) under this id;
    # give each consumer process its own, stable across restarts
    client_id: str = Field(default="cityops-ingest-1", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    # MQTT 5 Receive Maximum: messages delivered but not yet acknowledged (= committed);
    # the broker sends no more until some are, which is the consumer's backpressure
    receive_maximum: int = Field(default=10_000, ge=1, le=65_535)
    batch_readings: int = Field(default=5_000, ge=1)  # flush when a batch holds this many
    batch_bytes: int = Field(default=8_388_608, ge=1)  # ... or this many payload bytes (bounds memory)
    flush_interval_s: float = Field(default=0.2, gt=0)  # ... or this long after its first message
    max_clock_ahead_s: float = Field(default=300.0, ge=0)  # readings further in the future are refused
    registry_refresh_s: float = Field(default=30.0, gt=0)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9108, ge=0, le=65_535)  # 0: no metrics endpoint
    retry_max_s: float = Field(default=10.0, gt=0)  # longest pause between database retries
    # per-device limit on telemetry messages (a token bucket; 0: off): an agent sends at most 2/s
    # (firmware/sender.py); more is refused as a dead letter and counted (docs/devices.md, Limits)
    device_messages_per_s: float = Field(default=20.0, ge=0)
    device_burst: int = Field(default=600, ge=1)
    # coming back to a backlog (docs/ingest.md): how long to wait for the broker's CONNACK (the
    # SUBACKs are not waited for: a resumed session's messages come first)
    connect_timeout_s: float = Field(default=30.0, gt=0)
    # read the broker's store counts from $SYS (its backlog; needs read rights on those topics)
    broker_stats: bool = True
    # push back on devices (docs/scaling.md): above backlog_high_water messages held by the broker,
    # unsubscribe telemetry (devices hear "no matching subscribers" and keep readings spooled);
    # below backlog_low_water, subscribe again. 0: never
    backlog_high_water: int = Field(default=600_000, ge=0)
    backlog_low_water: int = Field(default=300_000, ge=0)
    # --check and the ingest alert: reconnecting, or messages waiting and no commit, this long
    stall_after_s: float = Field(default=60.0, gt=0)
    # receipts (contract/receipts.py) gather this long after a commit, one per device (0: per batch)
    receipt_interval_s: float = Field(default=1.0, ge=0, le=30)


class NatsSettings(BaseModel):
    """The NATS JetStream cluster (docs/nats.md) as ingest reads it, with CITYOPS_INGEST__TRANSPORT=nats.

    Like CITYOPS_MQTT_URL, these say where the broker is and who this service is there:
    CITYOPS_NATS__URLS=tls://nats-1:4222,tls://nats-2:4222,tls://nats-3:4222 (every node's client
    port; the client connects to one and moves to another when it fails), the user and its password,
    and the CA of the nodes' certificates. The stream and its durable consumer are made by an admin
    (`cityops nats stream`), never by ingest, whose user may not."""

    urls: Annotated[list[str], NoDecode] = []  # comma separated, or a JSON list
    user: str = "service.ingest"
    password: SecretStr | None = None
    ca_file: Path | None = None  # tls:// URLs: the nodes' certificates are checked against it
    stream: str = Field(default=STREAM, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    consumer: str = Field(default=CONSUMER, pattern=r"^[A-Za-z0-9_-]{1,64}$")

    @field_validator("urls", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("urls")
    @classmethod
    def _schemes(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in NATS_SCHEMES or not parts.hostname:
                raise ValueError(f"a NATS URL is nats://host:4222 or tls://host:4222, not {redact_url(url)!r}")
        return value


class NetworkServer(BaseModel):
    """One LoRaWAN network server's MQTT integration (docs/lorawan.md): ChirpStack v4 or The Things Stack v3."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")  # devices registered with --network-server name it
    kind: Literal["chirpstack", "tts"]
    url: str  # mqtt://host:1883 or mqtts://host:8883 (the integration's broker)
    username: str | None = None  # overrides the URL's; TTS: "<application id>@<tenant>"
    password: SecretStr | None = None  # overrides the URL's; TTS: an API key with the application's traffic rights
    application: str = Field(default="+", pattern=r"^[A-Za-z0-9_.+-]{1,64}$")  # ChirpStack application id, or TTS's
    tenant: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,64}$")  # TTS Cloud/Enterprise; None: open source
    client_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")  # default cityops-lorawan-<name>
    share_group: str = Field(default="", pattern=r"^[A-Za-z0-9_-]*$")  # several integration processes share the stream
    downlinks: bool = True  # send reporting-interval changes as downlinks

    @field_validator("url")
    @classmethod
    def _mqtt(cls, value: str) -> str:
        if urlsplit(value).scheme not in MQTT_SCHEMES or not urlsplit(value).hostname:
            raise ValueError(f"a network server's url is mqtt://host:1883 or mqtts://host:8883, not "
                             f"{redact_url(value)!r}")
        return value

    @property
    def mqtt_client_id(self) -> str:
        return self.client_id or f"cityops-lorawan-{self.name}"

    def connection_url(self) -> str:
        """The URL with the username and password fields in it (they win over the URL's own)."""
        parts = urlsplit(self.url)
        username = self.username if self.username is not None else unquote(parts.username or "")
        password = (self.password.get_secret_value() if self.password is not None
                    else unquote(parts.password or ""))
        host = parts.netloc.rpartition("@")[2]
        auth = quote(username, safe="") + (":" + quote(password, safe="") if password else "") + "@" \
            if username else ""
        return urlunsplit(parts._replace(netloc=auth + host))


class LorawanSettings(BaseModel):
    """`cityops lorawan run` (docs/lorawan.md). CITYOPS_LORAWAN__SERVERS is a JSON list of NetworkServer:
    '[{"name": "chirpstack", "kind": "chirpstack", "url": "mqtt://chirpstack-broker:1883"}]'."""

    servers: list[NetworkServer] = []
    # the same frame counter this close in time is the same uplink (two gateways, two integrations,
    # a redelivery); further apart it is a counter reset after a rejoin or reboot (lorawan/frames.py)
    duplicate_window: timedelta = timedelta(minutes=10)
    keep_uplinks_for: timedelta = timedelta(days=35)  # the uplink log (duplicates, frame-counter gaps)
    metrics_port: int = Field(default=9109, ge=0, le=65_535)  # 0: no metrics endpoint
    downlink_check_s: float = Field(default=10.0, gt=0)  # how often reporting-interval changes are looked for

    @field_validator("servers")
    @classmethod
    def _unique(cls, value: list[NetworkServer]) -> list[NetworkServer]:
        names = [server.name for server in value]
        if len(names) != len(set(names)):
            raise ValueError(f"network server names must be unique: {', '.join(names)}")
        return value


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # reverse proxies (addresses or CIDRs) whose X-Forwarded-For / -Proto / -Host are believed;
    # from anywhere else those headers are ignored (docs/api.md, "Protections")
    trusted_proxies: list[str] = []
    # origins (scheme://host[:port]) besides the API's own and accounts.public_base_url whose
    # browsers may POST, PATCH or DELETE here; cross-site unsafe requests are refused 403
    allowed_origins: list[str] = []
    max_body_bytes: int = Field(default=1_048_576, ge=1024)      # larger request bodies: 413
    anonymous_max_body_bytes: int = Field(default=8192, ge=1024)  # on the routes that need no sign-in
    health_cache_s: float = Field(default=5.0, ge=0.1)           # /health probes at most this often
    # the platform's clock kept in a file by another program (cityops/clock.py; the demo's town
    # clock): unset in production, where the platform runs on the real UTC time
    clock_file: Path | None = None
    # Chromium's sandbox for the evidence PDFs (ops_api/pdf.py): off only where the container's
    # seccomp profile blocks the user namespaces it needs (deploy/Dockerfile); the pages printed
    # are the platform's own, every text escaped, scripts and fetches refused by their CSP
    pdf_sandbox: bool = True

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ip_network(item, strict=False)  # ValueError names the bad one
        return value


class DevicesSettings(BaseModel):
    # the council's area (lon/lat WKT POLYGON): fixed devices must be inside it.
    # The default is a box around Bristol.
    area_wkt: str = "POLYGON ((-2.73 51.39, -2.48 51.39, -2.48 51.55, -2.73 51.55, -2.73 51.39))"
    # the files `cityops device` generates for Mosquitto (password_file / acl_file in its config)
    broker_password_file: Path = Path(".cityops/mosquitto/passwords")
    broker_acl_file: Path = Path(".cityops/mosquitto/acl")
    # Mosquitto's pid_file: sent SIGHUP after every change; unset: files written, no reload
    broker_pid_file: Path | None = None
    # the broker URL written into generated agent configs (what devices connect to)
    agent_mqtt_url: str = Field(default="mqtts://broker.cityops.example.org:8883", pattern=r"^mqtts?://")
    agent_config_dir: Path = Path("agents")  # where `device add|import` write agent configs
    # dynamic security (docs/devices.md): the plugin's config file, written for a broker that
    # starts, and the admin account's URL (mqtt://service.admin:<secret>@host:1883) through
    # which every change reaches a running broker; set either and the files above are not used
    broker_dynsec_file: Path | None = None
    broker_admin_url: SecretStr | None = None
    # ingest consumers with an account each: service.ingest-<n>, client id cityops-ingest-<n>
    ingest_consumers: int = Field(default=2, ge=1, le=64)


class AlertsSettings(BaseModel):
    """Alert rule thresholds (raise/clear pairs give hysteresis), lifecycle and delivery (docs/alerts.md)."""

    damp_raise_level: Literal["high", "severe"] = "high"    # open at this level or worse
    damp_clear_level: Literal["none", "low", "medium"] = "low"  # resolve at this level or better
    bin_overflow_raise: float = Field(default=0.5, ge=0, le=1)   # overflow risk before the next pass
    bin_overflow_clear: float = Field(default=0.3, ge=0, le=1)
    bin_event_window: timedelta = timedelta(hours=6)   # a fire/tilt event this recent keeps its alert open
    sample_interval_s: dict[str, int] = {"frog": 300, "road": 600, "bin": 1800}
    offline_after_intervals: float = Field(default=6.0, gt=0)   # silent this many intervals: offline
    online_within_intervals: float = Field(default=2.0, gt=0)   # heard within this many: clear
    offline_critical_after: timedelta = timedelta(hours=24)
    battery_low_v: float = 3.45
    battery_clear_v: float = 3.6
    battery_critical_v: float = 3.3
    stuck_readings: int = Field(default=12, ge=2)   # the last K readings identical ...
    stuck_after: timedelta = timedelta(hours=3)     # ... and spanning at least this long
    dead_letter_window: timedelta = timedelta(minutes=15)
    dead_letter_raise: int = Field(default=100, ge=1)
    dead_letter_clear: int = Field(default=20, ge=0)
    clear_hold: timedelta = timedelta(minutes=30)   # clear this long before an alert resolves
    escalate_after: timedelta = timedelta(minutes=30)   # per level, while not acknowledged
    max_escalation_level: int = Field(default=3, ge=0)
    quiet_hours_bypass: Literal["critical", "none"] = "critical"  # what still goes out in quiet hours
    max_attempts: int = Field(default=6, ge=1)       # then the notification is dead-lettered
    backoff_base_s: float = Field(default=30.0, ge=0)
    backoff_max_s: float = Field(default=3600.0, ge=0)
    send_timeout_s: float = Field(default=10.0, gt=0)   # per webhook call / SMTP exchange / MQTT publish
    # the one client id the broker lets service.alerts use (docs/devices.md, Broker isolation)
    mqtt_client_id: str = Field(default="cityops-alerts", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    send_concurrency: int = Field(default=20, ge=1)
    claim_batch: int = Field(default=200, ge=1)
    lease_s: float = Field(default=300.0, gt=0)     # a claimed notification is due again after this
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_from: str = "CityOps alerts <alerts@cityops.example.org>"
    message_id_domain: str = "cityops.example.org"
    # Fernet keys sealing webhook secrets at rest (alerts/sealing.py): the first seals, all open
    secret_keys: list[SecretStr] = []


class GrittingSettings(BaseModel):
    # treat a wet or damp road when the lowest road surface temperature (RST) in the window
    # is at or below this; monitor within `monitor_margin_c` above it (docs/science.md#treatment-trigger)
    trigger_c: float = Field(default=1.0, ge=-5.0, le=5.0)
    monitor_margin_c: float = Field(default=1.0, ge=0.0, le=10.0)
    frost_margin_c: float = Field(default=1.0, ge=0.0, le=10.0)  # dry road this near the frost point: monitor
    window_h: float = Field(default=12.0, gt=0, le=48)           # "the coming night"
    step_min: float = Field(default=30.0, gt=0, le=180)
    sensor_range_m: float = Field(default=10_000.0, gt=0)        # inverse distance weighting radius
    sensor_stale_h: float = Field(default=3.0, gt=0)             # no reading for this long: dead
    snap_tolerance_m: float = Field(default=25.0, gt=0, le=500)  # gritter GPS point to road
    gritter_fresh_min: float = Field(default=60.0, gt=0)         # gritter readings newer than this override
    prewet: bool = False                                         # old name for salt = "prewet"
    salt: Literal["dry", "prewet", "treated"] = "dry"            # which column of the spread-rate matrix
    rate_matrix: Literal["nwsrg", "ts2010"] = "nwsrg"            # NWSRG Practical Guide, or Transport Scotland 2010
    rate_matrix_file: Path | None = None                         # a council's own matrix (JSON), used instead
    # the winter season: a route whose priority-1 segments have no usable temperature is "unknown"
    # (the duty officer decides, alerted), never "not needed"
    winter_months: list[int] = Field(default=[10, 11, 12, 1, 2, 3, 4], min_length=0, max_length=12)
    send_priority: int = Field(default=1, ge=1, le=3)            # send a route if a segment this urgent needs salt
    send_share: float = Field(default=0.2, ge=0.0, le=1.0)       # ... or more than this share of its length
    spreading_kmh: float = Field(default=30.0, gt=0)
    deadhead_kmh: float = Field(default=40.0, gt=0)
    reload_min: float = Field(default=15.0, ge=0)
    weather_class: Literal["auto", "extreme", "intermediate", "damped"] = "auto"
    plan_seconds: float = Field(default=10.0, gt=0)
    plan_iterations: int | None = Field(default=2_000, ge=1)     # stops the search first: same seed, same plan
    seed: int = 1

    @model_validator(mode="after")
    def _salt_and_season(self) -> GrittingSettings:
        if self.prewet and self.salt == "dry":
            self.salt = "prewet"
        bad = [m for m in self.winter_months if not 1 <= m <= 12]
        if bad:
            raise ValueError(f"winter_months must be month numbers 1..12, not {bad}")
        return self

    def in_winter(self, moment: datetime) -> bool:
        return moment.month in self.winter_months


class BinsSettings(BaseModel):
    """Bin rounds on the road network (docs/bins.md, "Rounds on the roads")."""

    # a refuse lorry's average speed along each road priority (1 main, 2 distributor, 3 residential),
    # km/h: below the 30 and 20 mph limits, for a slow 26-tonne vehicle in town traffic (docs/bins.md)
    main_road_kmh: float = Field(default=30.0, gt=0, le=100)
    distributor_kmh: float = Field(default=25.0, gt=0, le=100)
    residential_kmh: float = Field(default=18.0, gt=0, le=100)
    snap_max_m: float = Field(default=150.0, gt=0, le=1000)     # a bin further from every street: straight lines

    def speeds_kmh(self) -> dict[int, float]:
        """Speed by road priority, as rules.routing.roads takes it."""
        return {1: self.main_road_kmh, 2: self.distributor_kmh, 3: self.residential_kmh}


class ReleasesSettings(BaseModel):
    """Fleet releases of the device agent (docs/releases.md)."""

    store_dir: Path = Path(".cityops/releases")  # published archives live here; the API serves them
    # the fleet's Ed25519 public key (base64, or the path of the .pub file): `release publish` checks with it
    public_key: str | None = None
    # the API as devices see it, only printed by `release publish`: offers carry no URL, each
    # device downloads from its own [update] base_url (https outside the demo)
    # (https; plain http only to this machine, as the demo serves it)
    download_base_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://")
    download_bytes_per_s: int = Field(default=2_000_000, gt=0)  # shared by every download at once
    download_burst_bytes: int = Field(default=256_000, gt=0)
    max_concurrent_downloads: int = Field(default=20, ge=1)  # at most one per device; more get 429 + Retry-After
    download_idle_timeout_s: float = Field(default=60.0, gt=0)  # a client taking no bytes this long loses its slot
    tick_every_s: float = Field(default=30.0, gt=0)  # `cityops release run`: how often rollouts advance
    # the one client id the broker lets service.releases use (`release rollout`: cityops-releases-rollout)
    mqtt_client_id: str = Field(default="cityops-releases", pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    @field_validator("download_base_url")
    @classmethod
    def _https_outside_this_machine(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            raise ValueError(f"{value!r} is plain http to another machine: devices must download over "
                             "https (http only to 127.0.0.1, ::1 or localhost, as the demo does)")
        return value


class PkiSettings(BaseModel):
    """`cityops pki`: the private CA's folder and its key (docs/operations.md, "TLS")."""

    dir: Path = Path(".cityops/pki")  # ca.pem and the issued certificates and keys
    ca_key: Path | None = None        # default <dir>/ca.key; keep it where no service can read it


class AccountsSettings(BaseModel):
    """Users, sessions, invitations and the login limit of the operations API (docs/api.md)."""

    session_ttl: timedelta = timedelta(days=7)       # a session (token or cookie) lasts this long
    invitation_ttl: timedelta = timedelta(days=7)    # an unused invitation link expires after this
    # the API as people's browsers see it: invitation links are <public_base_url>/invite/<token>
    public_base_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://")
    # per username: this many failures in the window are free; each further attempt waits
    # login_delay, doubling per failure up to login_max_delay (a delay, never a lockout)
    login_max_failures: int = Field(default=5, ge=1)
    login_delay: timedelta = timedelta(seconds=10)
    login_max_delay: timedelta = timedelta(minutes=5)
    # an address that signed in as a user within this long skips that user's delay (not its own limit)
    login_known_client_for: timedelta = timedelta(days=30)
    login_max_failures_per_client: int = Field(default=20, ge=1)   # per client address (IPv6: per /64)
    login_window: timedelta = timedelta(minutes=15)
    # demo only (plain http on this machine): the session cookie is `cityops_session`, not
    # Secure; otherwise it is `__Host-cityops_session`, Secure, Path=/
    insecure_localhost: bool = False


class CasesSettings(BaseModel):
    """Damp and mould cases (cases/, docs/api.md "Cases"): when the sensors suggest one, and
    the questions Awaab's Law leaves open, answered as settings."""

    # a home whose damp level was high or severe on each of this many last days gets a
    # *suggested* case (`cityops cases suggest`); an officer triages it
    suggest_after_days: int = Field(default=3, ge=1, le=60)
    # the regulations do not say whether a sensor alert makes the landlord aware: off (the
    # default), awareness starts when an officer accepts the suggestion; on, when it was suggested
    sensor_alert_is_awareness: bool = False
    due_soon_days: float = Field(default=2, gt=0, le=30)   # a clock this close to its due time is "due soon"
    # householders' photos (cases/photos.py): stored re-encoded, by checksum, files 0600 in a 0700 folder
    photo_dir: Path = Path(".cityops/case-photos")
    photo_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024)  # per file, as sent
    photos_per_report: int = Field(default=5, ge=0, le=20)
    reports_per_day: int = Field(default=10, ge=1, le=1000)  # per household, in any 24 hours: 429 beyond

    @property
    def due_soon(self) -> timedelta:
        return timedelta(days=self.due_soon_days)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CITYOPS_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    database_url: SecretStr | None = None
    mqtt_url: SecretStr | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    storage: StorageSettings = StorageSettings()
    embedded: EmbeddedSettings = EmbeddedSettings()
    api: ApiSettings = ApiSettings()
    ingest: IngestSettings = IngestSettings()
    nats: NatsSettings = NatsSettings()
    lorawan: LorawanSettings = LorawanSettings()
    devices: DevicesSettings = DevicesSettings()
    gritting: GrittingSettings = GrittingSettings()
    bins: BinsSettings = BinsSettings()
    alerts: AlertsSettings = AlertsSettings()
    releases: ReleasesSettings = ReleasesSettings()
    accounts: AccountsSettings = AccountsSettings()
    cases: CasesSettings = CasesSettings()
    pki: PkiSettings = PkiSettings()

    @field_validator("database_url", "mqtt_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        _check_scheme(value, DB_SCHEMES, "CITYOPS_DATABASE_URL", "postgresql://user:pass@host:5432/db")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        _check_scheme(value, MQTT_SCHEMES, "CITYOPS_MQTT_URL", "mqtt://user:pass@host:1883")
        return value

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def uses_embedded_broker(self) -> bool:
        return self.mqtt_url is None

    def embedded_database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.embedded.postgres_port}/cityops"

    def embedded_mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.embedded.mqtt_port}"

    def resolved_database_url(self) -> str:
        """The URL to connect to: the configured one, else the embedded server's."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return self.embedded_database_url()

    def resolved_mqtt_url(self) -> str:
        if self.mqtt_url is not None:
            return self.mqtt_url.get_secret_value()
        return self.embedded_mqtt_url()


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: traffic that never leaves this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _check_scheme(value: SecretStr | None, schemes: tuple[str, ...], name: str, example: str) -> None:
    if value is None:
        return
    scheme = urlsplit(value.get_secret_value()).scheme
    if scheme not in schemes:
        raise ValueError(f"{name} must start with {' or '.join(s + '://' for s in schemes)} "
                         f"(for example {example}), got scheme {scheme or 'none'!r}")


def load_settings(**overrides: object) -> Settings:
    """Read the settings now; a bad value is a ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"CITYOPS_{'__'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
