"""A minimal web service: answers every GET with a greeting and its env."""
import http.server
import os


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = "%s\nrelease %s of %s\n" % (
            os.environ.get("GREETING", "hello"),
            os.environ.get("MIREN_RELEASE", "?"),
            os.environ.get("MIREN_APP", "?"),
        )
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print("%s %s" % (self.address_string(), fmt % args), flush=True)


port = int(os.environ["PORT"])
print("listening on 127.0.0.1:%d" % port, flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
