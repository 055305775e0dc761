"""What a device is, validated where it is built (pure: no I/O).

`parse_spec` turns text fields (a CSV row, command-line options) into a `DeviceSpec`
and raises `InvalidField` naming the first bad field. Rules:
- device_id: the topic rule (lower case, digits, - or _, 2-64 characters);
- kind: frog, road or bin; attributes that belong to another kind are refused;
- location: lon and lat together, inside the council's area; required unless mobile;
- frog: household_id; road: road_segment_id, mobile; bin: bin_depth_mm (required), the depth
  the bin holds from the full line down; sensor_height_mm, the sensor's height above the
  bottom of the empty bin, checked as the bins rules read it (`rules.bins.fill.BinCalibration`:
  at least the depth, full outside the sensor's blind zone);
- calibration: `name=offset;...` with the reading fields of the kind, finite, |offset| <= 50;
- sample_interval_s: the reporting interval asked of the device, 10 s to 1 day;
- LoRaWAN (docs/lorawan.md): lorawan_dev_eui (16 hex digits, separators allowed) and codec come
  together; the codec is one of ours for the device's kind, or map:<profile>; network_server
  (optional) is the one server its uplinks may come through.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace

from contract.telemetry import DEVICE_ID
from devices.area import CouncilArea
from devices.errors import InvalidField
from lorawan.codecs import CODECS
from lorawan.identifiers import PROFILE, mapping_profile, normalise_dev_eui
from rules.bins.fill import BinCalibration
from rules.errors import InvalidBinSetup

KINDS = ("frog", "road", "bin")
CALIBRATED_FIELDS = {
    "frog": ("air_temp_c", "rh_pct"),
    "road": ("surface_temp_c", "air_temp_c"),
    "bin": ("distance_mm", "temp_c"),
}
KIND_ONLY = {"household_id": "frog", "road_segment_id": "road", "bin_depth_mm": "bin",
             "sensor_height_mm": "bin"}
MAX_OFFSET = 50.0
TEXT_RE_MAX = 64
SAMPLE_INTERVAL_S = (10, 86_400)  # contract.telemetry.DeviceConfig's range
NETWORK_SERVER = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # cityops.settings.NetworkServer.name


@dataclass(frozen=True)
class DeviceSpec:
    device_id: str
    kind: str
    lon: float | None = None
    lat: float | None = None
    household_id: str | None = None
    road_segment_id: str | None = None
    mobile: bool = False
    bin_depth_mm: int | None = None
    sensor_height_mm: int | None = None
    sensor_type: str | None = None
    calibration: dict[str, float] = field(default_factory=dict)
    sample_interval_s: int | None = None
    lorawan_dev_eui: str | None = None
    network_server: str | None = None
    codec: str | None = None

    @property
    def is_lorawan(self) -> bool:
        return self.lorawan_dev_eui is not None


SPEC_FIELDS = tuple(f.name for f in fields(DeviceSpec))


def parse_spec(raw: Mapping[str, str | None], area: CouncilArea, *, row: int | None = None) -> DeviceSpec:
    """A validated spec from text values; unknown keys are refused, blanks are unset."""
    values = {k: (v.strip() if isinstance(v, str) else v) for k, v in raw.items()}
    values = {k: (v if v != "" else None) for k, v in values.items()}
    for name in values:
        if name not in SPEC_FIELDS:
            raise InvalidField(name, f"unknown column (expected some of {', '.join(SPEC_FIELDS)})", row=row)

    def bad(name: str, reason: str) -> InvalidField:
        return InvalidField(name, reason, row=row)

    def number(name: str, cast: type[float] | type[int]) -> float | int | None:
        text = values.get(name)
        if text is None:
            return None
        try:
            return cast(text)
        except ValueError:
            raise bad(name, f"{text!r} is not {'an integer' if cast is int else 'a number'}") from None

    mobile_text = (values.get("mobile") or "false").lower()
    if mobile_text not in ("true", "false", "yes", "no", "1", "0"):
        raise bad("mobile", f"{mobile_text!r} is not true or false")
    spec = DeviceSpec(
        device_id=values.get("device_id") or "",
        kind=values.get("kind") or "",
        lon=number("lon", float), lat=number("lat", float),
        household_id=values.get("household_id"), road_segment_id=values.get("road_segment_id"),
        mobile=mobile_text in ("true", "yes", "1"),
        bin_depth_mm=number("bin_depth_mm", int),  # type: ignore[arg-type]
        sensor_height_mm=number("sensor_height_mm", int),  # type: ignore[arg-type]
        sensor_type=values.get("sensor_type"),
        calibration=parse_calibration(values.get("calibration"), row=row),
        sample_interval_s=number("sample_interval_s", int),  # type: ignore[arg-type]
        lorawan_dev_eui=values.get("lorawan_dev_eui"), network_server=values.get("network_server"),
        codec=values.get("codec"),
    )
    return validate(spec, area, row=row)


def parse_calibration(text: str | None, *, row: int | None = None) -> dict[str, float]:
    """`air_temp_c=-0.3;rh_pct=1.5` -> {"air_temp_c": -0.3, "rh_pct": 1.5}."""
    offsets: dict[str, float] = {}
    for item in (text or "").split(";"):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            offsets[name.strip()] = float(value)
        except ValueError:
            raise InvalidField("calibration", f"{item.strip()!r} is not name=offset", row=row) from None
    return offsets


def validate(spec: DeviceSpec, area: CouncilArea, *, row: int | None = None) -> DeviceSpec:
    def bad(name: str, reason: str) -> InvalidField:
        return InvalidField(name, reason, row=row)

    if not DEVICE_ID.match(spec.device_id):
        raise bad("device_id", f"{spec.device_id!r} must be 2-64 lower-case letters, digits, '-' or '_', "
                               "starting with a letter or digit")
    if spec.kind not in KINDS:
        raise bad("kind", f"unknown kind {spec.kind!r} (one of {', '.join(KINDS)})")
    for name, owner in KIND_ONLY.items():
        if getattr(spec, name) is not None and spec.kind != owner:
            raise bad(name, f"only a {owner} has a {name}, this is a {spec.kind}")
    if spec.mobile and spec.kind != "road":
        raise bad("mobile", f"only a road sensor (on a gritter) is mobile, this is a {spec.kind}")
    validate_location(spec.lon, spec.lat, area, mobile=spec.mobile, row=row)
    if spec.kind == "bin":
        if spec.bin_depth_mm is None or spec.bin_depth_mm <= 0:
            raise bad("bin_depth_mm", "a bin needs its depth in mm (> 0)")
        if spec.sensor_height_mm is not None:
            try:  # the rules' own check, so the registry never holds a bin they cannot read
                BinCalibration.for_sensor(spec.sensor_height_mm, spec.bin_depth_mm, spec.sensor_type)
            except InvalidBinSetup as exc:
                raise bad(exc.setting, f"{exc} ({exc.hint})") from None
    for text_field in ("household_id", "road_segment_id", "sensor_type"):
        value = getattr(spec, text_field)
        if value is not None and (len(value) > TEXT_RE_MAX or not value.isprintable()):
            raise bad(text_field, f"at most {TEXT_RE_MAX} printable characters")
    allowed = CALIBRATED_FIELDS[spec.kind]
    for name, offset in spec.calibration.items():
        if name not in allowed:
            raise bad("calibration", f"{name!r} is not a {spec.kind} reading (one of {', '.join(allowed)})")
        if not math.isfinite(offset) or abs(offset) > MAX_OFFSET:
            raise bad("calibration", f"{name} offset {offset} is not within +-{MAX_OFFSET:g}")
    if spec.sample_interval_s is not None and not \
            SAMPLE_INTERVAL_S[0] <= spec.sample_interval_s <= SAMPLE_INTERVAL_S[1]:
        raise bad("sample_interval_s", f"{spec.sample_interval_s} s is not within {SAMPLE_INTERVAL_S[0]} s "
                                       f"to {SAMPLE_INTERVAL_S[1]} s (a day)")
    return _validate_lorawan(spec, bad)


def _validate_lorawan(spec: DeviceSpec, bad: Callable[[str, str], InvalidField]) -> DeviceSpec:
    if spec.lorawan_dev_eui is None:
        for name in ("network_server", "codec"):
            if getattr(spec, name) is not None:
                raise bad(name, "only a LoRaWAN device (with a lorawan_dev_eui) has a " + name)
        return spec
    dev_eui = normalise_dev_eui(spec.lorawan_dev_eui)
    if dev_eui is None:
        raise bad("lorawan_dev_eui", f"{spec.lorawan_dev_eui[:40]!r} is not a DevEUI (16 hex digits)")
    if spec.codec is None:
        raise bad("codec", f"a LoRaWAN device needs a codec: one of {', '.join(sorted(CODECS))}, or map:<profile>")
    profile = mapping_profile(spec.codec)
    if profile is not None:
        if not PROFILE.match(profile):
            raise bad("codec", f"{spec.codec[:80]!r}: a profile name is letters, digits, ' ._/-', at most 128")
    elif spec.codec not in CODECS:
        raise bad("codec", f"unknown codec {spec.codec[:64]!r} (one of {', '.join(sorted(CODECS))}, "
                           "or map:<profile>)")
    elif CODECS[spec.codec].kind != spec.kind:
        raise bad("codec", f"{spec.codec} reads a {CODECS[spec.codec].kind} sensor, this is a {spec.kind}")
    if spec.network_server is not None and not NETWORK_SERVER.match(spec.network_server):
        raise bad("network_server", f"{spec.network_server[:64]!r} is not a network server name "
                                    "(lower-case letters, digits, '-' or '_')")
    return replace(spec, lorawan_dev_eui=dev_eui)


def validate_location(lon: float | None, lat: float | None, area: CouncilArea, *, mobile: bool,
                      row: int | None = None) -> None:
    if (lon is None) != (lat is None):
        raise InvalidField("lon" if lon is None else "lat", "give lon and lat together", row=row)
    if lon is None or lat is None:
        if not mobile:
            raise InvalidField("lon", "a fixed device needs its location (lon, lat)", row=row)
        return
    if not (math.isfinite(lon) and math.isfinite(lat)) or not area.contains(lon, lat):
        raise InvalidField("lon" if not area.polygon.bounds[0] <= lon <= area.polygon.bounds[2] else "lat",
                           f"({lon}, {lat}) is outside the council's area ({area.describe()})", row=row)


def moved(spec: DeviceSpec, lon: float, lat: float, area: CouncilArea) -> DeviceSpec:
    validate_location(lon, lat, area, mobile=spec.mobile)
    return replace(spec, lon=lon, lat=lat)
