"""The official Dapr Python SDK (PyPI `dapr`) invoking an app behind a second Tandem sidecar.

Started by sidecar/tests/sdk_clients.rs; exits non-zero on the first failed check. The callee is
the harness's echo app: it answers with the request body and content type, plus the headers
`x-echo-method`, `x-echo-uri` and `x-echo-header-<name>` describing what it received.

Environment (set by the Rust test):
  DAPR_HTTP_PORT, DAPR_GRPC_PORT, DAPR_API_TOKEN   read by the SDK itself
  TANDEM_APP_ID          the caller sidecar's app id
  TANDEM_CALLEE_APP_ID   the callee sidecar's app id
"""

import json
import os
import sys
import traceback

from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprHttpError


def required(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(
            f'environment variable {name} is not set (this script is run by sidecar/tests/sdk_clients.rs)'
        )
    return value


APP_ID = required('TANDEM_APP_ID')
CALLEE = required('TANDEM_CALLEE_APP_ID')
TOKEN = required('DAPR_API_TOKEN')
required('DAPR_HTTP_PORT')
required('DAPR_GRPC_PORT')


def headers_of(resp):
    """Response headers as {lower-case name: [values]}."""
    out = {}
    for name, values in resp.headers.items():
        out.setdefault(name.lower(), []).extend(values)
    return out


def one(headers, name):
    values = headers.get(name)
    assert values is not None, f'no {name} header in {headers}'
    assert len(values) == 1, f'{name}: {values}'
    return values[0]


def expect_http_error(call, status, error_code=None):
    try:
        call()
    except DaprHttpError as err:
        assert err.status_code == status, f'expected HTTP {status}, got {err.status_code}: {err.as_dict()}'
        if error_code is not None:
            assert err.error_code == error_code, f'expected {error_code}: {err.as_dict()}'
        return err
    raise AssertionError(f'expected the call to fail with HTTP {status}, but it succeeded')


def main():
    # The constructor polls GET /v1.0/healthz/outbound until the sidecar answers 2xx.
    client = DaprClient()

    # POST with JSON, a query string and metadata (sent as headers).
    body = json.dumps({'order': 42, 'items': ['a', 'b'], 'note': 'ünïcode'}).encode('utf-8')
    resp = client.invoke_method(
        CALLEE,
        'orders/42',
        data=body,
        content_type='application/json',
        metadata=(('x-custom', 'kept'), ('x-trace-me', 'abc')),
        http_verb='POST',
        http_querystring=(('q', '1'), ('tag', 'v-1.2')),
    )
    h = headers_of(resp)
    assert resp.status_code == 200, resp.status_code
    assert resp.data == body, resp.data
    assert json.loads(resp.text()) == {'order': 42, 'items': ['a', 'b'], 'note': 'ünïcode'}
    assert resp.content_type == 'application/json', resp.content_type
    assert one(h, 'x-echo-method') == 'POST'
    assert one(h, 'x-echo-uri') == '/orders/42?q=1&tag=v-1.2', one(h, 'x-echo-uri')
    assert one(h, 'x-echo-header-x-custom') == 'kept'
    assert one(h, 'x-echo-header-x-trace-me') == 'abc'
    assert one(h, 'x-echo-header-content-type') == 'application/json'
    assert one(h, 'x-echo-header-dapr-caller-app-id') == APP_ID
    assert one(h, 'x-echo-header-dapr-callee-app-id') == CALLEE
    assert one(h, 'x-echo-header-user-agent').startswith('dapr-sdk-python/'), h
    # The caller's API token is for its own sidecar only: it must not reach the callee app.
    assert 'x-echo-header-dapr-api-token' not in h, h
    print('ok - POST with JSON, query and metadata headers')

    # PUT with a text body and its own content type.
    resp = client.invoke_method(
        CALLEE, 'notes/7', data='hello text', content_type='text/plain; charset=utf-8', http_verb='PUT'
    )
    h = headers_of(resp)
    assert resp.text() == 'hello text', resp.data
    assert resp.content_type == 'text/plain', resp.content_type
    assert one(h, 'content-type') == 'text/plain; charset=utf-8'
    assert one(h, 'x-echo-method') == 'PUT'
    assert one(h, 'x-echo-uri') == '/notes/7'
    print('ok - PUT with text')

    # GET (the default verb) and DELETE without a body.
    for verb in ('GET', 'DELETE'):
        resp = client.invoke_method(CALLEE, 'items/9', http_verb=verb)
        h = headers_of(resp)
        assert resp.status_code == 200, resp.status_code
        assert resp.data == b'', resp.data
        assert one(h, 'x-echo-method') == verb
        assert one(h, 'x-echo-uri') == '/items/9'
    resp = client.invoke_method(CALLEE, 'default-verb')
    assert one(headers_of(resp), 'x-echo-method') == 'GET'
    print('ok - GET and DELETE')

    # The app's error status comes back as is; the SDK raises it.
    err = expect_http_error(
        lambda: client.invoke_method(
            CALLEE,
            'teapot',
            data=json.dumps({'errorCode': 'APP_SAYS_NO', 'message': 'no'}),
            metadata=(('x-status', '418'),),
            http_verb='POST',
        ),
        418,
        'APP_SAYS_NO',
    )
    print('ok - the app status is passed through:', err.status_code)

    # An unknown target app: Dapr's 500 ERR_DIRECT_INVOKE.
    expect_http_error(
        lambda: client.invoke_method('no-such-app', 'x', http_verb='GET'), 500, 'ERR_DIRECT_INVOKE'
    )
    print('ok - unknown app id')

    # A wrong API token (settings are read from the environment on every call): plain-text 401.
    os.environ['DAPR_API_TOKEN'] = TOKEN + '-wrong'
    try:
        expect_http_error(lambda: client.invoke_method(CALLEE, 'x', http_verb='GET'), 401)
    finally:
        os.environ['DAPR_API_TOKEN'] = TOKEN
    resp = client.invoke_method(CALLEE, 'after-token', http_verb='GET')
    assert one(headers_of(resp), 'x-echo-uri') == '/after-token'
    print('ok - the API token is enforced')

    client.close()
    print('all dapr (python) checks passed')


if __name__ == '__main__':
    try:
        main()
    except Exception:  # noqa: BLE001 - report every failure the same way
        traceback.print_exc()
        print('FAILED', file=sys.stderr)
        sys.exit(1)
