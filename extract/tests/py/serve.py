#!/usr/bin/env python3
"""A local HTTP server for the download tests, on 127.0.0.1.

    serve.py DIR

Prints its port on the first line of stdout, then serves until killed:
  /NAME              the file DIR/NAME (404 when there is none)
  /redirect/NAME     302 to /NAME
  /truncated/NAME    announces NAME's full length, sends half, closes
"""
import http.server
import os
import sys


def handler(root):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            parts = self.path.strip("/").split("/")
            if len(parts) == 2 and parts[0] == "redirect":
                self.send_response(302)
                self.send_header("Location", "/" + parts[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            truncated = len(parts) == 2 and parts[0] == "truncated"
            name = parts[-1] if truncated or len(parts) == 1 else None
            path = os.path.join(root, name) if name else None
            if not path or not os.path.isfile(path):
                self.send_error(404, "Not Found")
                return
            data = open(path, "rb").read()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if truncated else data)
            self.wfile.flush()
            if truncated:
                self.close_connection = True

        def log_message(self, *args):
            pass

    return Handler


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler(sys.argv[1]))
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
