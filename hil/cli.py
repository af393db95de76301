"""``avdata-hil``: the bench. Runs the real services together over real sockets.

Subcommands:
  demo   the whole loop on loopback with embedded defaults (what `make demo` runs)
  faults the demo with faults injected: a flaky link, kill -9 of the vehicle and the cloud mid-upload
  link   a flaky-link emulator (TCP proxy) to put between a vehicle and the cloud
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hil.demo import DemoConfig, DemoResult, DriveConfig, run_demo
from hil.errors import HilError
from hil.faults import FaultConfig, FaultPlan, run_faults
from hil.link_emulator import LinkEmulator, LinkProfile
from shared.sdnotify import Notifier


def _fmt_ns(t_ns: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(t_ns / 1e9)) + f".{(t_ns // 1_000_000) % 1000:03d}"


def print_segments(result: DemoResult, console: Console) -> None:
    table = Table(title=f"{len(result.segments)} segment(s) ingested", show_lines=True)
    table.add_column("segment", min_width=36, overflow="fold")
    for col in ("vehicle", "trigger", "time range (UTC)", "calibration", "messages per sensor"):
        table.add_column(col, no_wrap=True)
    for seg in result.segments:
        triggers = ", ".join(t["kind"] for t in seg["triggers"])
        length_s = (seg["end_ns"] - seg["start_ns"]) / 1e9
        span = f"{_fmt_ns(seg['start_ns'])} → {_fmt_ns(seg['end_ns'])}\n({length_s:.1f} s)"
        by_topic: dict[str, str] = {}
        for ref in seg["streams"]:  # a calibrated stream comes first; its raw twin is not repeated
            note = " (calibrated)" if ref["object_key"].startswith("processed/") else ""
            by_topic.setdefault(ref["topic"], f"{ref['topic']}: {ref['count']}{note}")
        counts = "\n".join(by_topic.values())
        table.add_row(seg["segment_id"], seg["vehicle_id"], triggers, span, seg.get("calibration_version") or "none",
                      counts)
    console.print(table)


def _cmd_demo(args: argparse.Namespace) -> int:
    # A pipe or CI log gets 150 columns, enough for the whole table; a terminal keeps its own width.
    console = Console(width=None if sys.stdout.isatty() else 150)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="avdata-demo-"))
    t0 = time.monotonic()
    try:
        result = run_demo(DemoConfig(workdir=workdir, drive=DriveConfig(duration_s=args.duration_s)),
                          progress=lambda msg: console.print(f"[dim]{time.monotonic() - t0:5.1f}s[/] {msg}"))
    except HilError as exc:
        console.print(f"[red]demo failed:[/] {exc}")
        return 1
    print_segments(result, console)
    console.print(f"done in {time.monotonic() - t0:.1f} s; logs and data under {result.workdir}")
    return 0


def _cmd_faults(args: argparse.Namespace) -> int:
    console = Console(width=None if sys.stdout.isatty() else 150)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="avdata-faults-"))
    t0 = time.monotonic()
    plan = FaultPlan(rate_kbps=args.rate_kbps, cut_after_bytes=args.cut_after_bytes)
    try:
        result = run_faults(FaultConfig(workdir=workdir, plan=plan),
                            progress=lambda msg: console.print(f"[dim]{time.monotonic() - t0:5.1f}s[/] {msg}"))
    except HilError as exc:
        console.print(f"[red]fault run failed:[/] {exc}")
        return 1
    print_segments(result.demo, console)
    console.print(f"done in {time.monotonic() - t0:.1f} s; logs and data under {result.demo.workdir}")
    return 0


def _parse_hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _cmd_link(args: argparse.Namespace) -> int:
    profile = LinkProfile(rate_bps=args.rate_kbps * 1000 / 8, latency_s=args.latency_ms / 1000,
                          cut_after_bytes=args.cut_after_bytes, cut_probability=args.cut_probability,
                          seed=args.seed)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with LinkEmulator(args.target[0], args.target[1], profile, args.listen[0], args.listen[1]) as link:
            print(f"link emulator on {args.listen[0]}:{link.port} → {args.target[0]}:{args.target[1]}", flush=True)
            Notifier().ready(f"listening on {args.listen[0]}:{link.port}")
            await stop.wait()
            print(f"connections {link.stats.connections}, cuts {link.stats.cuts}, "
                  f"up {link.stats.bytes_up} B, down {link.stats.bytes_down} B")

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avdata-hil", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run simulator → vehicle → cloud on loopback and print the segments")
    demo.add_argument("--workdir", type=Path, default=None,
                      help="where logs, snapshots and the cloud store go (default: a new temp dir)")
    demo.add_argument("--duration-s", type=float, default=17.0, help="length of the simulated drive")
    demo.set_defaults(func=_cmd_demo)
    faults = sub.add_parser("faults", help="the demo through a flaky link; kill -9 of vehicle and cloud mid-upload")
    faults.add_argument("--workdir", type=Path, default=None, help="where logs and data go (default: a temp dir)")
    faults.add_argument("--rate-kbps", type=float, default=6_000.0, help="uploader link capacity, kbit/s")
    faults.add_argument("--cut-after-bytes", type=int, default=1_600_000, help="cut each connection after N bytes")
    faults.set_defaults(func=_cmd_faults)
    link = sub.add_parser("link", help="run a flaky-link TCP proxy (bandwidth cap, latency, cuts)")
    link.add_argument("--listen", type=_parse_hostport, default=("127.0.0.1", 0), help="HOST:PORT to accept on")
    link.add_argument("--target", type=_parse_hostport, required=True, help="HOST:PORT to forward to")
    link.add_argument("--rate-kbps", type=float, default=0.0, help="capacity per direction, kbit/s (0 = unlimited)")
    link.add_argument("--latency-ms", type=float, default=0.0, help="one-way added delay")
    link.add_argument("--cut-after-bytes", type=int, default=0, help="cut each connection after N upstream bytes")
    link.add_argument("--cut-probability", type=float, default=0.0, help="chance per 16 KiB block of a cut")
    link.add_argument("--seed", type=int, default=0, help="seed for random cuts")
    link.set_defaults(func=_cmd_link)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
