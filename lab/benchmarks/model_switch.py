"""What switching models costs a `taue-server --models-dir`: the first load, each switch between two models, and
the process's memory after the first switch and after ten more (server.engine.Engine, as the server's job thread
uses it).

    python -m lab.benchmarks.model_switch                       # two copies of the toy, on the CPU
    python -m lab.benchmarks.model_switch --models-dir ~/models --first photo --second anime --device cuda
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

TOY = Path(__file__).resolve().parents[2] / "taue_engine" / "toy" / "model"


def rss_mib() -> float:
    """This process's resident memory (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default=None, help="default: a temporary folder with two copies of the toy")
    parser.add_argument("--first", default="toy-a")
    parser.add_argument("--second", default="toy-b")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--switches", type=int, default=10)
    args = parser.parse_args(argv)
    from taue_engine.quiet import quiet_libraries

    quiet_libraries()
    from server.engine import Engine
    from server.models_folder import check_models_folder, scan_models

    if args.models_dir is None:
        folder = Path(tempfile.mkdtemp(prefix="taue-switch-"))
        for name in (args.first, args.second):
            shutil.copytree(TOY, folder / name)
    else:
        folder = check_models_folder(Path(args.models_dir).expanduser())
    entries = scan_models(folder)
    source = {name: str(entries[name].path) for name in (args.first, args.second)}
    engine = Engine()
    engine.prepare(args.first, source[args.first], device=args.device)
    started = time.perf_counter()
    engine.load()
    if engine.state != "ready":
        print(f"model_switch: {args.first} did not load: {engine.error}")
        return 1
    print(f"first load ({args.first}): {time.perf_counter() - started:.2f} s")
    engine.switch(args.second, source[args.second])
    after_first = rss_mib()
    times = []
    for n in range(args.switches):
        name = args.first if n % 2 == 0 else args.second
        started = time.perf_counter()
        engine.switch(name, source[name])
        times.append(time.perf_counter() - started)
    print(f"{args.switches} switches: median {statistics.median(times):.2f} s, {min(times):.2f}-{max(times):.2f} s")
    print(f"RSS: {after_first:.0f} MiB after the first switch, {rss_mib():.0f} MiB after {args.switches} more")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
