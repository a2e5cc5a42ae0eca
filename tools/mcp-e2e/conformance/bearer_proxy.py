"""A loopback-only HTTP proxy that adds `Authorization: Bearer <token>` to every request.

The MCP conformance suite cannot send an Authorization header, and the gateway's HTTP endpoint
refuses every request without a valid bearer token. This proxy sits between them: it listens on
127.0.0.1, replaces any Authorization header with the configured token, and forwards the request
to one upstream origin on loopback. Everything else passes unchanged, the Host and Origin
headers included, so the gateway still judges the client's own values (the suite's
DNS-rebinding scenario depends on that). Responses, event streams included, are relayed as they
arrive.

It is a test tool: one token, no TLS, no pooling, and it refuses to listen or forward anywhere
but loopback.

Usage: python bearer_proxy.py --upstream http://127.0.0.1:PORT --token-file FILE [--port N]
       (FILE holds the token on its first line; the proxy prints `listening PORT` once ready)
"""

import argparse
import http.client
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Headers that describe one connection, not the message (RFC 9110 section 7.6.1).
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
              "upgrade", "proxy-authorization", "proxy-authenticate"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
UPSTREAM_TIMEOUT_SECONDS = 120


def handler_for(upstream_host, upstream_port, token):
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0 towards the client: each response ends by closing the connection, so a
        # relayed event stream needs no re-framing.
        protocol_version = "HTTP/1.0"

        def forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {name: value for name, value in self.headers.items()
                       if name.lower() not in HOP_BY_HOP and name.lower() != "authorization"}
            headers["Authorization"] = f"Bearer {token}"
            upstream = http.client.HTTPConnection(upstream_host, upstream_port,
                                                  timeout=UPSTREAM_TIMEOUT_SECONDS)
            started = False
            try:
                # The client's Host header is in `headers`, so http.client sends it as is.
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                self.send_response_only(response.status, response.reason)
                started = True
                for name, value in response.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Connection", "close")
                self.end_headers()
                while True:
                    chunk = response.read1(65536)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except (OSError, http.client.HTTPException) as error:
                if not started:  # after the status line, closing is the only signal left
                    self.send_error(502, f"upstream failed: {type(error).__name__}")
            finally:
                upstream.close()

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = forward

        def log_message(self, *_args):
            pass  # the conformance report is the output that matters

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of the gateway")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    upstream = urlsplit(args.upstream)
    if upstream.scheme != "http" or upstream.hostname not in LOOPBACK_HOSTS or upstream.port is None:
        parser.error("--upstream must be http://<loopback address>:<port>")
    with open(args.token_file, encoding="utf-8") as file:
        token = file.readline().strip()
    if not token:
        parser.error("the token file is empty")
    server = ThreadingHTTPServer(("127.0.0.1", args.port),
                                 handler_for(upstream.hostname, upstream.port, token))
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
