#!/usr/bin/env python3
"""Generates scenes/programme/: the twenty complexes of the national programme.

    python3 scripts/gen_programme.py [--twin target/release/twin] [--days 7]

Each complex is a chain of factories (1 to 4, by industry), each factory a line of
stations (3 to 6) with its own worker pool; its parts flow from factory to factory. The
complexes differ in industry, size, cycle times, prices and material costs (so their
value-added rates straddle the programme's 30% target) and in how far they have
automated (so their labour-productivity gains straddle +40%).

The labour-productivity baseline is measured, not typed: for every complex the script
also writes its pre-programme layout (the same complex with the worker pools it had
before automating: `before_pool = ceil(pool / (1 - automation))`) to a temporary folder,
runs `twin run --json --until DAYS` on it, and writes the measured value added per
worker-hour into the scene's `programme.baseline_labour_productivity`. The targets (30%,
+40%) are the programme's, stated once below.

Only the Python standard library is used. Commit this script and the scenes it writes.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "scenes", "programme")

# The programme's headline targets (DESIGN.md: value-added rate from 25% to 30%, labour
# productivity +40%).
TARGET_VA_RATE = 0.30
TARGET_LP_GAIN = 0.40

# id, name, region, industry, factories, stations per factory, mean cycle (s), price,
# material share of the price, busy kW per station, planned load of the slowest station,
# automation (share of the pre-programme workforce automated away).
COMPLEXES = [
    ("c01", "Ulsan Auto Valley", "Ulsan", "automotive", 4, 5, 55, 900.0, 0.70, 30.0, 0.80, 0.24),
    ("c02", "Gumi Electronics Park", "Gyeongbuk", "electronics", 3, 6, 35, 420.0, 0.74, 12.0, 0.78, 0.26),
    ("c03", "Changwon Machinery Cluster", "Gyeongnam", "machinery", 3, 4, 80, 1500.0, 0.66, 45.0, 0.75, 0.20),
    ("c04", "Yeosu Chemical Complex", "Jeonnam", "chemicals", 2, 4, 90, 700.0, 0.76, 60.0, 0.82, 0.18),
    ("c05", "Pohang Steel Works", "Gyeongbuk", "steel", 2, 5, 70, 520.0, 0.78, 90.0, 0.85, 0.16),
    ("c06", "Ochang Battery Hub", "Chungbuk", "batteries", 3, 5, 45, 640.0, 0.72, 35.0, 0.80, 0.29),
    ("c07", "Banwol Parts Park", "Gyeonggi", "auto parts", 2, 6, 40, 180.0, 0.68, 15.0, 0.76, 0.22),
    ("c08", "Namdong Metal Park", "Incheon", "metal forming", 1, 5, 50, 95.0, 0.64, 22.0, 0.72, 0.26),
    ("c09", "Daegu Textile Complex", "Daegu", "textiles", 2, 4, 30, 60.0, 0.70, 8.0, 0.78, 0.30),
    ("c10", "Osong Bio Valley", "Chungbuk", "pharmaceuticals", 2, 5, 75, 2100.0, 0.62, 25.0, 0.70, 0.22),
    ("c11", "Gwangju Photonics Park", "Gwangju", "optics", 1, 6, 40, 350.0, 0.67, 10.0, 0.74, 0.28),
    ("c12", "Jeonju Carbon Park", "Jeonbuk", "carbon fibre", 2, 4, 85, 1100.0, 0.73, 55.0, 0.80, 0.19),
    ("c13", "Gunsan Shipyard Suppliers", "Jeonbuk", "shipbuilding", 3, 4, 95, 2600.0, 0.75, 70.0, 0.83, 0.17),
    ("c14", "Siheung Smart Factory Park", "Gyeonggi", "electronics assembly", 2, 5, 35, 240.0, 0.71, 9.0, 0.77, 0.32),
    ("c15", "Asan Display Cluster", "Chungnam", "displays", 3, 5, 50, 880.0, 0.69, 40.0, 0.79, 0.25),
    ("c16", "Cheongju Semiconductor Park", "Chungbuk", "semiconductors", 4, 4, 60, 1900.0, 0.65, 50.0, 0.81, 0.27),
    ("c17", "Iksan Food Cluster", "Jeonbuk", "food", 1, 4, 25, 22.0, 0.77, 6.0, 0.75, 0.21),
    ("c18", "Wonju Medical Devices Park", "Gangwon", "medical devices", 1, 5, 65, 760.0, 0.61, 12.0, 0.68, 0.23),
    ("c19", "Gimhae Robotics Park", "Gyeongnam", "robotics", 2, 5, 70, 3100.0, 0.68, 28.0, 0.78, 0.30),
    ("c20", "Dangjin Green Hydrogen Park", "Chungnam", "hydrogen equipment", 3, 3, 100, 4200.0, 0.74, 80.0, 0.74, 0.18),
]

KINDS = ["Machine", "RobotCell", "Machine", "Assembly", "Inspection", "Packing"]


def dur(sec):
    """A scene duration string, whole seconds."""
    sec = int(round(sec))
    return f"{sec // 60}m {sec % 60}s" if sec >= 60 and sec % 60 else (f"{sec // 60}m" if sec >= 60 else f"{sec}s")


def lcg(seed):
    """A tiny deterministic generator (the scenes must not change between runs)."""
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        yield (state >> 11) / float(1 << 53)


def build(row):
    """The complex's factories and stations with planned loads: a dict used by both the
    scene and its pre-programme twin."""
    cid, name, region, industry, n_fact, n_st, cycle, price, mat, kw, load, automation = row
    rnd = lcg(int(cid[1:]) * 7919)
    factories = []
    for f in range(n_fact):
        stations = []
        for s in range(n_st):
            mean = cycle * (0.55 + 0.6 * next(rnd))
            # Every third station is a two-server cell taking about twice as long.
            servers = 2 if (s % 3 == 2) else 1
            mean *= servers
            fails = (s + f) % 2 == 0
            mtbf_h = 3.0 + 5.0 * next(rnd)
            mttr_min = 8.0 + 12.0 * next(rnd)
            stations.append({
                "id": f"f{f + 1}s{s + 1}",
                "kind": KINDS[s % len(KINDS)],
                "mean": mean,
                "servers": servers,
                "fails": fails,
                "mtbf_h": mtbf_h,
                "mttr_min": mttr_min,
                "kw": kw * (0.6 + 0.8 * next(rnd)),
                "scrap": 0.01 if KINDS[s % len(KINDS)] == "Inspection" else 0.0,
            })
        factories.append({"id": f"f{f + 1}", "stations": stations})
    # Capacity of each station, parts per hour (availability included); the arrival rate
    # puts the slowest at `load`.
    def capacity(st):
        avail = 1.0
        if st["fails"]:
            avail = st["mtbf_h"] / (st["mtbf_h"] + st["mttr_min"] / 60.0)
        return st["servers"] * avail * 3600.0 / st["mean"]
    rate = load * min(capacity(st) for f in factories for st in f["stations"])
    for f in factories:
        busy = sum(rate / capacity(st) * st["servers"] for st in f["stations"])
        # Enough workers that crews rarely wait: the mean number busy, a quarter more, one
        # spare, never more than the servers.
        n_servers = sum(st["servers"] for st in f["stations"])
        f["pool"] = min(n_servers, math.ceil(busy * 1.25) + 1)
        f["pool_before"] = math.ceil(f["pool"] / (1.0 - automation))
    return {"row": row, "factories": factories, "rate": rate}


def scene(c, before, baseline):
    cid, name, region, industry, n_fact, n_st, cycle, price, mat, kw, load, automation = c["row"]
    L = []
    w = L.append
    w(f"// {name} ({region}): {industry}, {n_fact} factories x {n_st} stations. Generated by")
    w("// scripts/gen_programme.py; edit the table there, not this file.")
    if before:
        w("// PRE-PROGRAMME layout (larger worker pools), only for measuring the baseline.")
    else:
        w(f"// The labour-productivity baseline is this complex's value added per worker-hour with")
        w(f"// its pre-programme worker pools ({', '.join(str(f['pool_before']) for f in c['factories'])} instead of")
        w(f"// {', '.join(str(f['pool']) for f in c['factories'])}), measured by `twin run --json` over the run below.")
    w("Scene(")
    w(f'    name: "{name}",')
    w(f'    description: "{industry.capitalize()} complex in {region}: {n_fact} factories, {n_fact * n_st} stations, '
      f'{c["rate"]:.1f} orders an hour.",')
    w(f"    seed: {int(cid[1:])},")
    w('    run: (until: "7d", warmup: "30m"),')
    w('    utilities: (power_price: 0.12, co2_kg_per_kwh: 0.45, currency: "EUR"),')
    if not before:
        w("    programme: (")
        w(f'        complex_id: "{cid}",')
        w(f'        name: "{name}",')
        w(f'        region: "{region}",')
        w(f'        industry: "{industry}",')
        w(f"        baseline_labour_productivity: Some({baseline:.3f}),")
        w(f"        targets: (value_added_rate: {TARGET_VA_RATE}, labour_productivity_gain: {TARGET_LP_GAIN}),")
        w("    ),")
    w("    factories: [")
    for i, f in enumerate(c["factories"]):
        w(f'        (id: "{f["id"]}", name: "{name} hall {i + 1}", industry: "{industry}", '
          f"origin: ({i * 90.0:.1f}, 0.0), size: (80.0, 30.0)),")
    w("    ],")
    w("    staff: [")
    for f in c["factories"]:
        size = f["pool_before"] if before else f["pool"]
        w(f'        (id: "{f["id"]}-crew", factory: "{f["id"]}", size: {size}),')
    w("    ],")
    w("    products: [")
    w(f'        (id: "unit", name: "{industry} unit", price: {price:.2f}, material_cost: {price * mat:.2f}, routing: [')
    for f in c["factories"]:
        for st in f["stations"]:
            m = st["mean"]
            w(f'            (op: "{st["id"]}", at: ["{st["id"]}"], '
              f'time: Tri(min: "{dur(0.75 * m)}", mode: "{dur(m)}", max: "{dur(1.25 * m)}")),')
    w("        ]),")
    w("    ],")
    w("    stations: [")
    for i, f in enumerate(c["factories"]):
        for j, st in enumerate(f["stations"]):
            extra = ""
            if st["servers"] > 1:
                extra += f', servers: {st["servers"]}'
            if st["fails"]:
                extra += f', failures: (mtbf: "{dur(st["mtbf_h"] * 3600)}", mttr: "{dur(st["mttr_min"] * 60)}")'
            if st["scrap"]:
                extra += f', scrap: {st["scrap"]}'
            pos = (i * 90.0 + 8.0 + j * (64.0 / max(1, len(f["stations"]) - 1)), 15.0)
            w(f'        (id: "{st["id"]}", kind: {st["kind"]}, factory: "{f["id"]}", pos: ({pos[0]:.1f}, {pos[1]:.1f}), '
              f'buffer: 4{extra}, pool: "{f["id"]}-crew", crew: 1, '
              f'power: (busy_kw: {st["kw"]:.1f}, idle_kw: {st["kw"] * 0.15:.1f})),')
    w("    ],")
    w("    sources: [")
    w(f'        (id: "orders", arrivals: Poisson(per_hour: {c["rate"]:.3f}), mix: {{"unit": 1.0}}, pos: (-6.0, 15.0)),')
    w("    ],")
    w(")")
    return "\n".join(L) + "\n"


K8S = os.path.join(ROOT, "deploy", "k8s")
NAMESPACE = "twin"
NATS_URL = f"nats://nats.{NAMESPACE}.svc.cluster.local:4222"


def k8s_complexes():
    """deploy/k8s/complexes.yaml: per complex a headless Service and a one-replica
    StatefulSet whose pod keeps its audit log (and checkpoints) on its own volume."""
    docs = []
    for row in COMPLEXES:
        cid, name = row[0], row[1]
        app = f"twin-{cid}"
        host = f"{app}-0.{app}.{NAMESPACE}.svc.cluster.local"
        labels = f"""        app.kubernetes.io/name: twin-serve
        app.kubernetes.io/part-of: twin-programme
        twin.example/complex: {cid}"""
        docs.append(f"""# {name}
apiVersion: v1
kind: Service
metadata:
  name: {app}
  namespace: {NAMESPACE}
  labels:
    app.kubernetes.io/name: twin-serve
    twin.example/complex: {cid}
spec:
  clusterIP: None
  selector:
    twin.example/complex: {cid}
  ports:
    - name: grpc
      port: 50051
    - name: metrics
      port: 9184
""")
        docs.append(f"""apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {app}
  namespace: {NAMESPACE}
  labels:
    app.kubernetes.io/name: twin-serve
    twin.example/complex: {cid}
spec:
  serviceName: {app}
  replicas: 1
  selector:
    matchLabels:
      twin.example/complex: {cid}
  template:
    metadata:
      labels:
{labels}
    spec:
      containers:
        - name: twin
          image: twin:latest
          args:
            - serve
            - /opt/twin/scenes/programme/{cid}.ron
            - --addr=0.0.0.0:50051
            - --speed=1
            - --scenes=/opt/twin/scenes
            - --nats={NATS_URL}
            - --complex={cid}
            - --advertise=http://{host}:50051
            - --auth=/etc/twin/tokens.ron
            - --data=/var/lib/twin
            - --metrics-addr=0.0.0.0:9184
          ports:
            - name: grpc
              containerPort: 50051
            - name: metrics
              containerPort: 9184
          readinessProbe:
            grpc:
              port: 50051
            periodSeconds: 10
          livenessProbe:
            grpc:
              port: 50051
            initialDelaySeconds: 10
            periodSeconds: 20
          resources:
            requests:
              cpu: 50m
              memory: 32Mi
            limits:
              cpu: "1"
              memory: 256Mi
          volumeMounts:
            - name: data
              mountPath: /var/lib/twin
            - name: tokens
              mountPath: /etc/twin
              readOnly: true
      volumes:
        - name: tokens
          secret:
            secretName: twin-tokens
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: ["ReadWriteOnce"]
        resources:
          requests:
            storage: 1Gi
""")
    head = ("# Generated by scripts/gen_programme.py (--k8s-only rewrites just this file): one\n"
            "# StatefulSet per complex of scenes/programme/, with its data volume. See deploy/k8s/README.md.\n")
    with open(os.path.join(K8S, "complexes.yaml"), "w") as f:
        f.write(head + "---\n".join(docs))


def measure(twin, path, days):
    out = subprocess.run([twin, "run", path, "--until", f"{days}d", "--json"], check=True,
                         capture_output=True, text=True).stdout
    report = json.loads(out)
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--twin", default=os.path.join(ROOT, "target", "release", "twin"))
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--k8s-only", action="store_true", help="only rewrite deploy/k8s/complexes.yaml")
    args = ap.parse_args()
    k8s_complexes()
    if args.k8s_only:
        return
    if not os.path.exists(args.twin):
        sys.exit(f"{args.twin} not found: build it (cargo build --release -p twin-cli) or pass --twin")
    os.makedirs(OUT, exist_ok=True)
    print(f"{'complex':<8} {'stations':>8} {'VA rate':>8} {'baseline':>9} {'lab.prod':>9} {'gain':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for row in COMPLEXES:
            c = build(row)
            before = os.path.join(tmp, f"{row[0]}-before.ron")
            with open(before, "w") as f:
                f.write(scene(c, True, None))
            base = measure(args.twin, before, args.days)["staff"]["labour_productivity"]
            path = os.path.join(OUT, f"{row[0]}.ron")
            with open(path, "w") as f:
                f.write(scene(c, False, base))
            after = measure(args.twin, path, args.days)
            lp = after["staff"]["labour_productivity"]
            print(f"{row[0]:<8} {len(after['stations']):>8} {100 * after['value_added']['rate']:>7.1f}% "
                  f"{base:>9.1f} {lp:>9.1f} {100 * (lp / base - 1):>+6.1f}%")


if __name__ == "__main__":
    main()
