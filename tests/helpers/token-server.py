#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small Bearer token service for tests (distribution docs/spec/auth/token.md).

GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...] with optional
Basic credentials answers {"token", "access_token", "expires_in", "issued_at"}.
The token is a JWT (RS256) signed with --key through `openssl dgst`, carrying
its certificate in the x5c header, so docker-registry's `auth: token:`
verifies it against rootcertbundle = --cert.

Grants: --user NAME:PASS:ACTIONS (ACTIONS "pull" or "pull,push"); anonymous
requests get --anonymous ACTIONS (default none). A requested action is
granted only if allowed. Wrong credentials: 401.

--jwt-lifetime is the JWT's own exp (now + lifetime; may be negative, as the
registry allows 60 s of skew); --expires-in what the answer claims (lie about
it to make the registry refuse a token the client still trusts).
Every issued token is appended to --log as "token SCOPES TOKEN" lines.
"""
import argparse
import base64
import datetime
import http.server
import json
import os
import subprocess
import sys
import time
import urllib.parse


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--issuer", default="hocus-test-issuer")
    ap.add_argument("--user", action="append", default=[])
    ap.add_argument("--anonymous", default="")
    ap.add_argument("--jwt-lifetime", type=int, default=300)
    ap.add_argument("--expires-in", type=int, default=None)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()

    der = subprocess.run(["openssl", "x509", "-in", a.cert, "-outform", "DER"],
                         check=True, capture_output=True).stdout
    header = b64url(json.dumps({"typ": "JWT", "alg": "RS256",
                                "x5c": [base64.b64encode(der).decode()]}).encode())
    users = {}
    for u in a.user:
        name, pw, actions = u.split(":", 2)
        users[name] = (pw, set(actions.split(",")))

    def sign(payload):
        signing_input = header + "." + b64url(json.dumps(payload).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", a.key],
                             input=signing_input.encode(), check=True,
                             capture_output=True).stdout
        return signing_input + "." + b64url(sig)

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, code, body, extra=None):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            if url.path != "/token":
                return self.reply(404, {"error": "not found"})
            q = urllib.parse.parse_qs(url.query)
            allowed = set(a.anonymous.split(",")) if a.anonymous else set()
            who = "anonymous"
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                try:
                    name, pw = base64.b64decode(auth[6:]).decode().split(":", 1)
                except Exception:
                    return self.reply(400, {"error": "bad authorization"})
                if name not in users or users[name][0] != pw:
                    with open(a.log, "a") as f:
                        f.write("refused %s\n" % name)
                    return self.reply(401, {"error": "invalid credentials"},
                                      {"WWW-Authenticate": 'Basic realm="token"'})
                who, allowed = name, users[name][1]
            access = []
            scopes = []
            for s in q.get("scope", []):
                for one in s.split(" "):
                    parts = one.split(":")
                    if len(parts) != 3 or parts[0] != "repository":
                        continue
                    acts = [x for x in parts[2].split(",") if x in allowed]
                    scopes.append(one)
                    access.append({"type": "repository", "name": parts[1], "actions": acts})
            now = int(time.time())
            tok = sign({"iss": a.issuer, "sub": who, "aud": q.get("service", [""])[0],
                        "exp": now + a.jwt_lifetime, "nbf": now - 1, "iat": now,
                        "jti": b64url(os.urandom(12)), "access": access})
            with open(a.log, "a") as f:
                f.write("token %s %s %s\n" % (who, " ".join(scopes) or "-", tok))
            expires = a.expires_in if a.expires_in is not None else max(a.jwt_lifetime, 1)
            issued = datetime.datetime.utcfromtimestamp(now).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.reply(200, {"token": tok, "access_token": tok, "expires_in": expires,
                             "issued_at": issued})

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
