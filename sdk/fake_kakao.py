#!/usr/bin/env python3
"""A tiny fake of Kakao's user API for the SDK checks (stdlib only).

    python3 fake_kakao.py [--port 0] [--app-id 1234] [--port-file FILE]

Listens on 127.0.0.1. `Authorization: Bearer u<N>` (N decimal) is a valid Kakao access token of
user N issued to app `--app-id`; anything else is answered the way Kakao answers an unknown token:
401 `{"msg": "this access token does not exist", "code": -401}`.

- GET /v1/user/access_token_info -> {"id": N, "expires_in": 7199, "app_id": APP_ID}
- GET /v2/user/me                -> {"id": N, "kakao_account": {"profile": {"nickname": "sdk"}}}

With --port 0 the OS picks a free port; it is printed as `listening on PORT` and, with
--port-file, written to that file once the socket is bound (so a script can wait for it).
"""

import argparse
import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = re.compile(r"^Bearer u([0-9]{1,19})$")
INVALID = {"msg": "this access token does not exist", "code": -401}


class Handler(BaseHTTPRequestHandler):
    app_id = 1234
    protocol_version = "HTTP/1.1"

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _user_id(self):
        m = TOKEN.match(self.headers.get("Authorization", "").strip())
        return int(m.group(1)) if m else None

    def _handle(self):
        path = self.path.split("?", 1)[0]
        if path == "/.well-known/jwks.json":
            # No signing keys: any id_token is then refused as invalid (400), as Kakao would.
            return self._send(200, {"keys": []})
        if path not in ("/v1/user/access_token_info", "/v2/user/me"):
            return self._send(404, {"msg": "not found", "code": -404})
        uid = self._user_id()
        if uid is None:
            return self._send(401, INVALID)
        if path == "/v1/user/access_token_info":
            return self._send(200, {"id": uid, "expires_in": 7199, "app_id": self.app_id})
        return self._send(200, {"id": uid, "kakao_account": {"profile": {"nickname": "sdk"}}})

    def do_GET(self):  # noqa: N802 (http.server naming)
        self._handle()

    def do_POST(self):  # noqa: N802 (Kakao accepts POST on /v2/user/me too)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._handle()

    def log_message(self, fmt, *args):  # quiet: the checks print their own summary
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--app-id", type=int, default=1234)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    Handler.app_id = args.app_id
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"listening on {port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
