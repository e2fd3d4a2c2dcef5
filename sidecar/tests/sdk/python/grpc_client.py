"""The official Dapr Python SDK (PyPI `dapr`) over gRPC: `DaprClient()` against a Tandem sidecar.

Started by sidecar/tests/sdk_clients.rs; exits non-zero on the first failed check. This script is
also the sidecar's app: it serves `GET /dapr/subscribe` (topic `orders` of `pubsub`) and records
the events delivered to `POST /orders`.

Environment (set by the Rust test):
  DAPR_HTTP_PORT, DAPR_GRPC_PORT, DAPR_API_TOKEN   read by the SDK itself
  TANDEM_APP_ID        the sidecar's app id
  TANDEM_APP_PORT      the port this script serves the app on
  TANDEM_FILES_ROOT    the root folder of the `files` binding (bindings.localstorage)
  TANDEM_SECRET_NAME, TANDEM_SECRET_VALUE   a variable the `envsecrets` store reads
"""

import json
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError


def required(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(
            f'environment variable {name} is not set (this script is run by sidecar/tests/sdk_clients.rs)'
        )
    return value


APP_ID = required('TANDEM_APP_ID')
APP_PORT = int(required('TANDEM_APP_PORT'))
FILES_ROOT = required('TANDEM_FILES_ROOT')
SECRET_NAME = required('TANDEM_SECRET_NAME')
SECRET_VALUE = required('TANDEM_SECRET_VALUE')
HTTP_PORT = required('DAPR_HTTP_PORT')
TOKEN = required('DAPR_API_TOKEN')
required('DAPR_GRPC_PORT')

delivered = []


class App(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != '/dapr/subscribe':
            self.send_error(404)
            return
        self.answer([{'pubsubname': 'pubsub', 'topic': 'orders', 'route': '/orders'}])

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('content-length', '0')))
        delivered.append((self.path, json.loads(body)))
        self.answer({'status': 'SUCCESS'})

    def answer(self, value):
        body = json.dumps(value).encode('utf-8')
        self.send_response(200)
        self.send_header('content-type', 'application/json')
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def eventually(what, check, timeout_s=15):
    deadline = time.time() + timeout_s
    while not check():
        assert time.time() < deadline, f'timed out waiting for {what}'
        time.sleep(0.05)


def subscriptions():
    req = urllib.request.Request(
        f'http://127.0.0.1:{HTTP_PORT}/v1.0/metadata', headers={'dapr-api-token': TOKEN}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp).get('subscriptions', [])


def expect_grpc_error(call, code, reason=None, mentions=None):
    try:
        call()
    except grpc.RpcError as err:
        assert err.code() == code, f'expected {code}, got {err.code()}: {err.details()}'
        if reason is not None:
            assert isinstance(err, DaprGrpcError), f'not a DaprGrpcError: {err!r}'
            assert err.error_code() == reason, f'expected reason {reason}: {err.json()}'
        if mentions is not None:
            assert mentions in err.details(), f'{mentions!r} not in {err.details()!r}'
        return err
    raise AssertionError(f'expected the call to fail with {code}, but it succeeded')


def main():
    server = ThreadingHTTPServer(('127.0.0.1', APP_PORT), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    # The constructor polls GET /v1.0/healthz/outbound; every call below goes over gRPC.
    client = DaprClient()

    # State: save/get with ETags; a stale ETag raises ABORTED as daprd's does.
    client.save_state('statestore', 'py-order', b'{"id":7,"note":"gr\xc3\xbc\xc3\x9fe"}')
    first = client.get_state('statestore', 'py-order')
    assert first.data == b'{"id":7,"note":"gr\xc3\xbc\xc3\x9fe"}', first.data
    assert first.etag, 'no etag'
    client.save_state('statestore', 'py-order', b'{"id":8}', etag=first.etag)
    second = client.get_state('statestore', 'py-order')
    assert second.data == b'{"id":8}' and second.etag != first.etag, (second.data, second.etag)
    expect_grpc_error(
        lambda: client.save_state('statestore', 'py-order', b'{"id":9}', etag=first.etag),
        grpc.StatusCode.ABORTED,
        reason='ERR_STATE_SAVE',
    )
    assert client.get_state('statestore', 'py-order').data == b'{"id":8}'
    client.save_state('statestore', 'py-gone', 'bye')
    client.delete_state('statestore', 'py-gone')
    assert client.get_state('statestore', 'py-gone').data == b''
    expect_grpc_error(
        lambda: client.get_state('nostore', 'k'),
        grpc.StatusCode.INVALID_ARGUMENT,
        reason='DAPR_STATE_NOT_FOUND',
        mentions='nostore',
    )

    # Publish: the event reaches this app as a CloudEvent once the subscription runs.
    eventually('the subscription', lambda: len(subscriptions()) == 1)
    client.publish_event(
        'pubsub', 'orders', json.dumps({'id': 7}), data_content_type='application/json'
    )
    eventually('the delivery', lambda: len(delivered) == 1)
    path, event = delivered[0]
    assert path == '/orders', path
    assert event['data'] == {'id': 7}, event
    assert event['source'] == APP_ID, event
    expect_grpc_error(
        lambda: client.publish_event('nobus', 'orders', 'x'),
        grpc.StatusCode.INVALID_ARGUMENT,
        reason='DAPR_PUBSUB_NOT_FOUND',
    )

    # Secrets.
    secret = client.get_secret('envsecrets', SECRET_NAME)
    assert secret.secret == {SECRET_NAME: SECRET_VALUE}, secret.secret

    # Output binding: the file is written, and read back through the binding.
    created = client.invoke_binding(
        'files', 'create', data=b'from python', binding_metadata={'fileName': 'py.txt'}
    )
    assert created.json()['fileName'] == 'py.txt', created.data
    with open(os.path.join(FILES_ROOT, 'py.txt'), 'rb') as f:
        assert f.read() == b'from python'
    read = client.invoke_binding('files', 'get', binding_metadata={'fileName': 'py.txt'})
    assert read.data == b'from python', read.data

    # Metadata.
    client.set_metadata('team', 'py')
    md = client.get_metadata()
    assert md.application_id == APP_ID, md.application_id
    names = {c.name: c.type for c in md.registered_components}
    for name, kind in [
        ('statestore', 'state.in-memory'),
        ('pubsub', 'pubsub.in-memory'),
        ('envsecrets', 'secretstores.local.env'),
        ('files', 'bindings.localstorage'),
    ]:
        assert names.get(name) == kind, names
    assert md.extended_metadata.get('team') == 'py', md.extended_metadata

    # An RPC Tandem does not serve fails at once, naming itself.
    started = time.time()
    err = expect_grpc_error(
        lambda: client.get_configuration('configstore', ['k']), grpc.StatusCode.UNIMPLEMENTED
    )
    assert 'GetConfiguration' in err.details(), err.details()
    assert time.time() - started < 5, 'UNIMPLEMENTED took too long'

    client.close()
    server.shutdown()
    print('all dapr (python, gRPC) checks passed')


if __name__ == '__main__':
    main()
