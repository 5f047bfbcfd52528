#!/usr/bin/env python3
"""A stand-in service for scripts/check-edge.sh: answers every request with
200 and a small JSON body, on each 127.0.0.1:PORT given (HTTP/1.1 with
Content-Length, so nginx's upstream keepalive works).

    upstream.py PORT [PORT...]
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"stub": True, "port": self.server.server_port, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = answer

    def log_message(self, *args):
        pass


def main():
    servers = [ThreadingHTTPServer(("127.0.0.1", int(p)), Handler) for p in sys.argv[1:]]
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("upstream stub listening on %s" % ", ".join("127.0.0.1:%d" % s.server_port for s in servers), flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
