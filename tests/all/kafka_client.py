"""An independent Kafka client for the e2e tests (confluent-kafka).

    create BROKERS TOPIC PARTITIONS
    produce BROKERS TOPIC MODE COUNT PREFIX   # MODE: binary | structured | plain
    consume BROKERS TOPIC COUNT TIMEOUT_S     # prints one JSON record per line
    rate BROKERS TOPIC COUNT TIMEOUT_S        # records/s between the first and
                                              # last record's produce timestamp
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def create(brokers, topic, partitions):
    admin = AdminClient({"bootstrap.servers": brokers})
    futures = admin.create_topics([NewTopic(topic, num_partitions=int(partitions), replication_factor=1)])
    for f in futures.values():
        f.result(30)


def produce(brokers, topic, mode, count, prefix):
    p = Producer({"bootstrap.servers": brokers, "acks": "all", "enable.idempotence": True})
    for i in range(int(count)):
        key = f"k{i % 4}"
        eid = f"{prefix}-{i}"
        data = json.dumps({"seq": i, "key": key}).encode()
        if mode == "binary":
            headers = [
                ("ce_specversion", b"1.0"),
                ("ce_id", eid.encode()),
                ("ce_source", b"/kafka-test"),
                ("ce_type", b"kafka.test"),
                ("content-type", b"application/json"),
            ]
            p.produce(topic, key=key, value=data, headers=headers)
        elif mode == "structured":
            event = {
                "specversion": "1.0",
                "id": eid,
                "source": "/kafka-test",
                "type": "kafka.test",
                "datacontenttype": "application/json",
                "data": {"seq": i, "key": key},
            }
            p.produce(
                topic,
                key=key,
                value=json.dumps(event).encode(),
                headers=[("content-type", b"application/cloudevents+json")],
            )
        else:
            p.produce(topic, key=key, value=data)
    if p.flush(30) != 0:
        sys.exit("not every record was acknowledged")


def consume(brokers, topic, count, timeout):
    c = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"checker-{time.time()}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    deadline = time.time() + float(timeout)
    got = 0
    while got < int(count) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got += 1
        print(
            json.dumps(
                {
                    "partition": m.partition(),
                    "offset": m.offset(),
                    "key": m.key().decode() if m.key() else None,
                    "headers": {k: v.decode() for k, v in (m.headers() or [])},
                    "value": (m.value() or b"").decode(),
                }
            ),
            flush=True,
        )
    c.close()


def rate(brokers, topic, count, timeout):
    c = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"rate-{time.time()}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    deadline = time.time() + float(timeout)
    stamps = []
    while len(stamps) < int(count) and time.time() < deadline:
        for m in c.consume(1000, 0.5):
            if not m.error():
                stamps.append(m.timestamp()[1])
    c.close()
    seconds = (max(stamps) - min(stamps)) / 1000 if stamps else 0
    print(json.dumps({"count": len(stamps), "seconds": seconds,
                      "per_second": round(len(stamps) / seconds) if seconds else None}))


if __name__ == "__main__":
    {"create": create, "produce": produce, "consume": consume, "rate": rate}[sys.argv[1]](*sys.argv[2:])
