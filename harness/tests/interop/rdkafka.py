#!/usr/bin/env python3
"""librdkafka (through confluent-kafka) as the peer client of the interop tests.

Deterministic content, so that the Rust side can compare every field:
  record i: key b"key-{i}", value b"{codec}-value-{i}", timestamp BASE_TS + i,
  headers [("dup", b"1"), ("dup", b"2"), ("null", None)]
(a repeated header key and a null header value on purpose).

Subcommands (each prints JSON on stdout, errors on stderr, non-zero on failure):
  produce       N records to partition 0 in one batch, with a codec
  transactions  three transactions of 5 records on partition 0: commit, abort, commit
  consume       from the beginning until N records or 20 s
  bench-produce N records of --size bytes, acks=all, idempotent; reports records/s,
                client CPU (getrusage of this process) and delivery latency
"""

import argparse
import json
import resource
import sys
import time
import uuid

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException,
                             Producer, TopicPartition)

BASE_TS = 1_700_000_000_000
HEADERS = [("dup", b"1"), ("dup", b"2"), ("null", None)]
TXN_OUTCOMES = ["commit", "abort", "commit"]
TXN_RECORDS = 5


def record(prefix, i):
    """Key, value and timestamp of record i (the Rust tests rebuild the same)."""
    return f"key-{i}".encode(), f"{prefix}-value-{i}".encode(), BASE_TS + i


class Deliveries:
    """Collects delivery reports: offsets delivered, errors seen."""

    def __init__(self):
        self.offsets = []
        self.errors = []

    def __call__(self, err, msg):
        if err is not None:
            self.errors.append(str(err))
        else:
            self.offsets.append(msg.offset())


def produce(args):
    # A long linger keeps all N records in one batch; flush() sends it at once.
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "compression.type": args.codec,
        "linger.ms": 10_000,
        "batch.num.messages": max(args.count, 1),
        "acks": "all",
    })
    deliveries = Deliveries()
    for i in range(args.count):
        key, value, ts = record(args.codec, i)
        producer.produce(args.topic, value=value, key=key, partition=0,
                         timestamp=ts, headers=HEADERS, on_delivery=deliveries)
    remaining = producer.flush(30)
    if remaining or deliveries.errors or len(deliveries.offsets) != args.count:
        fail(f"produce: {remaining} undelivered, errors {deliveries.errors}")
    print(json.dumps({"offsets": sorted(deliveries.offsets)}))


def transactions(args):
    # A unique transactional.id per run: no fencing between runs on one broker.
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "transactional.id": f"interop-{uuid.uuid4()}",
        "linger.ms": 10,
    })
    producer.init_transactions(30)
    deliveries = Deliveries()
    for t, outcome in enumerate(TXN_OUTCOMES):
        producer.begin_transaction()
        for i in range(TXN_RECORDS):
            key, value, ts = record(f"txn{t}-{outcome}", i)
            producer.produce(args.topic, value=value, key=key, partition=0,
                             timestamp=ts, headers=HEADERS, on_delivery=deliveries)
        if outcome == "commit":
            producer.commit_transaction(30)
        else:
            # librdkafka purges unsent records on abort: flush so that the
            # aborted records reach the log before the abort marker.
            producer.flush(30)
            producer.abort_transaction(30)
    if deliveries.errors:
        fail(f"transactions: delivery errors {deliveries.errors}")
    print(json.dumps({"offsets": sorted(deliveries.offsets)}))


def consume(args):
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": f"interop-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": args.isolation,
    })
    consumer.subscribe([args.topic])
    seen = 0
    deadline = time.monotonic() + 20
    try:
        while seen < args.count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                fail(f"consume: {msg.error()}")
            print(json.dumps(describe(msg)), flush=True)
            seen += 1
    finally:
        consumer.close()
    if seen < args.count:
        fail(f"consume: {seen} of {args.count} records within 20 s")


def group_member(args):
    """Joins a group and prints every assignment change as a JSON line, until
    --seconds pass; consumed records are counted, not printed."""
    def partitions(parts):
        return sorted([p.topic, p.partition] for p in parts)

    def assigned(consumer, parts):
        print(json.dumps({"event": "assigned", "partitions": partitions(parts)}), flush=True)

    def revoked(consumer, parts):
        print(json.dumps({"event": "revoked", "partitions": partitions(parts)}), flush=True)

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": args.strategy,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
    })
    consumer.subscribe([args.topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)
    deadline = time.monotonic() + args.seconds
    consumed = 0
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                consumed += 1
    finally:
        consumer.close()
    print(json.dumps({"event": "closed", "consumed": consumed}), flush=True)


def bench_consume(args):
    """Reads --count records of every partition from the start with
    librdkafka's batch API and reports throughput and this process's CPU, as
    `harness consume` does."""
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": f"bench-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 100,
    })
    # Every partition assigned from the start, no group join: as the other
    # clients of `harness bench --peers` read.
    partitions = consumer.list_topics(args.topic, timeout=20).topics[args.topic].partitions
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in partitions])
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    consumed, size, last = 0, 0, started
    idle_deadline = time.monotonic() + 30
    while consumed < args.count and time.monotonic() < idle_deadline:
        for msg in consumer.consume(10000, 0.5):
            if msg.error():
                continue
            consumed += 1
            size += len(msg.value() or b"")
            last = time.perf_counter()
            idle_deadline = time.monotonic() + 10
    cpu = cpu_seconds() - cpu_before
    consumer.close()
    elapsed = max(last - started, 1e-9)
    print(json.dumps({
        "consumed": consumed,
        "elapsed_ms": int(elapsed * 1000),
        "records_per_sec": consumed / elapsed,
        "mb_per_sec": size / elapsed / 1e6,
        "cpu_seconds": cpu,
        "cpu_us_per_record": cpu * 1e6 / max(consumed, 1),
    }))


def describe(msg):
    """One consumed record as JSON: bytes as hex, null as null."""
    ts_type, ts = msg.timestamp()
    return {
        "partition": msg.partition(),
        "offset": msg.offset(),
        "timestamp": ts,
        "key": hex_or_null(msg.key()),
        "value": hex_or_null(msg.value()),
        "headers": [[k, hex_or_null(v)] for k, v in (msg.headers() or [])],
    }


def hex_or_null(data):
    return None if data is None else data.hex()


def bench_produce(args):
    """The same workload as `harness produce`: record i has key i, value msg-i padded."""
    config = {
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": args.linger_ms,
        "batch.size": args.batch_size,
        "queue.buffering.max.messages": 1_000_000,
    }
    producer = Producer(config)
    latencies, errors = [], []

    def delivered(err, msg, sent_at):
        latencies.append(time.perf_counter() - sent_at)
        if err is not None:
            errors.append(str(err))

    cpu_before = cpu_seconds()
    started = time.perf_counter()
    for i in range(args.count):
        value = f"msg-{i}".encode().ljust(args.size, b".")
        sent_at = time.perf_counter()
        while True:
            try:
                producer.produce(args.topic, value, str(i).encode(),
                                 on_delivery=lambda err, msg, t=sent_at: delivered(err, msg, t))
                break
            except BufferError:
                producer.poll(0.001)
        producer.poll(0)
    producer.flush()
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    latencies.sort()
    pick = lambda p: latencies[min(int(len(latencies) * p), len(latencies) - 1)] * 1e3 if latencies else 0.0
    print(json.dumps({
        "client": f"librdkafka {__import__('confluent_kafka').libversion()[0]} (confluent-kafka)",
        "sent": args.count, "acked": args.count - len(errors), "failed": len(errors),
        "elapsed_ms": int(elapsed * 1e3), "records_per_sec": args.count / elapsed,
        "mb_per_sec": args.count * args.size / elapsed / 1e6,
        "cpu_seconds": cpu, "cpu_us_per_record": cpu * 1e6 / args.count,
        "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": latencies[-1] * 1e3 if latencies else 0.0,
    }))
    if errors:
        fail(f"{len(errors)} records failed: {errors[0]}")


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("produce")
    p.add_argument("--codec", required=True, choices=["none", "gzip", "snappy", "lz4", "zstd"])
    p.add_argument("--count", type=int, required=True)
    p.set_defaults(run=produce)

    t = commands.add_parser("transactions")
    t.set_defaults(run=transactions)

    c = commands.add_parser("consume")
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--isolation", default="read_uncommitted",
                   choices=["read_committed", "read_uncommitted"])
    c.set_defaults(run=consume)

    g = commands.add_parser("group-member")
    g.add_argument("--group", required=True)
    g.add_argument("--strategy", default="range")
    g.add_argument("--seconds", type=float, default=20)
    g.set_defaults(run=group_member)

    bc = commands.add_parser("bench-consume")
    bc.add_argument("--count", type=int, default=1_000_000)
    bc.set_defaults(run=bench_consume)

    b = commands.add_parser("bench-produce")
    b.add_argument("--count", type=int, default=1_000_000)
    b.add_argument("--size", type=int, default=100)
    b.add_argument("--linger-ms", type=int, default=5)
    b.add_argument("--batch-size", type=int, default=1_000_000)
    b.set_defaults(run=bench_produce)

    for sub in (p, t, c, g, bc, b):
        sub.add_argument("--bootstrap", required=True)
        sub.add_argument("--topic", required=True)

    args = parser.parse_args()
    try:
        args.run(args)
    except KafkaException as error:
        fail(f"{args.command}: {error}")


if __name__ == "__main__":
    main()
