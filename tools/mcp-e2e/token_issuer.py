"""A throwaway OAuth token issuer for testing remote MCP on loopback.

It generates a fresh 2048-bit RSA key, serves the public half as a JWKS over plain http on
127.0.0.1 (a free port unless --port is given), signs the requested RS256 access tokens, and
then prints one JSON line:

    {"issuer": "http://127.0.0.1:PORT/issuer",
     "jwks_url": "http://127.0.0.1:PORT/issuer/jwks.json",
     "kid": "...", "tokens": {"NAME": "eyJ...", ...}}

It keeps serving the JWKS until it is terminated (SIGTERM or Ctrl-C). The gateway accepts such
an issuer only with `remote_mcp.allow_insecure_loopback_issuer: true`; never point a real
deployment at it. The key lives in memory only and dies with the process.

Each --token NAME SUB TTL SCOPES signs a token with `sub` SUB, `exp` TTL seconds from now (a
negative TTL gives a token that has already expired), and `scope` SCOPES (space-separated; pass
"" for none). Every token carries `iss`, `aud` (the --audience values), `iat`, `nbf` and a random
`jti`, and its header names the key by `kid`.

Usage: python token_issuer.py --audience https://127.0.0.1:8787/mcp \
           --token read agent-1 3600 "ibkr:health:read ibkr:accounts:read" [--out FILE]
"""

import argparse
import base64
import json
import os
import secrets
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER_PATH = "/issuer"


def b64url_uint(value):
    """Encodes a positive integer as unpadded base64url of its big-endian bytes (RFC 7518)."""
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_jwk(private_key, kid):
    numbers = private_key.public_key().public_numbers()
    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": b64url_uint(numbers.n), "e": b64url_uint(numbers.e)}


def sign(private_key, kid, issuer, audiences, subject, ttl_seconds, scope):
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audiences if len(audiences) > 1 else audiences[0],
        "sub": subject,
        "iat": now if ttl_seconds > 0 else now + ttl_seconds - 60,
        "nbf": now if ttl_seconds > 0 else now + ttl_seconds - 60,
        "exp": now + ttl_seconds,
        "jti": secrets.token_hex(16),
    }
    if scope:
        claims["scope"] = scope
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": kid})


def handler_for(documents):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the name http.server dispatches to)
            body = documents.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "max-age=300")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass  # stdout carries only the JSON line; requests are not worth logging

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audience", action="append", required=True,
                        help="an `aud` value; repeat for several (the first should be the resource)")
    parser.add_argument("--port", type=int, default=0, help="the port to listen on (default: a free one)")
    parser.add_argument("--token", nargs=4, action="append", default=[],
                        metavar=("NAME", "SUB", "TTL", "SCOPES"))
    parser.add_argument("--out", help="also write the JSON line to this file (atomically)")
    args = parser.parse_args()

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = "interop-" + secrets.token_hex(4)
    documents = {}  # path -> body; filled once the port (and so the issuer URL) is known
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(documents))
    port = server.server_address[1]
    issuer = f"http://127.0.0.1:{port}{ISSUER_PATH}"
    jwks_url = f"{issuer}/jwks.json"
    discovery = {
        "issuer": issuer,
        "jwks_uri": jwks_url,
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    documents[f"{ISSUER_PATH}/jwks.json"] = json.dumps({"keys": [public_jwk(private_key, kid)]}).encode()
    documents[f"{ISSUER_PATH}/.well-known/openid-configuration"] = json.dumps(discovery).encode()

    tokens = {}
    for name, subject, ttl, scope in args.token:
        tokens[name] = sign(private_key, kid, issuer, args.audience, subject, int(ttl), scope)
    line = json.dumps({"issuer": issuer, "jwks_url": jwks_url, "kid": kid, "tokens": tokens})

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    if args.out:
        partial = args.out + ".partial"
        with open(partial, "w", encoding="utf-8") as file:
            file.write(line + "\n")
        os.replace(partial, args.out)
    print(line, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
