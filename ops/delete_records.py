"""Delete Kafka records below given offsets, in a process of its own.

confluent-kafka 2.12 (the version bytewax and quixstreams settle on) drops one
reference too many in ``AdminClient.delete_records`` (confluentinc/confluent-kafka-python
#2275, fixed upstream by #2328), which later crashes the interpreter that called it. The
call therefore runs here, in a short-lived child process, so the crash can never reach
an operator command or a test.

Input on stdin (JSON): ``{"client": {librdkafka connection settings}, "cuts": [[topic, partition, offset], ...]}``.
Exit 0 when every partition was cut, 1 with the error on stderr otherwise.
"""

from __future__ import annotations

import json
import sys
import time

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

RETRIES = 20


def main() -> int:
    request = json.load(sys.stdin)
    admin = AdminClient({**request["client"], "log_level": 0})
    cuts = [TopicPartition(t, p, o) for t, p, o in request["cuts"]]
    for attempt in range(RETRIES):
        try:
            for future in admin.delete_records(cuts, request_timeout=30).values():
                future.result(timeout=30)
        except KafkaException as err:
            if attempt == RETRIES - 1 or not (err.args[0].retriable() or "leader" in str(err).lower()):
                sys.stderr.write(f"{err}\n")
                return 1
            time.sleep(0.25)
            cuts = [TopicPartition(t, p, o) for t, p, o in request["cuts"]]
            continue
        sys.stdout.flush()
        return 0
    return 1


if __name__ == "__main__":
    # Exit without tearing down the interpreter: its teardown is where the bad reference bites.
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    import os

    os._exit(code)
