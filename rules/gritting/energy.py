"""The night's road surface temperature from a surface energy balance (docs/gritting.md, "The night model").

In the spirit of METRo (Environment Canada's road weather model), for each sensor:

    C1 dT1/dt = -R + h (Ta - T1) + LE(T1, Td) + G          (the top road layer)
    G: conduction from the layers below (asphalt over a sand-and-gravel base, implicit in time)
    LE = (h / gamma) * max(e_s(Td) - e_s(T1), 0)           (condensation / deposition, Lewis relation)

**Coupling.** The layers are first driven by the sensor's own readings over the last hours
(the surface held to what it read, as METRo does before forecasting), which sets the heat
stored below. At "now" the one unknown, the net loss R (longwave to the sky, evaporation,
whatever else), is solved from the cooling rate the sensor shows, and held for the night:
a clear sky stays clear.

**The air.** Its temperature goes on falling at its recent rate, slowing with a 6 h time
constant (held when it is not falling). Its dew point falls with it, by half the air's
fall, and never above the air temperature: dew forming on the ground dries the air and
saturated air carries its dew point down with it. Without humidity there is no latent term
(the cautious side); without air temperature the sensible term is part of R.

**No floor.** Below the dew point the latent heat grows with the vapour deficit, so
condensation slows the cooling but cannot hold the road at the dew point while the rest of
the balance is negative: at T1 = Td, LE is zero and dT1/dt has the sign of the rest.

**The cautious bound.** Slab properties, the exchange coefficient and the sky are unknown,
so the model runs as a small ensemble (conductivity x0.7/x1/x1.4, exchange 3/6/10
W/m2K, net loss x1/x1.3 for a sky that clears further); the bound is the coldest member
less the sensor's accuracy. Its error, measured on reference nights, is in docs/gritting.md.
Pure numpy, no I/O; every sensor and member is one column, so a city's sensors take
milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rules.psychro import OVER_ICE, OVER_WATER

FloatArray = npt.NDArray[np.float64]

# Layers, top down (m): 10 cm of asphalt over 50 cm of sand and gravel; the bottom is held.
LAYER_M = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.10, 0.15, 0.20])
ASPHALT_DEPTH_M = 0.10
# ISO 10456:2007 Table 3 design values: asphalt 0.70 W/mK, 2100 kg/m3, 1000 J/kgK;
# sand and gravel 2.0 W/mK, 1950 kg/m3, 1045 J/kgK.
ASPHALT = (0.70, 2100.0 * 1000.0)
BASE = (2.0, 1950.0 * 1045.0)
GAMMA_HPA_K = 0.665          # psychrometric constant c_p p / (0.622 L) at 1000 hPa (WMO-No. 8)
STEP_S = 600.0               # 10-minute steps, implicit: stable at any step
AIR_TAU_H = 6.0              # the air's cooling slows with this time constant
DEW_FOLLOWS_AIR = 0.5        # the dew point falls by this share of the air's fall
RATE_HOURS = 1.5             # the cooling rate "now" is fitted over this long
SPIN_UP_HOURS = 6.0          # the readings that drive the layers before now
SENSOR_ACCURACY_C = 0.5      # DS18B20 datasheet: +-0.5 degC from -10 to +85 degC
CONDUCTIVITY_FACTORS = (0.7, 1.0, 1.4)
EXCHANGE_W_M2K = (3.0, 6.0, 10.0)    # sensible heat: calm stable night .. ISO 6946 h_c = 4 + 4v at 1.5 m/s
LOSS_FACTORS = (1.0, 1.3)
NOMINAL = (1, 1, 0)          # indices of the central member in the three tuples above


@dataclass(frozen=True)
class SensorNight:
    """One sensor's recent readings (hours since the epoch; NaN where not measured)."""

    t_h: FloatArray
    rst_c: FloatArray
    air_c: FloatArray
    dew_c: FloatArray        # the air's dew point at each reading, NaN without humidity


@dataclass(frozen=True)
class NightProjection:
    central_c: FloatArray    # (k, m) RST, the central member
    lower_c: FloatArray      # (k, m) the cautious bound: the coldest member less the sensor's accuracy
    dew_c: FloatArray        # (k, m) the air's dew point (NaN without humidity)
    rate_c_per_h: FloatArray # (k,) the cooling rate now (negative: cooling)
    loss_w_m2: FloatArray    # (k,) the net loss R solved at now, central member
    note: list[str | None]   # why a sensor's projection is held level, if it is
    balance_w_m2: FloatArray # (k, m) central member: the surface's balance without latent heat (-R + H + G)


def _layers() -> tuple[FloatArray, FloatArray, FloatArray]:
    """(conductivity W/mK, heat capacity J/m3K, thickness m) per layer."""
    top = np.cumsum(LAYER_M) - LAYER_M
    asphalt = top < ASPHALT_DEPTH_M - 1e-9
    k = np.where(asphalt, ASPHALT[0], BASE[0])
    c = np.where(asphalt, ASPHALT[1], BASE[1])
    return k.astype(np.float64), c.astype(np.float64), LAYER_M.astype(np.float64)


def _members(k_sensors: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per column (sensor-major): conductivity factor, exchange coefficient, loss factor."""
    grid = np.array([(a, b, c) for a in CONDUCTIVITY_FACTORS for b in EXCHANGE_W_M2K for c in LOSS_FACTORS])
    tiled = np.tile(grid, (k_sensors, 1))
    return tiled[:, 0], tiled[:, 1], tiled[:, 2]


def _nominal_member() -> int:
    a, b, c = NOMINAL
    return (a * len(EXCHANGE_W_M2K) + b) * len(LOSS_FACTORS) + c


class _Slab:
    """Implicit (backward Euler) conduction through the layers of many columns at once.

    Arrays are layer-major, (layers, columns). The conductances and capacities are fixed, so
    the elimination from the held bottom layer up to the top is precomputed per step length;
    a step then carries the right-hand side up, solves the top layer with that step's air
    flux, and substitutes back down."""

    def __init__(self, cond: FloatArray, cap: FloatArray, dz: FloatArray) -> None:
        # conductance between layers i and i+1 per m2 (two half layers in series): (n-1, cols)
        self.g = 1.0 / (dz[:-1, None] / (2 * cond[:-1]) + dz[1:, None] / (2 * cond[1:]))
        self.heat = cap * dz[:, None]                                  # J/m2K per layer: (n, cols)
        self._sweeps: dict[float, tuple[FloatArray, FloatArray, FloatArray]] = {}

    def _sweep(self, dt: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(mass, 1 / denominator, beta) with T_i = alpha_i + beta_i T_(i-1), bottom up."""
        cached = self._sweeps.get(dt)
        if cached is None:
            g, mass = self.g, self.heat / dt
            n = mass.shape[0]
            beta = np.zeros_like(mass)                      # the bottom layer is held: beta = 0
            inv = np.zeros_like(mass)
            for i in range(n - 2, 0, -1):
                inv[i] = 1.0 / (mass[i] + g[i - 1] + g[i] * (1.0 - beta[i + 1]))
                beta[i] = g[i - 1] * inv[i]
            inv[0] = mass[0] + g[0] * (1.0 - beta[1])       # the top: completed with the air's slope per step
            cached = self._sweeps[dt] = (mass, inv, beta)
        return cached

    def _alpha(self, temp: FloatArray, mass: FloatArray, inv: FloatArray) -> FloatArray:
        alpha = np.empty_like(temp)
        alpha[-1] = temp[-1]
        for i in range(temp.shape[0] - 2, 0, -1):
            alpha[i] = (mass[i] * temp[i] + self.g[i] * alpha[i + 1]) * inv[i]
        return alpha

    def _down(self, alpha: FloatArray, beta: FloatArray, top: FloatArray) -> FloatArray:
        out = np.empty_like(alpha)
        out[0] = top
        for i in range(1, out.shape[0]):
            out[i] = alpha[i] + beta[i] * out[i - 1]
        return out

    def step(self, temp: FloatArray, top_flux: FloatArray, top_slope: FloatArray, dt: float) -> FloatArray:
        """One step: the top layer takes `top_flux + top_slope * (T1_new - T1_old)` from the air."""
        mass, inv, beta = self._sweep(dt)
        alpha = self._alpha(temp, mass, inv)
        top = (mass[0] * temp[0] + self.g[0] * alpha[1] + top_flux - top_slope * temp[0]) / (inv[0] - top_slope)
        return self._down(alpha, beta, top)

    def held_top(self, temp: FloatArray, top_c: FloatArray, dt: float) -> FloatArray:
        """One step with the top layer held at `top_c` (coupling to the readings)."""
        mass, inv, beta = self._sweep(dt)
        return self._down(self._alpha(temp, mass, inv), beta, top_c)


def _saturation(temp_c: FloatArray) -> FloatArray:
    """Over ice below 0 degC (deposition), over water above."""
    return np.where(temp_c < 0, OVER_ICE.saturation(temp_c), OVER_WATER.saturation(temp_c))


def _latent(exchange: FloatArray, surface_c: FloatArray, dew_c: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(W/m2 released by condensation or deposition, its derivative in the surface temperature)."""
    known = np.isfinite(dew_c)
    dew = np.where(known, dew_c, -100.0)
    e_air = OVER_WATER.saturation(dew)              # the dew point is over water (Magnus, WMO)
    e_surface = _saturation(surface_c)
    deficit = e_air - e_surface
    condensing = known & (deficit > 0)
    flux = np.where(condensing, exchange / GAMMA_HPA_K * deficit, 0.0)
    # d e_s / dT from the Magnus form: e_s * a b / (b + T)^2 (over water; close enough over ice)
    slope_es = e_surface * OVER_WATER.a * OVER_WATER.b_c / (OVER_WATER.b_c + surface_c) ** 2
    return flux, np.where(condensing, -exchange / GAMMA_HPA_K * slope_es, 0.0)


def _recent_rate(t_h: FloatArray, y: FloatArray, now_h: float) -> tuple[float, int]:
    """Least-squares slope (degC/h) over the last RATE_HOURS, and how many readings it used."""
    ok = np.isfinite(y) & (t_h <= now_h) & (t_h >= now_h - RATE_HOURS)
    t, v = t_h[ok], y[ok]
    n = t.size
    if n < 3 or t.max() - t.min() < RATE_HOURS / 3:
        return 0.0, n
    dt = t - t.sum() / n
    return float(dt @ v / (dt @ dt)), n


def _air_path(sensor: SensorNight, now_h: float, offsets_h: FloatArray) -> tuple[FloatArray, float]:
    """The air temperature over the window (NaN without air readings) and its value now."""
    ok = np.isfinite(sensor.air_c) & (sensor.t_h <= now_h)
    if not ok.any():
        return np.full(offsets_h.shape, np.nan), float("nan")
    air_now = float(sensor.air_c[ok][-1])
    rate, _ = _recent_rate(sensor.t_h, sensor.air_c, now_h)
    rate = min(rate, 0.0)
    return air_now + rate * AIR_TAU_H * (1.0 - np.exp(-offsets_h / AIR_TAU_H)), air_now


def _dew_path(sensor: SensorNight, now_h: float, air: FloatArray, air_now: float) -> FloatArray:
    ok = np.isfinite(sensor.dew_c) & (sensor.t_h <= now_h)
    if not ok.any():
        return np.full(air.shape, np.nan)
    dew_now = float(sensor.dew_c[ok][-1])
    if not np.isfinite(air_now):
        return np.full(air.shape, dew_now)
    falling = DEW_FOLLOWS_AIR * np.minimum(air - air_now, 0.0)
    return np.asarray(np.minimum(dew_now + falling, air), dtype=np.float64)


def project(sensors: list[SensorNight], now_h: float, offsets_h: FloatArray) -> NightProjection:
    """Each sensor's RST over `offsets_h` (hours after now, offsets_h[0] = 0)."""
    k, m = len(sensors), offsets_h.size
    if k == 0:
        empty = np.zeros((0, m))
        return NightProjection(empty, empty, empty, np.zeros(0), np.zeros(0), [], empty)
    n_cond = len(CONDUCTIVITY_FACTORS)
    per_cond = len(EXCHANGE_W_M2K) * len(LOSS_FACTORS)
    per = n_cond * per_cond
    cond0, cap0, dz = _layers()
    layers = cond0.size

    rst_now, rates, notes, forced, spin_h = _readings(sensors, now_h)
    # --- coupling: the layers driven by each sensor's readings (exchange and sky do not matter yet)
    f_spin = np.tile(np.array(CONDUCTIVITY_FACTORS), k)
    spin = _Slab(cond0[:, None] * f_spin[None, :], np.repeat(cap0[:, None], k * n_cond, axis=1), dz)
    forced_cols = np.repeat(forced, n_cond, axis=0)                          # (k * n_cond, steps)
    temp = np.repeat(forced_cols[None, :, 0], layers, axis=0)                # isothermal start
    for i in range(1, spin_h.size):
        temp = spin.held_top(temp, forced_cols[:, i], STEP_S)
    temp = np.repeat(temp, per_cond, axis=1)

    # --- the unknown net loss R, from the top layer's balance now ---------------------------------
    f_cond, exchange, f_loss = _members(k)
    slab = _Slab(cond0[:, None] * f_cond[None, :], np.repeat(cap0[:, None], k * per, axis=1), dz)
    air, dew = _air_and_dew(sensors, now_h, offsets_h)
    air_c, dew_c = np.repeat(air, per, axis=0).T.copy(), np.repeat(dew, per, axis=0).T.copy()   # (m, cols)
    has_air = np.isfinite(air_c[0])
    ground = slab.g[0] * (temp[1] - temp[0])                                 # W/m2 into the top layer
    storage = slab.heat[0] * np.repeat(rates, per) / 3600.0                  # C1 dT1/dt, W/m2
    sensible_now = np.where(has_air, exchange * (air_c[0] - temp[0]), 0.0)
    latent_now, _ = _latent(exchange, temp[0], dew_c[0])
    loss = sensible_now + latent_now + ground - storage                      # R: what the sky etc. take
    loss = np.maximum(loss, 0.0) * f_loss                                    # never a gain at night
    air_slope = np.where(has_air, -exchange, 0.0)
    air_c = np.where(np.isfinite(air_c), air_c, 0.0)

    # --- forward over the window ------------------------------------------------------------------
    out = np.empty((m, k * per))
    out[0] = np.repeat(rst_now, per)
    balance = np.empty((m, k * per))
    balance[0] = sensible_now + ground - loss
    at_h = 0.0
    for grid_i in range(1, m):
        target = float(offsets_h[grid_i])
        while at_h < target - 1e-9:
            dt_h = min(STEP_S / 3600.0, target - at_h)
            at_h += dt_h
            a, d = _row_interp(offsets_h, air_c, at_h), _row_interp(offsets_h, dew_c, at_h)
            surface = temp[0]
            latent, d_latent = _latent(exchange, surface, d)
            sensible = np.where(has_air, exchange * (a - surface), 0.0)
            temp = slab.step(temp, sensible + latent - loss, air_slope + d_latent, round(dt_h * 3600.0, 3))
        out[grid_i] = temp[0]
        a = air_c[grid_i]
        balance[grid_i] = np.where(has_air, exchange * (a - temp[0]), 0.0) + slab.g[0] * (temp[1] - temp[0]) - loss

    by_sensor = out.T.reshape(k, per, m)
    central = by_sensor[:, _nominal_member(), :].copy()
    lower = by_sensor.min(axis=1) - SENSOR_ACCURACY_C
    for j, note in enumerate(notes):
        if note is not None:       # no rate to calibrate on: the reading held; the bound as computed
            central[j] = rst_now[j]
    nominal = _nominal_member()
    return NightProjection(central, lower, dew, rates, loss.reshape(k, per)[:, nominal], notes,
                           balance.T.reshape(k, per, m)[:, nominal, :].copy())


def _readings(sensors: list[SensorNight], now_h: float
              ) -> tuple[FloatArray, FloatArray, list[str | None], FloatArray, FloatArray]:
    """RST now, its rate, notes, and the readings on the coupling grid (oldest first, ends now)."""
    spin_h = now_h - np.arange(int(SPIN_UP_HOURS * 3600 / STEP_S), -1, -1) * STEP_S / 3600.0
    k = len(sensors)
    forced = np.empty((k, spin_h.size))
    rst_now, rates = np.empty(k), np.empty(k)
    notes: list[str | None] = []
    for j, s in enumerate(sensors):
        ok = np.isfinite(s.rst_c) & (s.t_h <= now_h)
        if not ok.any():
            raise ValueError("no surface temperature readings")
        t, y = s.t_h[ok], s.rst_c[ok]
        rst_now[j] = y[-1]
        forced[j] = np.interp(spin_h, t, y)                    # flat before the first reading
        rates[j], used = _recent_rate(s.t_h, s.rst_c, now_h)
        notes.append(None if used >= 3 else f"too few readings in the last {RATE_HOURS:g} h for a rate: held level")
    return rst_now, rates, notes, forced, np.asarray(spin_h, dtype=np.float64)


def _air_and_dew(sensors: list[SensorNight], now_h: float, offsets_h: FloatArray) -> tuple[FloatArray, FloatArray]:
    air = np.empty((len(sensors), offsets_h.size))
    dew = np.empty_like(air)
    for j, s in enumerate(sensors):
        air[j], air_now = _air_path(s, now_h, offsets_h)
        dew[j] = _dew_path(s, now_h, air[j], air_now)
    return air, dew


def _row_interp(offsets_h: FloatArray, values: FloatArray, at_h: float) -> FloatArray:
    """Every column of (m, cols) values at one time (linear between grid times)."""
    if offsets_h.size == 1:
        return values[0]
    i = int(np.clip(np.searchsorted(offsets_h, at_h) - 1, 0, offsets_h.size - 2))
    w = (at_h - offsets_h[i]) / (offsets_h[i + 1] - offsets_h[i])
    return np.asarray(values[i] * (1 - w) + values[i + 1] * w, dtype=np.float64)
