#!/usr/bin/python3
"""faultproxy.py -- a fault-injecting HTTP/1.1 proxy for S3 tests (stdlib only).

Usage: faultproxy.py LISTEN_PORT UPSTREAM_HOST:PORT [--drop R] [--err500 R] [--slowdown R]
                     [--stall R] [--stall-seconds S] [--truncate R] [--seed N]
                     [--stats FILE] [--after N]

Listens on 127.0.0.1:LISTEN_PORT. Each request read from a client is, at the given rates
(0..1, each drawn independently in the order listed), answered with a fault instead of being
passed on:
  drop      the request is forwarded but the connection is closed before any answer (a lost
            reply: the write may have landed)
  err500    500 InternalError, not forwarded
  slowdown  503 SlowDown with Retry-After: 1, not forwarded
  stall     nothing is sent for --stall-seconds, then the connection is closed
  truncate  the request is forwarded and the answer's body is cut in half, then the
            connection is closed
Otherwise the request goes to UPSTREAM unchanged (the client signs for the proxy's address,
which is the Host header it sends) and the answer comes back unchanged. The first --after
requests are never faulted. With --stats FILE, "requests N\\nbytes_up N\\nbytes_down N\\n" and
per-fault counts are written there after every request. Prints "ready" when listening.
"""
import argparse
import random
import socket
import socketserver
import sys
import threading
import time

lock = threading.Lock()
stats = {"requests": 0, "bytes_up": 0, "bytes_down": 0, "drop": 0, "err500": 0, "slowdown": 0,
         "stall": 0, "truncate": 0}


def write_stats(path):
    if not path:
        return
    with lock:
        text = "".join(f"{k} {v}\n" for k, v in stats.items())
    with open(path + ".tmp", "w") as f:
        f.write(text)
    import os
    os.replace(path + ".tmp", path)


def read_head(rf):
    lines = []
    while True:
        line = rf.readline(65537)
        if not line:
            return None
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return lines
        if len(lines) > 200:
            raise ValueError("too many header lines")


def header(lines, name):
    for l in lines[1:]:
        k, _, v = l.decode("latin-1").partition(":")
        if k.strip().lower() == name:
            return v.strip()
    return None


def read_body(rf, lines, is_head_response=False, status=200):
    if is_head_response or status in (204, 304) or 100 <= status < 200:
        return b""
    te = header(lines, "transfer-encoding")
    if te and "chunked" in te.lower():
        out = b""
        while True:
            size_line = rf.readline(1024)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                rf.readline(1024)  # the final CRLF (no trailers from S3 servers)
                return out
            out += rf.read(size)
            rf.readline(1024)
    cl = header(lines, "content-length")
    return rf.read(int(cl)) if cl else b""


def error_answer(code, reason, s3code, extra=""):
    body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{s3code}</Code>'
            f"<Message>injected by faultproxy</Message></Error>").encode()
    head = (f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n").encode()
    return head + body


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        a = self.server.args
        up = None
        try:
            while True:
                lines = read_head(self.rfile)
                if not lines:
                    return
                body = read_body(self.rfile, lines)
                method = lines[0].split(b" ")[0]
                with lock:
                    stats["requests"] += 1
                    n = stats["requests"]
                    stats["bytes_up"] += sum(map(len, lines)) + len(body)
                fault = None
                if n > a.after:
                    for name in ("drop", "err500", "slowdown", "stall", "truncate"):
                        if self.server.rng.random() < getattr(a, name):
                            fault = name
                            break
                if fault:
                    with lock:
                        stats[fault] += 1
                if fault == "err500":
                    self.wfile.write(error_answer(500, "Internal Server Error", "InternalError"))
                    return
                if fault == "slowdown":
                    self.wfile.write(error_answer(503, "Slow Down", "SlowDown",
                                                  "Retry-After: 1\r\n"))
                    return
                if fault == "stall":
                    time.sleep(a.stall_seconds)
                    return
                if up is None:
                    up = socket.create_connection(self.server.upstream, timeout=120)
                    upr = up.makefile("rb")
                up.sendall(b"".join(lines) + body)
                rlines = read_head(upr)
                if not rlines:
                    return
                status = int(rlines[0].split(b" ")[1])
                rbody = read_body(upr, rlines, method == b"HEAD", status)
                if fault == "drop":
                    return
                if fault == "truncate" and len(rbody) > 1:
                    self.wfile.write(b"".join(rlines) + rbody[: len(rbody) // 2])
                    return
                out = b"".join(rlines)
                if header(rlines, "transfer-encoding"):
                    # re-frame a chunked answer with a length
                    out = b"".join(l for l in rlines[:-1]
                                   if not l.lower().startswith(b"transfer-encoding"))
                    out += f"Content-Length: {len(rbody)}\r\n\r\n".encode()
                self.wfile.write(out + rbody)
                self.wfile.flush()
                with lock:
                    stats["bytes_down"] += len(out) + len(rbody)
                write_stats(a.stats)
        except (ConnectionError, ValueError, socket.timeout, OSError):
            return
        finally:
            if up is not None:
                up.close()
            write_stats(a.stats)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("upstream")
    for name in ("drop", "err500", "slowdown", "stall", "truncate"):
        p.add_argument("--" + name, type=float, default=0.0)
    p.add_argument("--stall-seconds", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--after", type=int, default=0)
    p.add_argument("--stats")
    a = p.parse_args()
    host, _, port = a.upstream.rpartition(":")
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.args = a
    srv.upstream = (host, int(port))
    srv.rng = random.Random(a.seed)
    print("ready", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
