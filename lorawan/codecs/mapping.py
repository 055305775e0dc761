"""Readings from a network server's decoded JSON, through a field mapping (no code).

A council whose sensors already have a decoder on ChirpStack or The Things Stack maps that
decoder's output (`object` / `decoded_payload`) to the platform's reading fields:

    {"kind": "bin",
     "fields": {"distance_mm": "distance", "temp_c": {"path": "temp", "scale": 0.1}},
     "battery_v": {"path": "bat_mv", "scale": 0.001}}

A path is dotted; a number indexes a list ("sensors.0.t"). value = raw * scale + offset.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from lorawan.codecs.base import READING_FIELDS, DecodedUplink, Kind, Measurement, has_required
from lorawan.errors import CodecError, MappingError

_MAPPING_KEYS = frozenset({"kind", "fields", "battery_v", "battery_pct"})
_RULE_KEYS = frozenset({"path", "scale", "offset"})
_MISSING = object()


@dataclass(frozen=True)
class FieldRule:
    path: str
    scale: float = 1.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.strip() or any(not p for p in self.path.split(".")):
            raise MappingError(f"a path must be a dotted name like 'sensors.0.t', not {self.path!r}")
        for name in ("scale", "offset"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise MappingError(f"{name} of {self.path!r} must be a finite number, not {value!r}")
        if self.scale == 0:
            raise MappingError(f"scale of {self.path!r} must not be 0")


@dataclass(frozen=True)
class FieldMapping:
    kind: Kind
    fields: dict[str, FieldRule]
    battery_v: FieldRule | None = None
    battery_pct: FieldRule | None = None

    def __post_init__(self) -> None:
        if self.kind not in READING_FIELDS:
            raise MappingError(f"unknown kind {self.kind!r} (one of {', '.join(sorted(READING_FIELDS))})")
        allowed = READING_FIELDS[self.kind]
        unknown = sorted(set(self.fields) - allowed)
        if unknown:
            raise MappingError(f"{', '.join(unknown)} not reading field(s) of a {self.kind} "
                               f"(one of {', '.join(sorted(allowed))})")
        if not has_required(self.kind, frozenset(self.fields)):
            raise MappingError(f"a {self.kind} mapping must map {_required_text(self.kind)}")


def _required_text(kind: str) -> str:
    return {"frog": "air_temp_c and rh_pct", "road": "surface_temp_c or air_temp_c"}.get(kind, "distance_mm")


def parse_mapping(raw: dict[str, Any] | str) -> FieldMapping:
    """A FieldMapping from JSON text or a dict; MappingError saying what is wrong."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise MappingError(f"a mapping is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(raw, dict):
        raise MappingError(f"a mapping is a JSON object, not {type(raw).__name__}")
    unknown = sorted(set(raw) - _MAPPING_KEYS)
    if unknown:
        raise MappingError(f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_MAPPING_KEYS))})")
    if "kind" not in raw:
        raise MappingError("a mapping needs a kind (frog, road or bin)")
    fields = raw.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise MappingError("a mapping needs 'fields': an object of reading field -> path or rule")
    kind = raw["kind"]
    if kind not in READING_FIELDS:
        raise MappingError(f"unknown kind {kind!r} (one of {', '.join(sorted(READING_FIELDS))})")
    return FieldMapping(
        kind=kind,
        fields={str(name): _parse_rule(name, rule) for name, rule in fields.items()},
        battery_v=_parse_rule("battery_v", raw["battery_v"]) if raw.get("battery_v") is not None else None,
        battery_pct=_parse_rule("battery_pct", raw["battery_pct"]) if raw.get("battery_pct") is not None else None,
    )


def _parse_rule(name: str, rule: Any) -> FieldRule:
    if isinstance(rule, str):
        return FieldRule(rule)
    if not isinstance(rule, dict):
        raise MappingError(f"{name}: a rule is a path or {{\"path\": ..., \"scale\": ..., \"offset\": ...}}")
    unknown = sorted(set(rule) - _RULE_KEYS)
    if unknown:
        raise MappingError(f"{name}: unknown key(s) {', '.join(unknown)} (allowed: path, scale, offset)")
    if "path" not in rule:
        raise MappingError(f"{name}: a rule needs a path")
    return FieldRule(rule["path"], rule.get("scale", 1.0), rule.get("offset", 0.0))


def apply_mapping(mapping: FieldMapping, decoded: dict[str, Any]) -> DecodedUplink | None:
    """The readings in a decoded object; None when it lacks the kind's required fields.

    A present value that is not a number (or a numeric string) raises CodecError naming its path.
    """
    values: dict[str, float] = {}
    for name, rule in mapping.fields.items():
        value = _read(decoded, rule)
        if value is not None:
            values[name] = value
    if not has_required(mapping.kind, frozenset(values)):
        return None
    return DecodedUplink(
        measurements=[Measurement(values)],
        battery_v=_read(decoded, mapping.battery_v) if mapping.battery_v else None,
        battery_pct=_read(decoded, mapping.battery_pct) if mapping.battery_pct else None,
    )


def _read(decoded: Any, rule: FieldRule) -> float | None:
    raw = _lookup(decoded, rule.path)
    if raw is _MISSING or raw is None:  # JSON null reads as absent
        return None
    return _number(raw, rule.path) * rule.scale + rule.offset


def _lookup(node: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(node, dict):
            if part not in node:
                return _MISSING
            node = node[part]
        elif isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return _MISSING
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _number(raw: Any, path: str) -> float:
    if isinstance(raw, bool):
        raise CodecError(f"{path}: a boolean ({raw}) is not a reading")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise CodecError(f"{path}: {raw!r} is not a number") from None
    else:
        raise CodecError(f"{path}: a {type(raw).__name__} is not a reading")
    if not math.isfinite(value):
        raise CodecError(f"{path}: {raw!r} is not a finite number")
    return value
