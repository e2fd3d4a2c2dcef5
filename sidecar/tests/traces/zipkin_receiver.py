"""Test receiver: a Zipkin v2 collector endpoint (POST /api/v2/spans, JSON) on the given port,
printing each span it receives as one JSON line on stdout for sidecar/tests/traces.

usage: zipkin_receiver.py <port>
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Spans(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/api/v2/spans":
            self.send_response(404)
            self.end_headers()
            return
        try:
            spans = json.loads(body)
        except ValueError:
            self.send_response(400)
            self.end_headers()
            return
        for span in spans:
            sys.stdout.write(json.dumps(span) + "\n")
        sys.stdout.flush()
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):  # quiet: stdout carries the spans
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Spans).serve_forever()
