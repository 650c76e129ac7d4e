#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A TCP server on 127.0.0.1 that accepts connections and never answers
(a registry that hangs). Writes its port to --port-file; runs until killed."""
import argparse
import socket

ap = argparse.ArgumentParser()
ap.add_argument("--port-file", required=True)
a = ap.parse_args()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(64)
with open(a.port_file + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
import os
os.rename(a.port_file + ".tmp", a.port_file)
held = []
while True:
    c, _ = s.accept()
    held.append(c)  # kept open, never read from or written to
