"""Counts visits in PostgreSQL, with nothing but the standard library and
psql: every request runs one psql against $DATABASE_URL, so the service
reconnects by itself after the database restarts."""
import http.server
import os
import subprocess

URL = os.environ["DATABASE_URL"]


def sql(query):
    out = subprocess.run(
        ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", URL, "-c", query],
        capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout.strip()


sql("CREATE TABLE IF NOT EXISTS visits ("
    " id SERIAL PRIMARY KEY, visited_at TIMESTAMPTZ NOT NULL DEFAULT NOW())")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            sql("INSERT INTO visits DEFAULT VALUES")
            body, status = "Visits: %s\n" % sql("SELECT COUNT(*) FROM visits"), 200
        except Exception as e:  # the database is restarting: say so
            body, status = "database unavailable: %s\n" % e, 503
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass


port = int(os.environ.get("PORT", "3000"))
print("listening on 127.0.0.1:%d" % port, flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
