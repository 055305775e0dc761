"""The one place PyVRP is called: stopping rule, seed, and its warnings and errors translated.

Deterministic under a seed when stopped by iterations (`max_iterations`); a time limit
alone depends on the machine's speed, so plans that must repeat give both.
PyVRP's ScalingWarning (distances too large) and PenaltyBoundWarning are turned into a
RoutingError with a hint instead of leaking (the tests run with warnings as errors).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import numpy.typing as npt
import pyvrp
from pyvrp.exceptions import PenaltyBoundWarning, ScalingWarning
from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria, StoppingCriterion

from rules.errors import RoutingError

log = logging.getLogger("rules.routing.solver")


def problem_data(locations: list[pyvrp.Location], clients: list[pyvrp.Client], fleet: pyvrp.VehicleType,
                 distance: npt.NDArray[np.int64], duration: npt.NDArray[np.int64]) -> pyvrp.ProblemData:
    """One depot at location 0, one vehicle type, one distance and one duration matrix."""
    # PyVRP's stubs say ndarray[int]; an int64 matrix is what it wants at run time
    return pyvrp.ProblemData(locations, clients, [pyvrp.Depot(location=0)], [fleet],
                             [distance], [duration])  # type: ignore[list-item]


def stopping(time_limit_s: float | None, max_iterations: int | None) -> StoppingCriterion:
    criteria: list[StoppingCriterion] = []
    if time_limit_s is not None:
        if time_limit_s <= 0:
            raise RoutingError(f"the time limit must be positive, got {time_limit_s}")
        criteria.append(MaxRuntime(time_limit_s))
    if max_iterations is not None:
        if max_iterations <= 0:
            raise RoutingError(f"the iteration limit must be positive, got {max_iterations}")
        criteria.append(MaxIterations(max_iterations))
    if not criteria:
        raise RoutingError("give a time limit or an iteration limit")
    return criteria[0] if len(criteria) == 1 else MultipleCriteria(criteria)


def solve(data: pyvrp.ProblemData, *, seed: int, time_limit_s: float | None = None,
          max_iterations: int | None = None) -> pyvrp.Result:
    stop = stopping(time_limit_s, max_iterations)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScalingWarning)
        warnings.simplefilter("ignore", PenaltyBoundWarning)  # PyVRP clamps the penalty itself
        try:
            result = pyvrp.solve(data, stop=stop, seed=seed, collect_stats=False, display=False)
        except ScalingWarning as exc:
            raise RoutingError("distances or times are too large for the solver",
                               hint="use metres and seconds; check for impossible coordinates") from exc
        except (ValueError, IndexError) as exc:
            raise RoutingError(f"the solver refused the problem: {exc}") from exc
    log.info("solved %d clients in %.1f s: cost %s, feasible %s", data.num_clients, result.runtime,
             result.cost(), result.is_feasible())
    return result
