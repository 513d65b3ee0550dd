"""A real webhook receiver for the tests and the bench: `python webhook_receiver.py PORT LOG [DELAY]`.

One request at a time (no threads), each answered 200 after DELAY seconds; every request's
signature header and raw body are appended to LOG as one JSON line, flushed before the answer,
so that a receiver killed mid-request has logged only what it acknowledged.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    delay = 0.0
    log_file = None

    def do_POST(self) -> None:  # noqa: N802 - the standard library's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.delay:
            time.sleep(self.delay)
        line = json.dumps({"signature": self.headers.get("X-Xinyong-Signature"),
                           "body": base64.b64encode(body).decode()})
        self.log_file.write(line + "\n")
        self.log_file.flush()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def main() -> None:
    port, log, delay = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    threaded = len(sys.argv) > 4 and sys.argv[4] == "threaded"
    Handler.delay = delay
    Handler.log_file = open(log, "a", encoding="utf-8")  # noqa: SIM115 - open for the process's life
    server_class = ThreadingHTTPServer if threaded else HTTPServer
    server_class.allow_reuse_address = True
    server_class.request_queue_size = 256  # the default backlog of 5 resets concurrent connections
    server = server_class(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
