"""Test receiver: oteltest's otelsink (a real OTLP receiver from PyPI) on the given gRPC and HTTP
ports, printing each span it receives as one JSON line on stdout for sidecar/tests/traces.

usage: otlp_receiver.py <grpc port> <http port>
"""

import json
import logging
import sys

from oteltest.sink import GrpcSink, HttpSink
from oteltest.sink.handler import RequestHandler


def any_value(v):
    kind = v.WhichOneof("value")
    return None if kind is None else getattr(v, kind)


class SpanPrinter(RequestHandler):
    def __init__(self, transport):
        self.transport = transport

    def handle_logs(self, request, headers):  # noqa: ARG002
        pass

    def handle_metrics(self, request, headers):  # noqa: ARG002
        pass

    def handle_trace(self, request, headers):  # noqa: ARG002
        lines = []
        for rs in request.resource_spans:
            resource = {a.key: any_value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for span in ss.spans:
                    lines.append(json.dumps({
                        "transport": self.transport,
                        "service": resource.get("service.name"),
                        "traceId": span.trace_id.hex(),
                        "spanId": span.span_id.hex(),
                        "parentSpanId": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "status": span.status.code,
                        "attributes": {a.key: str(any_value(a.value)) for a in span.attributes},
                        "links": [
                            {"traceId": link.trace_id.hex(), "spanId": link.span_id.hex()}
                            for link in span.links
                        ],
                    }))
        if lines:
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()


def main():
    grpc_port, http_port = int(sys.argv[1]), int(sys.argv[2])
    logger = logging.getLogger("otlp_receiver")
    grpc_sink = GrpcSink(SpanPrinter("grpc"), logger, port=grpc_port)
    grpc_sink.start()
    http_sink = HttpSink(SpanPrinter("http"), logger, port=http_port, daemon=False)
    http_sink.start()
    grpc_sink.wait_for_termination()


if __name__ == "__main__":
    main()
