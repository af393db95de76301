"""The inference process: :func:`vehicle.inference.loop.run_inference_process` under systemd.

Run alone: ``python -m vehicle.inference.process --config inference.toml`` (SIGTERM/SIGINT stop it), or
as the ``[inference]`` table of ``vehicle.toml``: ``avdata-vehicle infer --config vehicle.toml``.
Both go through :func:`serve`. The configuration is :mod:`vehicle.config.inference`, the loop
:mod:`vehicle.inference.loop`; both are re-exported here.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import zmq

from shared import logs
from shared.config import ConfigError, load
from shared.model_scores import decode_scores
from shared.sdnotify import Notifier
from vehicle.config.inference import InferenceProcessConfig
from vehicle.errors import MetricsPortError, VehicleError
from vehicle.inference.loop import FrameScheduler, InferenceMetrics, run_inference_process
from vehicle.metrics import serve_metrics

__all__ = ["FrameScheduler", "InferenceMetrics", "InferenceProcessConfig", "decode_scores", "main",
           "run_inference_process", "serve"]

log = logging.getLogger(__name__)


def serve(cfg: InferenceProcessConfig, *, metrics_host: str = "127.0.0.1", metrics_port: int = 0,
          prog: str = "vehicle.inference.process") -> int:
    """Run the process until SIGTERM or SIGINT under systemd's notify protocol; returns the exit code.

    Installs the signal handlers, so only a ``main`` calls it. ``READY=1`` goes out once the model
    is loaded and both sockets are up, ``WATCHDOG=1`` from the loop (at least every second, or
    half of ``$WATCHDOG_USEC``), ``STOPPING=1`` once the loop has stopped. Serves ``/metrics`` on
    ``metrics_host:metrics_port`` unless the port is 0, bound first. Returns 0 after a signal, 2 when
    the model cannot be loaded (configuration), 1 when a socket or the metrics port cannot be bound
    (a runtime conflict that a restart may clear); errors are one line on stderr.
    """
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    notifier, metrics = Notifier(), InferenceMetrics()
    try:
        if metrics_port:
            serve_metrics(metrics.registry, metrics_host, metrics_port, "[metrics] inference_port")
        run_inference_process(cfg, stop, metrics, on_ready=notifier)
    except MetricsPortError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except VehicleError as exc:  # the model cannot be loaded: a configuration problem
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except (zmq.ZMQError, OSError) as exc:  # a port in use, say: worth a restart
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    notifier.stopping()
    log.info("inference stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m vehicle.inference.process``; returns 0 after a signal, 2 for a bad configuration."""
    parser = argparse.ArgumentParser(description="Score camera frames and publish model/scores.")
    parser.add_argument("--config", type=Path, default=None, help="inference TOML (defaults when absent)")
    args = parser.parse_args(argv)
    try:
        cfg = load(InferenceProcessConfig, args.config)
    except ConfigError as exc:
        print(f"vehicle.inference.process: {exc}", file=sys.stderr)
        return 2
    logs.setup("avdata-inference", cfg.log_level)
    return serve(cfg)


if __name__ == "__main__":
    sys.exit(main())
