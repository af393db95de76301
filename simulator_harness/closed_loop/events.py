"""Scheduled events as arrays, and the pure function that fires the ones that are due.

Events only change *behaviour* fields (lane, desired speed, forced braking, heading of a walker);
motion then follows from the models, so a cut-in is a real lateral move and a hard brake is
jerk-limited like any other braking.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator_harness.closed_loop.road import Road
from simulator_harness.closed_loop.state import SimState
from simulator_harness.scenario.spec import EventKind
from simulator_harness.trajectory import EGO

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Integer codes stored in ``EventTable.kind``; -1 pads scenarios with fewer events.
EVENT_CODE: dict[EventKind, int] = {k: i for i, k in enumerate(EventKind)}


@dataclass(frozen=True)
class EventTable:
    """Events of a batch, each array ``(S, E)``: time, kind code, actor slot, two parameters.

    Parameters by kind: cut_in (lateral ω rad/s, lateral accel bound m/s²); lead_hard_brake
    (decel m/s², duration s, 0 = until stopped; jerk in ``p3``); jaywalk and occluded step-out
    (walking speed m/s); red_light_runner (speed m/s, 0 = keep).
    """

    t_s: F64
    kind: I64
    actor: I64
    p1: F64
    p2: F64
    p3: F64

    @staticmethod
    def empty(n_scenarios: int) -> EventTable:
        """A table with no events."""
        z = np.zeros((n_scenarios, 0))
        zi = np.zeros((n_scenarios, 0), dtype=np.int64)
        return EventTable(t_s=z, kind=zi, actor=zi, p1=z, p2=z, p3=z)


def fire_events(state: SimState, events: EventTable, road: Road) -> SimState:
    """Apply every event due at ``state.t_s`` that has not fired yet; returns a new state."""
    if events.kind.shape[1] == 0:
        return state
    due = (~state.event_fired) & (events.kind >= 0) & (events.t_s <= state.t_s + 1e-9)
    if not due.any():
        return state
    sc, ev = np.nonzero(due)
    actor = events.actor[sc, ev]
    kind = events.kind[sc, ev]
    p1, p2, p3 = events.p1[sc, ev], events.p2[sc, ev], events.p3[sc, ev]
    new = {name: getattr(state, name).copy() for name in (
        "lane", "d_m", "vd_mps", "mobil", "lat_omega_radps", "lat_accel_max_mps2", "brake_mps2",
        "brake_until_s", "jerk_max_mps3", "v0_mps", "yaw_rad", "ignore_signal", "event_fired")}
    new["event_fired"][sc, ev] = True

    m = kind == EVENT_CODE[EventKind.CUT_IN]
    if m.any():
        s_i, a_i = sc[m], actor[m]
        old, target = state.lane[s_i, a_i], state.lane[s_i, EGO]
        normal = np.stack([-np.sin(road.heading_rad[target]), np.cos(road.heading_rad[target])], axis=-1)
        shift = np.sum((road.origin_xy_m[old] - road.origin_xy_m[target]) * normal, axis=-1)
        new["lane"][s_i, a_i] = target
        new["d_m"][s_i, a_i] = state.d_m[s_i, a_i] + shift
        new["mobil"][s_i, a_i] = False
        new["lat_omega_radps"][s_i, a_i] = p1[m]
        new["lat_accel_max_mps2"][s_i, a_i] = p2[m]

    m = kind == EVENT_CODE[EventKind.LEAD_HARD_BRAKE]
    if m.any():
        s_i, a_i = sc[m], actor[m]
        new["brake_mps2"][s_i, a_i] = p1[m]
        new["brake_until_s"][s_i, a_i] = np.where(p2[m] > 0, state.t_s + p2[m], np.inf)
        new["jerk_max_mps3"][s_i, a_i] = p3[m]
        new["mobil"][s_i, a_i] = False

    m = (kind == EVENT_CODE[EventKind.JAYWALK]) | (kind == EVENT_CODE[EventKind.OCCLUDED_PEDESTRIAN_STEP_OUT])
    if m.any():
        s_i, a_i = sc[m], actor[m]
        centre_y = (road.n_main - 1) * road.width_m * 0.5
        new["yaw_rad"][s_i, a_i] = np.where(state.y_m[s_i, a_i] < centre_y, np.pi / 2, -np.pi / 2)
        new["v0_mps"][s_i, a_i] = p1[m]

    m = kind == EVENT_CODE[EventKind.RED_LIGHT_RUNNER]
    if m.any():
        s_i, a_i = sc[m], actor[m]
        new["ignore_signal"][s_i, a_i] = True
        new["v0_mps"][s_i, a_i] = np.where(p1[m] > 0, p1[m], state.v0_mps[s_i, a_i])
    return dataclasses.replace(state, **new)
