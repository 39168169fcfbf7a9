#!/usr/bin/python3
# HTTP webhook sink: appends every request as one JSON line to OUTFILE.
# Copied from the coffer test-server runbook; used by tests/integration/test_sched_notify.sh.
# Status code: 200, or N when the path starts with /status/N (e.g. /status/500 to test retries).
# usage: /usr/bin/python3 webhook_sink.py PORT OUTFILE
import sys, json, time, base64
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
port, out = int(sys.argv[1]), sys.argv[2]
class H(BaseHTTPRequestHandler):
    def _handle(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        rec = {"t": time.time(), "method": self.command, "path": self.path,
               "headers": dict(self.headers.items()),
               "body": body.decode("utf-8", "replace"),
               "body_b64": base64.b64encode(body).decode()}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        parts = self.path.split("/")
        code = int(parts[2]) if len(parts) > 2 and parts[1] == "status" and parts[2].isdigit() else 200
        resp = b'{"ok":true}\n'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(resp)))
        self.end_headers()
        self.wfile.write(resp)
    do_POST = do_PUT = do_GET = do_DELETE = do_PATCH = _handle
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
