"""A receiver process for the crash test: takes one message under peek-lock, reports, waits.

Usage: ``python receiver_child.py CONNECTION_STRING QUEUE``. Prints one JSON line with the
message's sequence number, delivery count and locked-until time, then sleeps until killed
(at most 60 s). It never settles the message.
"""

from __future__ import annotations

import json
import sys
import time

from azure.servicebus import ServiceBusClient


def main() -> int:
    connection_string, queue = sys.argv[1], sys.argv[2]
    client = ServiceBusClient.from_connection_string(
        connection_string, retry_total=1, auth_timeout=10, try_timeout=10
    )
    receiver = client.get_queue_receiver(queue, max_wait_time=10)
    messages = receiver.receive_messages(max_message_count=1, max_wait_time=10)
    if not messages:
        print(json.dumps({"error": "no message"}), flush=True)
        return 1
    message = messages[0]
    assert message.locked_until_utc is not None
    print(
        json.dumps(
            {
                "sequence_number": message.sequence_number,
                "delivery_count": message.delivery_count,
                "locked_until": message.locked_until_utc.timestamp(),
                "lock_token": str(message.lock_token),
            }
        ),
        flush=True,
    )
    time.sleep(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
