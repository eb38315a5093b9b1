#!/usr/bin/env python3
"""An HTTP bucket for the tests, on 127.0.0.1, that misbehaves on purpose.

GET of a file returns it, GET of a folder a JSON listing as nginx's
autoindex_format json writes it, PUT stores the body (folders created).
Modes:
  plain    just that
  flaky    the first two requests of each (method, path) answer 500
  drop     the first PUT reads a few bytes of the body and drops the connection
  deny     every request answers 403
  capture  every request's line, headers and body sha256 appended to --capture
           as a JSON line, then served as plain
  stall    accepts, reads the request and never answers
  badetag  answers a PUT with an ETag that is not the MD5 of the body
  endless  GET of a file other than a manifest: a body that never ends
  trickle  GET of a file other than a manifest: 5 bytes a second
  redirect every GET answers 302 elsewhere, with the file's bytes as the body
usage: bucket_server.py --dir DIR --port-file FILE [--mode M] [--capture FILE]
"""
import argparse, hashlib, http.server, json, os, socket, threading, urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--dir", required=True)
ap.add_argument("--port-file", required=True)
ap.add_argument("--mode", default="plain")
ap.add_argument("--capture")
a = ap.parse_args()
lock = threading.Lock()
seen = {}
dropped = [False]


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def path_on_disk(self):
        p = urllib.parse.unquote(self.path.split("?", 1)[0])
        parts = [x for x in p.split("/") if x]
        if any(x in ("..", ".") for x in parts):
            return None
        return os.path.join(a.dir, *parts)

    def answer(self, code, body=b"", ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if code == 200 and body:
            self.send_header("ETag", '"%s"' % hashlib.md5(body).hexdigest())
        self.end_headers()
        self.wfile.write(body)

    def misbehave(self):
        if a.mode == "stall":
            threading.Event().wait(3600)
            return True
        if a.mode == "deny":
            self.answer(403, b'{"error": "denied"}')
            return True
        if a.mode == "flaky":
            with lock:
                k = (self.command, self.path)
                seen[k] = seen.get(k, 0) + 1
                n = seen[k]
            if n <= 2:
                self.answer(500, b'{"error": "try again"}')
                return True
        return False

    def do_GET(self):
        if a.mode == "capture":
            self.record(b"")
        if self.misbehave():
            return
        p = self.path_on_disk()
        if p is None:
            return self.answer(400)
        if os.path.isdir(p):
            items = [{"name": n, "type": "directory" if os.path.isdir(os.path.join(p, n)) else "file"}
                     for n in sorted(os.listdir(p))]
            return self.answer(200, json.dumps(items).encode())
        if not os.path.isfile(p):
            return self.answer(404, b'{"error": "not found"}')
        with open(p, "rb") as f:
            body = f.read()
        if a.mode == "redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return self.wfile.write(body)
        if a.mode in ("endless", "trickle") and not p.endswith("manifest.json"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if a.mode == "trickle":
                self.send_header("Content-Length", str(len(body)))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            try:
                if a.mode == "trickle":
                    for i in range(0, len(body), 5):
                        self.wfile.write(body[i:i + 5])
                        self.wfile.flush()
                        threading.Event().wait(1)
                else:
                    chunk = b" " * 65536
                    for _ in range(1 << 16):  # 4 GiB at most, then it stops by itself
                        self.wfile.write(chunk)
            except OSError:
                pass
            return
        self.answer(200, body)

    def do_PUT(self):
        n = int(self.headers.get("Content-Length", "0"))
        if a.mode == "drop":
            with lock:
                first = not dropped[0]
                dropped[0] = True
            if first:
                self.rfile.read(min(n, 10))
                self.connection.shutdown(socket.SHUT_RDWR)
                self.connection.close()
                self.close_connection = True
                return
        body = self.rfile.read(n)
        if a.mode == "capture":
            self.record(body)
        if self.misbehave():
            return
        p = self.path_on_disk()
        if p is None:
            return self.answer(400)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(body)
        # as S3 does: the ETag of a stored object is its MD5 (badetag: not)
        md5 = hashlib.md5(body + (b"x" if a.mode == "badetag" else b"")).hexdigest()
        self.send_response(200)
        self.send_header("ETag", '"%s"' % md5)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def record(self, body):
        with lock, open(a.capture, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                                "body_sha256": hashlib.sha256(body).hexdigest()}) + "\n")


s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(a.port_file + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(a.port_file + ".tmp", a.port_file)
s.serve_forever()
