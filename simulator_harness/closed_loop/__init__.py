"""Closed-loop simulation on vectorised NumPy state: IDM + MOBIL traffic, walkers, events, ego policies."""

from simulator_harness.closed_loop.build import build_batch, free_flow_spec
from simulator_harness.closed_loop.errors import SimulationError
from simulator_harness.closed_loop.events import EVENT_CODE, EventTable, fire_events
from simulator_harness.closed_loop.geometry import boxes_overlap, corners
from simulator_harness.closed_loop.idm import IDMParams, MOBILParams, idm_accel
from simulator_harness.closed_loop.policy import BlindEgo, EgoPolicy, IDMEgo
from simulator_harness.closed_loop.road import Road, build_road
from simulator_harness.closed_loop.rollout import rollout, simulate
from simulator_harness.closed_loop.state import DT_S, EGO, KIND_CODE, EgoAction, Recorder, SimState, Trajectory
from simulator_harness.closed_loop.step import SimParams, step

__all__ = [
    "DT_S",
    "EGO",
    "EVENT_CODE",
    "KIND_CODE",
    "BlindEgo",
    "EgoAction",
    "EgoPolicy",
    "EventTable",
    "IDMEgo",
    "IDMParams",
    "MOBILParams",
    "Recorder",
    "Road",
    "SimParams",
    "SimState",
    "SimulationError",
    "Trajectory",
    "boxes_overlap",
    "build_batch",
    "build_road",
    "corners",
    "fire_events",
    "free_flow_spec",
    "idm_accel",
    "rollout",
    "simulate",
    "step",
]
