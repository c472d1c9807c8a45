#!/usr/bin/env python3
"""M/M/1 on the user's path: `twin run` against SimPy on the same model, in one run.

Runs `twin run scenes/validation/mm1.ron --until 100000h --warmup 0s --json` (the
command a user types), then the same queue (Poisson arrivals 0.9/min, exponential
service with mean 1 min, one server, unlimited queue) in SimPy, and prints customers per
second of each, the ratio and twin's events per second. (Peak memory: run the same
command under `/usr/bin/time -f %M`; a child's rusage here would count the forked
Python's pages too.)

Usage: scripts/bench-simpy.sh (sets up SimPy 4.1.2 in a virtual environment first).
"""

import json
import random
import subprocess
import sys
import time

import simpy

TWIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/twin"
SIMPY_MINUTES = float(sys.argv[2]) if len(sys.argv) > 2 else 300_000.0


def simpy_mm1(minutes: float, seed: int = 1) -> tuple[int, float]:
    """Customers served in `minutes` of simulated time, and the wall seconds it took."""
    rng = random.Random(seed)
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)
    served = 0

    def customer():
        nonlocal served
        with server.request() as req:
            yield req
            yield env.timeout(rng.expovariate(1.0))
        served += 1

    def arrivals():
        while True:
            yield env.timeout(rng.expovariate(0.9))
            env.process(customer())

    env.process(arrivals())
    start = time.perf_counter()
    env.run(until=minutes)
    return served, time.perf_counter() - start


def main() -> None:
    cmd = [TWIN, "run", "scenes/validation/mm1.ron", "--until", "100000h", "--warmup", "0s", "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    twin_customers = report["complex"]["finished"]
    twin_rate = twin_customers / report["wall_s"]
    events_rate = report["events"] / report["wall_s"]

    served, wall = simpy_mm1(SIMPY_MINUTES)
    simpy_rate = served / wall

    print(f"twin run   : {twin_customers:>10} customers in {report['wall_s']:.3f} s = {twin_rate / 1e6:.2f} M customers/s, "
          f"{events_rate / 1e6:.2f} M events/s")
    print(f"SimPy {simpy.__version__}: {served:>10} customers in {wall:.3f} s = {simpy_rate / 1e3:.1f} k customers/s")
    print(f"ratio      : {twin_rate / simpy_rate:.0f}x SimPy's customers per second")


if __name__ == "__main__":
    main()
