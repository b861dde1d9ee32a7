"""An independent Kafka producer for test/integration/producers.test.ts: librdkafka (through
PyPI's confluent-kafka), not the project's client, so the ETL is fed what another standard
producer sends.

Reads one JSON object on stdin (the records may be too many for a command line, and the
password stays out of the process list):

  {"brokers": "127.0.0.1:19092", "username": "admin", "password": "…", "topic": "t1.sensor.paint",
   "compression": "zstd",            # none | gzip | snappy | lz4 | zstd
   "linger_ms": 50, "batch_size": 1000000, "batch_num_messages": 10000,
   "sticky_partitioning_linger_ms": 0,   # optional: keyless records to a random partition each
   "partition": 0,                   # optional: every record to this partition
   "transactional_id": "…",          # optional: then each step is a transaction
   "steps": [{"end": "commit",       # commit | abort (transactional), or omitted
              "records": [{"key": "k" | null, "value": "…", "headers": [["h", "v" | null], …]}]}]}

Logs in with SASL_PLAINTEXT and SCRAM-SHA-512. Prints one line of JSON on stdout:

  {"librdkafka": "2.16.0", "delivered": 3000, "steps": [{"end": "commit", "delivered": 1000,
   "partitions": {"0": {"first": 0, "last": 999, "count": 1000}}}, …],
   "batches": {"count": 3, "records": 3000, "max_records": 1000}}

"batches" is from librdkafka's statistics (the records in each produce batch it sent). Exits 1
with the error on stderr when anything was not delivered or a transaction failed.
"""

import json
import sys

import confluent_kafka as ck


def fail(message):
    print(f"produce.py: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    spec = json.load(sys.stdin)
    conf = {
        "bootstrap.servers": spec["brokers"],
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": spec["username"],
        "sasl.password": spec["password"],
        "client.id": "evf-test-librdkafka",
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": spec.get("compression", "none"),
        "linger.ms": spec.get("linger_ms", 5),
        "batch.size": spec.get("batch_size", 1_000_000),
        "batch.num.messages": spec.get("batch_num_messages", 10_000),
        "message.timeout.ms": 30_000,
        "statistics.interval.ms": 100,
        # Keyless records stick to one partition for this long (librdkafka's default 10 ms).
        "sticky.partitioning.linger.ms": spec.get("sticky_partitioning_linger_ms", 10),
    }
    if spec.get("transactional_id"):
        conf["transactional.id"] = spec["transactional_id"]

    errors = []
    batches = {"count": 0, "records": 0, "max_records": 0}
    topic = spec["topic"]

    def on_error(err):
        # A refused login never gets better: stop at once rather than wait for timeouts.
        if err.code() in (ck.KafkaError._AUTHENTICATION, ck.KafkaError.SASL_AUTHENTICATION_FAILED) or err.fatal():
            fail(f"Kafka error: {err}")
        print(f"produce.py: Kafka error (retried by librdkafka): {err}", file=sys.stderr)

    def on_stats(raw):
        # Each window's histogram of records per produce batch; windows reset at each report.
        hist = json.loads(raw).get("topics", {}).get(topic, {}).get("batchcnt", {})
        if hist.get("cnt", 0) > 0:
            batches["count"] += hist["cnt"]
            batches["records"] += hist["sum"]
            batches["max_records"] = max(batches["max_records"], hist["max"])

    conf["error_cb"] = on_error
    conf["stats_cb"] = on_stats
    producer = ck.Producer(conf)
    transactional = "transactional.id" in conf
    if transactional:
        producer.init_transactions(30)

    summary_steps = []
    for step in spec["steps"]:
        end = step.get("end")
        if transactional != (end in ("commit", "abort")):
            fail(f"a step's end must be commit or abort exactly when transactional_id is set (got {end!r})")
        partitions = {}

        def on_delivery(err, msg, partitions=partitions):
            if err is not None:
                errors.append(str(err))
                return
            p = partitions.setdefault(str(msg.partition()), {"first": None, "last": None, "count": 0})
            p["first"] = msg.offset() if p["first"] is None else min(p["first"], msg.offset())
            p["last"] = msg.offset() if p["last"] is None else max(p["last"], msg.offset())
            p["count"] += 1

        if transactional:
            producer.begin_transaction()
        for record in step["records"]:
            kwargs = {
                "topic": topic,
                "key": None if record.get("key") is None else record["key"].encode(),
                "value": record["value"].encode(),
                "headers": [(k, None if v is None else v.encode()) for k, v in record.get("headers", [])],
                "on_delivery": on_delivery,
            }
            if "partition" in spec:
                kwargs["partition"] = spec["partition"]
            while True:
                try:
                    producer.produce(**kwargs)
                    break
                except BufferError:
                    producer.poll(0.05)  # the local queue is full: let deliveries drain it
            producer.poll(0)
        if end == "commit":
            producer.commit_transaction(30)  # flushes, then writes the commit markers
        elif end == "abort":
            producer.flush(30)  # the records reach the log first, then the abort markers
            producer.abort_transaction(30)
        else:
            producer.flush(30)
        producer.poll(0)
        summary_steps.append({"end": end, "delivered": sum(p["count"] for p in partitions.values()),
                              "partitions": partitions})

    remaining = producer.flush(30)
    producer.poll(0.3)  # one more statistics report, covering the last batches
    if remaining:
        fail(f"{remaining} records still undelivered after 30 s")
    if errors:
        fail(f"{len(errors)} records not delivered, first: {errors[0]}")
    json.dump({"librdkafka": ck.libversion()[0], "delivered": sum(s["delivered"] for s in summary_steps),
               "steps": summary_steps, "batches": batches}, sys.stdout)
    print()


if __name__ == "__main__":
    try:
        main()
    except ck.KafkaException as e:
        fail(f"Kafka: {e}")
