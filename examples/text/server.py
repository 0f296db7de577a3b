#!/usr/bin/env python3
"""The text example service: functions in Python with only the standard library.

fnmesh's function protocol is plain HTTP: the sidecar beside this process sends
POST /{function} with the params as a JSON body and the call's metadata in headers
(x-fnmesh-claims: base64url JSON of the verified JWT claims; x-fnmesh-caller: the calling
service as namespace/service, for calls from another function). A 2xx JSON answer is the
result; a 4xx JSON {"error": ...} goes back to the caller with its status.
"""
import base64
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024


class BadInput(Exception):
    pass


def text_param(params):
    if not isinstance(params, dict):
        raise BadInput('params must be a JSON object such as {"text": "hello"}')
    text = params.get("text")
    if not isinstance(text, str):
        raise BadInput('params.text must be a string, e.g. {"text": "hello"}')
    return text


def upper(params, meta):
    return {"text": text_param(params).upper(), "caller": meta["caller"]}


def count(params, meta):
    text = text_param(params)
    return {"characters": len(text), "words": len(text.split()), "lines": len(text.splitlines()) if text else 0}


FUNCTIONS = {"upper": upper, "count": count}


def decode_claims(value):
    if not value:
        return None
    try:
        padded = value + "=" * (-len(value) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        return claims if isinstance(claims, dict) else None
    except (ValueError, UnicodeError):
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the sidecar reuses connections
    server_version = "fnmesh-text/0.1"

    def send_json(self, status, body):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.split("?")[0] == "/healthz":
            self.send_json(200, {"status": "ok"})
        else:
            self.send_json(404, {"error": "no such path: GET %s (functions are called with POST)" % self.path})

    def do_POST(self):
        name = self.path.split("?")[0].lstrip("/")
        try:
            length = int(self.headers.get("content-length") or "0")
        except ValueError:
            self.send_json(400, {"error": "content-length is not a number"})
            return
        if length > MAX_BODY:
            self.send_json(413, {"error": "the request body is larger than %d bytes" % MAX_BODY})
            self.close_connection = True
            return
        raw = self.rfile.read(length) if length > 0 else b""
        fn = FUNCTIONS.get(name)
        if fn is None:
            # Names no other function: through a "default" rule the answer may reach an anonymous caller.
            self.send_json(404, {"error": 'no function "%s" in this service: serve it here (and declare it in the manifest) or call another name' % name})
            return
        try:
            params = json.loads(raw.decode("utf-8")) if raw else None
        except (ValueError, UnicodeError) as err:
            self.send_json(400, {"error": "the request body is not valid JSON: %s" % err})
            return
        meta = {
            "claims": decode_claims(self.headers.get("x-fnmesh-claims")),
            "caller": self.headers.get("x-fnmesh-caller"),
            "request_id": self.headers.get("x-fnmesh-request-id"),
        }
        try:
            self.send_json(200, fn(params, meta))
        except BadInput as err:
            self.send_json(400, {"error": str(err)})
        except Exception as err:  # a bug in a function: 500, the mesh reports "function failed"
            sys.stderr.write("text: function %s failed: %r\n" % (name, err))
            self.send_json(500, {"error": "function %s failed" % name})

    def log_message(self, fmt, *args):
        if os.environ.get("TEXT_ACCESS_LOG"):
            sys.stderr.write("text: %s\n" % (fmt % args))


def main():
    port = int(os.environ.get("PORT") or os.environ.get("FNMESH_FUNCTION_PORT") or "8080")
    host = os.environ.get("HOST", "127.0.0.1")
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True

    def stop(_signum, _frame):
        # serve_forever must be stopped from another thread; in-flight requests finish
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("text serving upper, count on %s:%d" % (host, port), flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
