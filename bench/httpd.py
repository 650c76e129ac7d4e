#!/usr/bin/env python3
"""A small static file server for benchmarks: HTTP/1.1 keep-alive, one
thread per connection, single Range requests, and sendfile(2) for bodies so
that the server is not what limits a measurement (python3 -m http.server
copies through userspace in 64 KiB reads).

usage: httpd.py DIR [--bind 127.0.0.1] [--port 0] [--port-file F] [--log F]

Ready once the port file exists. SIGTERM exits. --log appends one line per
request: "METHOD PATH STATUS RANGE BYTES" (RANGE as sent, or "-"), so a
benchmark can count the requests a client made.
"""
import argparse
import os
import threading
import re
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    root = "."
    log = None
    log_lock = threading.Lock()

    def log_message(self, fmt, *args):
        pass

    def _log(self, status, nbytes):
        if self.log is None:
            return
        line = "%s %s %d %s %d\n" % (self.command, self.path, status,
                                     (self.headers.get("Range") or "-").replace(" ", ""), nbytes)
        with self.log_lock:
            self.log.write(line)
            self.log.flush()

    def _open(self):
        rel = os.path.normpath(self.path.split("?", 1)[0]).lstrip("/")
        if rel.startswith(".."):
            return None
        path = os.path.join(self.root, rel)
        if not os.path.isfile(path):
            return None
        return open(path, "rb")

    def _range(self, size):
        """(start, end_exclusive, status) or None when unsatisfiable."""
        h = self.headers.get("Range")
        if not h:
            return 0, size, 200
        m = RANGE.match(h.strip())
        if not m or (not m.group(1) and not m.group(2)):
            return 0, size, 200
        if not m.group(1):
            n = int(m.group(2))
            return max(0, size - n), size, 206
        start = int(m.group(1))
        end = int(m.group(2)) + 1 if m.group(2) else size
        end = min(end, size)
        if start >= size or start >= end:
            return None
        return start, end, 206

    def _serve(self, body):
        f = self._open()
        if f is None:
            self.send_error(404)
            self._log(404, 0)
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            r = self._range(size)
            if r is None:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                self._log(416, 0)
                return
            start, end, status = r
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
            self.end_headers()
            self.wfile.flush()
            if body and end > start:
                self.connection.sendfile(f, start, end - start)
            self._log(status, end - start if body else 0)

    def do_GET(self):
        self._serve(True)

    def do_HEAD(self):
        self._serve(False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    a = ap.parse_args()
    Handler.root = os.path.abspath(a.dir)
    if a.log:
        Handler.log = open(a.log, "a")
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    srv = ThreadingHTTPServer((a.bind, a.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    srv.server_close()


if __name__ == "__main__":
    main()
