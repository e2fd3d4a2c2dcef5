"""A streaming subscriber built with the official Python SDK: `DaprClient().subscribe(...)`
(`SubscribeTopicEventsAlpha1`), with no app port at all.

Started by sidecar/tests/sdk_clients/stream_subscription.rs. It subscribes to `orders` on
`pubsub` with the dead-letter topic `orders-dead`, and with a handler to `orders-dead`, and answers
each order by its `mode`: `ok` (SUCCESS), `retry-once` (RETRY the first time), `drop` (DROP),
`retry-always` (RETRY every time, so it ends on the dead-letter topic). After each event it
rewrites TANDEM_SEEN_FILE with everything seen so far, for the test to read.

Environment: DAPR_GRPC_PORT (read by the SDK), TANDEM_SEEN_FILE.
"""

import json
import os
import threading

from dapr.clients import DaprClient
from dapr.clients.grpc._response import TopicEventResponse
from dapr.common.pubsub.subscription import StreamCancelledError, StreamInactiveError

seen_file = os.environ['TANDEM_SEEN_FILE']
lock = threading.Lock()
seen = {'orders': [], 'dead': [], 'ready': False}


def record(kind, entry):
    with lock:
        if entry is not None:
            seen[kind].append(entry)
        else:
            seen[kind] = True
        tmp = seen_file + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(seen, f)
        os.replace(tmp, seen_file)


def on_dead(message):
    record('dead', {'data': message.data(), 'topic': message.topic()})
    return TopicEventResponse('success')


def answer(order, attempt):
    mode = order.get('mode')
    if mode == 'drop':
        return 'drop'
    if mode == 'retry-always' or (mode == 'retry-once' and attempt == 1):
        return 'retry'
    return 'success'


def main():
    client = DaprClient()
    close_dead = client.subscribe_with_handler('pubsub', 'orders-dead', on_dead)
    subscription = client.subscribe('pubsub', 'orders', dead_letter_topic='orders-dead')
    record('ready', None)
    attempts = {}
    try:
        while True:
            message = subscription.next_message()
            if message is None:
                continue
            order = message.data()
            n = order['n']
            attempts[n] = attempts.get(n, 0) + 1
            status = answer(order, attempts[n])
            record('orders', {
                'n': n,
                'mode': order.get('mode'),
                'attempt': attempts[n],
                'answer': status,
                'id': message.id(),
                'topic': message.topic(),
                'pubsub': message.pubsub_name(),
                'content_type': message.data_content_type(),
            })
            if status == 'success':
                subscription.respond_success(message)
            elif status == 'retry':
                subscription.respond_retry(message)
            else:
                subscription.respond_drop(message)
    except (StreamInactiveError, StreamCancelledError):
        pass
    finally:
        close_dead()
        subscription.close()


if __name__ == '__main__':
    main()
