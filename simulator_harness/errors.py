"""Errors raised by the simulator harness: one root, a few precise subclasses.

Each carries a short machine-readable ``reason`` (used as a metrics label and in summaries), and a
message that says what was wrong and what to do about it.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of every error raised by the ``simulator_harness`` package."""

    reason: str = "simulator_error"


class SimConfigError(SimulatorError, ValueError):
    """A parameter is out of range. It subclasses ``ValueError`` so that
    :func:`shared.config.load` reports it with the offending table named."""

    reason = "bad_config"


class DriveParamsError(SimConfigError):
    """A drive profile parameter is out of range."""

    reason = "bad_drive_params"


class SensorConfigError(SimConfigError):
    """A synthetic sensor was configured with impossible values (size, rate, field of view)."""

    reason = "bad_sensor_config"


class EncoderError(SimulatorError):
    """The H.265 encoder could not be opened or rejected a frame."""

    reason = "encoder_failed"


class PublishError(SimulatorError):
    """The publisher could not bind its endpoint or write its publish log."""

    reason = "publish_failed"


class NoSubscriber(PublishError):
    """No subscriber connected within the configured wait."""

    reason = "no_subscriber"


class ImportanceSamplingError(SimulatorError, ValueError):
    """Inputs to an importance-sampling estimate are inconsistent (shapes, NaN, empty, bad level)."""

    reason = "bad_importance_input"


class CoverageError(SimulatorError, ValueError):
    """A coverage cell or taxonomy does not fit the declared ODD axes."""

    reason = "bad_coverage_input"


class TrajectoryError(SimulatorError, ValueError):
    """A trajectory's arrays disagree in shape, or a consumer needs a field its producer left out."""

    reason = "bad_trajectory"


class CommonRoadError(SimulatorError):
    """A CommonRoad XML file is unreadable or lacks an element the importer needs."""

    reason = "bad_commonroad_file"


class ScenarioExportError(SimulatorError, ValueError):
    """A scenario cannot be written as OpenSCENARIO (unknown actor, bad event kind or value)."""

    reason = "bad_xosc_scenario"


class SweepError(SimulatorError):
    """A parameter sweep could not be started (bad work list, executor or cluster address)."""

    reason = "sweep_failed"


class RayUnavailable(SweepError):
    """A Ray cluster address was given but the optional ``ray`` package is not installed."""

    reason = "ray_missing"
