"""Test receiver: OTLP over TLS, gRPC (grpcio's secure port) and HTTP/protobuf (http.server behind
ssl), built from grpcio and opentelemetry-proto as oteltest installs them, printing each span as
one JSON line like otlp_receiver.py (transports "grpc+tls" and "http+tls").

usage: otlp_tls_receiver.py <grpc port> <http port> <cert.pem> <key.pem>
"""

import os
import ssl
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # not a line per refused handshake

import grpc  # noqa: E402
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otlp_receiver import SpanPrinter


class Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, printer):
        self.printer = printer

    def Export(self, request, context):  # noqa: N802
        self.printer.handle_trace(request, dict(context.invocation_metadata()))
        return ExportTraceServiceResponse()


def serve_http(port, printer, context):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/v1/traces":
                printer.handle_trace(ExportTraceServiceRequest.FromString(body), {})
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.serve_forever()


def main():
    grpc_port, http_port = int(sys.argv[1]), int(sys.argv[2])
    cert_path, key_path = sys.argv[3], sys.argv[4]
    with open(cert_path, "rb") as f:
        cert = f.read()
    with open(key_path, "rb") as f:
        key = f.read()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(SpanPrinter("grpc+tls")), server)
    server.add_secure_port(f"127.0.0.1:{grpc_port}", grpc.ssl_server_credentials([(key, cert)]))
    server.start()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    http = threading.Thread(target=serve_http, args=(http_port, SpanPrinter("http+tls"), context))
    http.daemon = True
    http.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
