"""Device codecs: a device's bytes to readings, one small module per sensor model.

Pure: the standard library and lorawan.errors only. Each codec follows one vendor document
(its `source`; docs/lorawan-codecs.md), and its test runs the vendor's own examples.
`mapping` reads a network server's already-decoded JSON instead, without code.
"""

from __future__ import annotations

from lorawan.codecs.base import Codec, DecodedUplink, Kind, Measurement
from lorawan.codecs.dragino_ldds75 import DraginoLdds75
from lorawan.codecs.dragino_lsn50 import DraginoLsn50
from lorawan.codecs.elsys_ers import ElsysErs
from lorawan.codecs.mapping import FieldMapping, FieldRule, apply_mapping, parse_mapping
from lorawan.codecs.milesight_em300_th import MilesightEm300Th
from lorawan.codecs.milesight_em310_udl import MilesightEm310Udl
from lorawan.errors import UnknownCodec

CODECS: dict[str, Codec] = {
    c.name: c
    for c in (MilesightEm300Th(), ElsysErs(), DraginoLdds75(), MilesightEm310Udl(), DraginoLsn50())
}


def codec(name: str) -> Codec:
    """The codec called `name`; UnknownCodec otherwise."""
    try:
        return CODECS[name]
    except KeyError:
        raise UnknownCodec(f"unknown codec {name!r} (one of {', '.join(sorted(CODECS))})") from None


__all__ = ["CODECS", "Codec", "DecodedUplink", "FieldMapping", "FieldRule", "Kind", "Measurement", "apply_mapping",
           "codec", "parse_mapping"]
