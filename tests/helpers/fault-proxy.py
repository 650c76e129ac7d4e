#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A fault-injecting HTTP/1.1 proxy for tests (and, later, link emulation).

Forwards every request to --upstream (host:port, plain HTTP) and passes the
answer back, except where a fault matches "METHOD PATH":

  --fault KIND[:COUNT[:REGEX]]   KIND is an HTTP status (500, 503, 429 with
                                 Retry-After: 1, ...), "reset" (close without
                                 answering), "truncate" (headers, half the
                                 body, close), "stall" (headers, half the
                                 body, then silence), or "flip" (the whole
                                 answer, with the byte in the middle of the
                                 body xor 0xff), or "hold" (forwarded once
                                 --release FILE exists: a request held
                                 back). COUNT times (0 = always),
                                 default 1; REGEX default ".*".
  --ignore-range REGEX           drop the Range header: upstream answers 200
  --redirect-blobs               answer blob GETs with 307 to a second
                                 listener (a "storage backend") that serves
                                 them from upstream and logs whether it saw
                                 an Authorization header
  --rate BYTES                   send response bodies at about BYTES/s
  --release FILE                 a stall ends (the connection closes) once
                                 FILE exists, not after an hour, and a held
                                 request goes on: a test decides the order,
                                 not a clock
  --latency MS                   wait before forwarding each request

--log gets one line per request: "METHOD PATH STATUS auth=yes|no [fault]"
(a held request also one when it is held: "METHOD PATH - held");
the storage listener logs "storage GET PATH auth=yes|no".
"""
import argparse
import http.client
import http.server
import os
import re
import socket
import sys
import threading
import time
import urllib.parse

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--fault", action="append", default=[])
    ap.add_argument("--ignore-range", default=None)
    ap.add_argument("--redirect-blobs", action="store_true")
    ap.add_argument("--rate", type=int, default=0)
    ap.add_argument("--latency", type=int, default=0)
    ap.add_argument("--release", default=None)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()

    lock = threading.Lock()
    faults = []
    for f in a.fault:
        parts = f.split(":", 2)
        faults.append({"kind": parts[0], "left": int(parts[1]) if len(parts) > 1 else 1,
                       "always": len(parts) > 1 and parts[1] == "0",
                       "re": re.compile(parts[2] if len(parts) > 2 else ".*")})
    ignore_range = re.compile(a.ignore_range) if a.ignore_range else None

    def log(line):
        with lock:
            with open(a.log, "a") as f:
                f.write(line + "\n")

    def take_fault(what):
        with lock:
            for f in faults:
                if f["re"].search(what) and (f["always"] or f["left"] > 0):
                    if not f["always"]:
                        f["left"] -= 1
                    return f["kind"]
        return None

    storage_port = [0]
    presigned = {}  # nonce -> the Authorization of the redirected request

    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send_body(self, resp, length, fault):
            sent = 0
            half = length // 2 if length else 0
            t0 = time.monotonic()
            while True:
                want = 65536
                if fault in ("truncate", "stall") and length:
                    want = min(want, half - sent)
                    if want <= 0:
                        break
                chunk = resp.read(want)
                if not chunk:
                    break
                if fault == "flip" and sent <= half < sent + len(chunk):
                    b = bytearray(chunk)
                    b[half - sent] ^= 0xFF
                    chunk = bytes(b)
                self.wfile.write(chunk)
                sent += len(chunk)
                if a.rate:
                    ahead = sent / a.rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
            self.wfile.flush()
            if fault == "stall":
                end = time.monotonic() + 3600
                while time.monotonic() < end and not (a.release and os.path.exists(a.release)):
                    time.sleep(0.05)
            if fault in ("truncate", "stall"):
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def forward(self, storage=False):
            path = self.path
            if storage:
                path = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)["u"][0]
            what = "%s %s" % (self.command, path)
            auth = "yes" if self.headers.get("Authorization") else "no"
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if a.latency:
                time.sleep(a.latency / 1000)
            if storage:
                log("storage %s auth=%s" % (what, auth))
                fault = None
            else:
                fault = take_fault(what)
            if fault == "hold":
                log("%s - held" % what)
                end = time.monotonic() + 3600
                while time.monotonic() < end and not (a.release and os.path.exists(a.release)):
                    time.sleep(0.05)
            if fault == "reset":
                log("%s - auth=%s reset" % (what, auth))
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault and fault.isdigit():
                code = int(fault)
                log("%s %d auth=%s fault" % (what, code, auth))
                data = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if code in (429, 503):
                    self.send_header("Retry-After", "1")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                return
            if (not storage and a.redirect_blobs and self.command == "GET"
                    and re.search(r"/blobs/sha256:", path)):
                # Like a pre-signed URL: the storage side may use the
                # registry's credentials, the client must not send them.
                nonce = os.urandom(8).hex()
                with lock:
                    presigned[nonce] = self.headers.get("Authorization")
                loc = "http://127.0.0.1:%d/storage?u=%s&sig=%s" % (storage_port[0], urllib.parse.quote(path), nonce)
                log("%s 307 auth=%s redirect" % (what, auth))
                self.send_response(307)
                self.send_header("Location", loc)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            if storage:
                headers.pop("Authorization", None)
                headers["Host"] = a.upstream
                sig = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query).get("sig", [""])[0]
                with lock:
                    cred = presigned.get(sig)
                if cred:
                    headers["Authorization"] = cred
            if ignore_range and ignore_range.search(what):
                headers.pop("Range", None)
            up = http.client.HTTPConnection(a.upstream, timeout=60)
            try:
                up.request(self.command, path, body=body, headers=headers)
                resp = up.getresponse()
            except OSError as e:
                log("%s 502 auth=%s upstream %s" % (what, auth, e))
                self.send_error(502)
                return
            rlen = resp.getheader("Content-Length")
            data = None
            if rlen is None and self.command != "HEAD":
                data = resp.read()
                rlen = str(len(data))
            log("%s %d auth=%s%s" % (what, resp.status, auth, " " + fault if fault else ""))
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            if rlen is not None:
                self.send_header("Content-Length", rlen)
            self.end_headers()
            if self.command == "HEAD":
                up.close()
                return
            if data is not None:
                self.wfile.write(data)
            else:
                self.send_body(resp, int(rlen), fault)
            up.close()

        def do_GET(self):
            self.forward()

        do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

    class Storage(Proxy):
        def do_GET(self):
            self.forward(storage=True)

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

    srv = Server(("127.0.0.1", 0), Proxy)
    if a.redirect_blobs:
        st = Server(("127.0.0.1", 0), Storage)
        storage_port[0] = st.server_address[1]
        threading.Thread(target=st.serve_forever, daemon=True).start()
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    import signal
    signal.signal(signal.SIGTERM, lambda *x: os._exit(0))
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
