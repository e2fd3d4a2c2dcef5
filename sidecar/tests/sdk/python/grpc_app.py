"""A gRPC app built with the official Python SDK's `dapr.ext.grpc.App` (PyPI `dapr[grpc]`).

Started by sidecar/tests/sdk_clients/grpc_app.rs behind a sidecar run with `--app-protocol grpc`;
it serves `AppCallback` on APP_PORT and records what reaches it, which the test reads back by
invoking the `seen` method. Nothing here is Tandem-specific: it is the SDK's own example shape.

  echo     answers with the request's body, content type and metadata (as JSON)
  fail     raises, so the SDK answers with an error status
  seen     what the topic and binding handlers received
  orders   (pubsub/orders) asks for one retry of every event whose data says {"retry": true}
  drops    (pubsub/drops) drops every event
  ticks    (input binding) records each event
and answers the sidecar's app health probes (AppCallbackHealthCheck), counting them.
"""

import json
import os
import threading

from dapr.ext.grpc import (
    App,
    BindingRequest,
    InvokeMethodRequest,
    InvokeMethodResponse,
    SubscriptionMessage,
    TopicEventResponse,
)

app = App()
lock = threading.Lock()
seen = {'orders': [], 'attempts': {}, 'drops': 0, 'ticks': 0}


@app.method(name='echo')
def echo(request: InvokeMethodRequest) -> InvokeMethodResponse:
    metadata = {k: v for k, v in request.metadata.items()}
    body = {
        'body': request.text(),
        'content_type': request.content_type,
        'metadata': metadata,
    }
    return InvokeMethodResponse(json.dumps(body).encode(), 'application/json')


@app.method(name='fail')
def fail(request: InvokeMethodRequest) -> InvokeMethodResponse:
    raise ValueError('the method failed')


@app.method(name='seen')
def seen_method(request: InvokeMethodRequest) -> InvokeMethodResponse:
    with lock:
        return InvokeMethodResponse(json.dumps(seen).encode(), 'application/json')


@app.subscribe(pubsub_name='pubsub', topic='orders')
def orders(event: SubscriptionMessage) -> TopicEventResponse:
    data = event.data() or {}
    with lock:
        attempts = seen['attempts'].get(event.id(), 0) + 1
        seen['attempts'][event.id()] = attempts
        if data.get('retry') and attempts == 1:
            return TopicEventResponse('retry')
        seen['orders'].append({'id': event.id(), 'data': data, 'topic': event.topic()})
    return TopicEventResponse('success')


@app.subscribe(pubsub_name='pubsub', topic='drops')
def drops(event: SubscriptionMessage) -> TopicEventResponse:
    with lock:
        seen['drops'] += 1
    return TopicEventResponse('drop')


@app.binding('ticks')
def ticks(request: BindingRequest) -> None:
    with lock:
        seen['ticks'] += 1


def healthy() -> None:
    with lock:
        seen['health_probes'] = seen.get('health_probes', 0) + 1


app.register_health_check(healthy)

if __name__ == '__main__':
    app.run(int(os.environ['APP_PORT']), listen_address='127.0.0.1')
