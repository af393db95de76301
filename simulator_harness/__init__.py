"""Simulator harness: synthetic sensors and the drive publisher (``drive``, ``sensors``,
``publisher``, ``cli``), the closed-loop scenario simulator and the validation statistics.

Subpackages are imported explicitly (``from simulator_harness.sensors import demo_rig``) so that
importing one tool does not pull in the video encoder or the simulator of another.
"""
