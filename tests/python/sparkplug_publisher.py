#!/usr/bin/env python3
"""An independent Sparkplug B edge node for the ingest tests.

Written with paho-mqtt and Google's protobuf runtime; the Sparkplug payload module is
compiled from proto/sparkplug/sparkplug_b.proto by grpcio-tools' protoc into a temporary
folder when the script starts, so nothing here shares code with the twin.

Scenarios (--scenario):
  session  NBIRTH, DBIRTH per station, DDATA (one station down), a malformed payload, an
           unknown device, an unknown metric, a duplicate, a sequence gap (then waits for
           the twin's NCMD rebirth and answers it with a new NBIRTH/DBIRTH), a DDEATH.
  stream   NBIRTH, DBIRTH, then --count DDATA messages, each carrying one Cycle/Duration
           of 1000 + i microseconds (i identifies the message; the first station is also
           reported down at i = 250 mod 500 and busy at i = 0 mod 500); prints `acked i`
           for each PUBACK the broker sends, as it comes.

Every line on stdout is a small fact the Rust test reads (`acked 17`, `rebirth`,
`done {...json...}`); diagnostics go to stderr.
"""

import argparse
import importlib
import json
import os
import sys
import tempfile
import threading
import time


def compile_sparkplug(proto_file):
    """Compiles the Sparkplug B proto with grpcio-tools' protoc; returns the module."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="sparkplug-py-")
    include = os.path.dirname(os.path.abspath(proto_file))
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    code = protoc.main(
        ["protoc", f"-I{include}", f"-I{well_known}", f"--python_out={out}", os.path.abspath(proto_file)]
    )
    if code != 0:
        sys.exit(f"protoc failed on {proto_file} ({code})")
    sys.path.insert(0, out)
    return importlib.import_module("sparkplug_b_pb2")


# Sparkplug DataType numbers (Eclipse Sparkplug 3.0, section 6.4.16).
UINT32, UINT64, BOOLEAN, STRING = 7, 8, 11, 12


class Node:
    """One edge node: the MQTT session with its Last Will, seq and bdSeq."""

    def __init__(self, args, pb):
        import paho.mqtt.client as mqtt

        self.mqtt = mqtt
        self.pb = pb
        self.args = args
        self.group, self.node = args.group, args.node
        self.seq = 0
        self.bd_seq = 0
        self.epoch = args.epoch_ms
        self.lock = threading.Lock()
        self.rebirths = 0
        self.rebirth_event = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"py-{self.node}-{os.getpid()}")
        self.client.max_inflight_messages_set(args.inflight)
        self.client.max_queued_messages_set(0)
        death = self.payload([self.metric("bdSeq", UINT64, self.bd_seq)], seq=None)
        self.client.will_set(self.topic("NDEATH"), death, qos=1, retain=False)
        self.client.on_message = self.on_message
        self.client.on_publish = self.on_publish
        self.pending = {}
        if args.ca:
            # TLS (mqtts): the broker's certificate must chain to this CA and name the host.
            self.client.tls_set(ca_certs=args.ca)
        host, port = args.broker.rsplit(":", 1)
        self.client.connect(host, int(port), keepalive=30)
        self.client.subscribe(self.topic("NCMD"), qos=1)
        self.client.loop_start()

    def topic(self, kind, device=None):
        base = f"spBv1.0/{self.group}/{kind}/{self.node}"
        return f"{base}/{device}" if device else base

    def metric(self, name, datatype, value, timestamp=None):
        m = self.pb.Payload.Metric()
        m.name = name
        m.datatype = datatype
        if datatype in (UINT64,):
            m.long_value = value
        elif datatype in (UINT32,):
            m.int_value = value
        elif datatype == BOOLEAN:
            m.boolean_value = value
        elif datatype == STRING:
            m.string_value = value
        if timestamp is not None:
            m.timestamp = timestamp
        return m

    def payload(self, metrics, seq, timestamp=None):
        p = self.pb.Payload()
        p.timestamp = timestamp if timestamp is not None else int(time.time() * 1000)
        if seq is not None:
            p.seq = seq
        p.metrics.extend(metrics)
        return p.SerializeToString()

    def next_seq(self):
        with self.lock:
            s = self.seq
            self.seq = (self.seq + 1) % 256
            return s

    def publish(self, topic, body, tag=None):
        info = self.client.publish(topic, body, qos=1)
        if tag is not None:
            with self.lock:
                self.pending[info.mid] = tag
        return info

    def on_publish(self, client, userdata, mid, reason_code, properties):
        with self.lock:
            tag = self.pending.pop(mid, None)
        if tag is not None:
            print(f"acked {tag}", flush=True)

    def on_message(self, client, userdata, message):
        p = self.pb.Payload()
        p.ParseFromString(message.payload)
        for m in p.metrics:
            if m.name == "Node Control/Rebirth" and m.boolean_value:
                self.rebirths += 1
                print("rebirth", flush=True)
                self.rebirth_event.set()

    def birth(self, stations):
        """NBIRTH (seq 0) then a DBIRTH per station (state busy)."""
        with self.lock:
            self.seq = 0
        nbirth = self.payload(
            [
                self.metric("bdSeq", UINT64, self.bd_seq),
                self.metric("Node Control/Rebirth", BOOLEAN, False),
                self.metric("Plant/Epoch", UINT64, self.epoch),
            ],
            seq=self.next_seq(),
        )
        self.publish(self.topic("NBIRTH"), nbirth).wait_for_publish(10)
        for s in stations:
            body = self.payload(
                [self.metric("State", STRING, "busy"), self.metric("Parts/In", UINT64, 0), self.metric("Parts/Out", UINT64, 0)],
                seq=self.next_seq(),
            )
            self.publish(self.topic("DBIRTH", s), body).wait_for_publish(10)

    def ddata(self, station, metrics, seq=None, timestamp=None):
        body = self.payload(metrics, seq=self.next_seq() if seq is None else seq, timestamp=timestamp)
        return body


def session(node, args):
    stations = args.stations.split(",")
    node.birth(stations)
    down = stations[0]
    facts = {}
    # A station reported down.
    node.publish(node.topic("DDATA", down), node.ddata(down, [node.metric("State", STRING, "down")])).wait_for_publish(10)
    # A malformed payload (not protobuf).
    node.publish(node.topic("DDATA", down), b"\xff\xff\xff\xff not a payload").wait_for_publish(10)
    # An unknown device and an unknown metric.
    node.publish(node.topic("DDATA", "no-such-station"), node.ddata("x", [node.metric("State", STRING, "busy")])).wait_for_publish(10)
    node.publish(node.topic("DDATA", stations[1]), node.ddata(stations[1], [node.metric("Mystery/Metric", UINT64, 1)])).wait_for_publish(10)
    # A duplicate: the very same message twice (as a redelivery would be).
    dup = node.ddata(stations[1], [node.metric("Cycle/Duration", UINT64, 4242)])
    node.publish(node.topic("DDATA", stations[1]), dup).wait_for_publish(10)
    node.publish(node.topic("DDATA", stations[1]), dup).wait_for_publish(10)
    # A sequence gap: skip 5 seq numbers.
    with node.lock:
        node.seq = (node.seq + 5) % 256
    node.publish(node.topic("DDATA", stations[1]), node.ddata(stations[1], [node.metric("State", STRING, "busy")])).wait_for_publish(10)
    facts["rebirth_requested"] = node.rebirth_event.wait(args.rebirth_wait)
    if facts["rebirth_requested"]:
        node.birth(stations)
        # The station reported down stays down after the rebirth's DBIRTH said busy?
        # No: the DBIRTH says busy, which repairs it. Report it down again.
        node.publish(node.topic("DDATA", down), node.ddata(down, [node.metric("State", STRING, "down")])).wait_for_publish(10)
    # A device death: that station goes stale (not down).
    dead = stations[-1]
    node.publish(node.topic("DDEATH", dead), node.ddata(dead, [])).wait_for_publish(10)
    facts["rebirths"] = node.rebirths
    print("done " + json.dumps(facts), flush=True)


def stream(node, args):
    stations = args.stations.split(",")
    node.birth(stations)
    print("born", flush=True)
    interval = 1.0 / args.rate if args.rate > 0 else 0.0
    start = time.monotonic()
    for i in range(args.count):
        station = stations[i % len(stations)]
        metrics = [node.metric("Cycle/Duration", UINT64, 1000 + i)]
        # Now and then the first station goes down and comes back (every 500 messages).
        if i % 500 == 250 and station == stations[0]:
            metrics.append(node.metric("State", STRING, "down"))
        elif i % 500 == 0 and station == stations[0]:
            metrics.append(node.metric("State", STRING, "busy"))
        body = node.ddata(station, metrics)
        # paho queues while the broker is slow; QoS 1 with its in-flight window.
        node.publish(node.topic("DDATA", station), body, tag=i)
        if interval:
            delay = start + (i + 1) * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    # Wait for the outstanding PUBACKs.
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline:
        with node.lock:
            if not node.pending:
                break
        time.sleep(0.05)
    with node.lock:
        left = len(node.pending)
    print("done " + json.dumps({"unacked": left}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proto", required=True, help="path to sparkplug_b.proto")
    ap.add_argument("--broker", required=True, help="host:port")
    ap.add_argument("--ca", help="connect with TLS, trusting this CA (PEM)")
    ap.add_argument("--group", required=True)
    ap.add_argument("--node", required=True, help="edge node id (the factory id)")
    ap.add_argument("--stations", required=True, help="comma-separated station ids")
    ap.add_argument("--epoch-ms", type=int, default=int(time.time() * 1000))
    ap.add_argument("--scenario", choices=["session", "stream"], required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=0.0, help="messages per second (0: as fast as possible)")
    ap.add_argument("--inflight", type=int, default=100)
    ap.add_argument("--drain", type=float, default=60.0)
    ap.add_argument("--rebirth-wait", type=float, default=20.0)
    args = ap.parse_args()
    pb = compile_sparkplug(args.proto)
    node = Node(args, pb)
    try:
        {"session": session, "stream": stream}[args.scenario](node, args)
    finally:
        node.client.loop_stop()
        node.client.disconnect()


if __name__ == "__main__":
    main()
