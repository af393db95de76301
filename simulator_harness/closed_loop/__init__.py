"""Closed-loop simulation on vectorised NumPy state: IDM + MOBIL traffic, walkers, events, ego policies.

Rollouts are recorded as :class:`simulator_harness.trajectory.Trajectory` ``(S, A, T)``; the ego is
agent :data:`simulator_harness.trajectory.EGO`.
"""

from simulator_harness.closed_loop.build import (
    build_batch,
    free_flow_spec,
    headway_ok,
)
from simulator_harness.closed_loop.errors import SimulationError
from simulator_harness.closed_loop.events import (
    EVENT_CODE,
    EventTable,
    fire_events,
)
from simulator_harness.closed_loop.geometry import boxes_overlap, corners
from simulator_harness.closed_loop.idm import (
    IDMParams,
    LaneChangeCandidate,
    MOBILParams,
    idm_accel,
    mobil_gain,
)
from simulator_harness.closed_loop.neighbours import (
    LaneIndex,
    build_index,
    neighbour_at,
    own_follower,
    own_leader,
)
from simulator_harness.closed_loop.policy import (
    BlindEgo,
    EgoPolicy,
    IDMEgo,
)
from simulator_harness.closed_loop.road import Road, build_road
from simulator_harness.closed_loop.rollout import rollout, simulate
from simulator_harness.closed_loop.state import (
    DT_S,
    KIND_CODE,
    KIND_SIZE,
    VRU_CODES,
    EgoAction,
    SimState,
    TrajectoryRecorder,
)
from simulator_harness.closed_loop.step import SimParams, step

__all__ = [
    "DT_S",
    "EVENT_CODE",
    "KIND_CODE",
    "KIND_SIZE",
    "VRU_CODES",
    "BlindEgo",
    "EgoAction",
    "EgoPolicy",
    "EventTable",
    "IDMEgo",
    "IDMParams",
    "LaneChangeCandidate",
    "LaneIndex",
    "MOBILParams",
    "Road",
    "SimParams",
    "SimState",
    "SimulationError",
    "TrajectoryRecorder",
    "boxes_overlap",
    "build_batch",
    "build_index",
    "build_road",
    "corners",
    "fire_events",
    "free_flow_spec",
    "headway_ok",
    "idm_accel",
    "mobil_gain",
    "neighbour_at",
    "own_follower",
    "own_leader",
    "rollout",
    "simulate",
    "step",
]
