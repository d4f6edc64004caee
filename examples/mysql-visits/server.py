"""Counts visits in MySQL (miren-mysql: MariaDB, MySQL-compatible) with
PyMySQL, the driver Debian packages as python3-pymysql.  It reads the one
variable the addon injects, DATABASE_URL (mysql://user:pass@host:3306/db),
and connects per request, so it carries on by itself after the database
restarts."""
import http.server
import os
import urllib.parse

import pymysql

URL = urllib.parse.urlsplit(os.environ["DATABASE_URL"])


def connect():
    return pymysql.connect(
        host=URL.hostname, port=URL.port or 3306,
        user=urllib.parse.unquote(URL.username),
        password=urllib.parse.unquote(URL.password),
        database=URL.path.lstrip("/"), connect_timeout=5, autocommit=True)


with connect() as db, db.cursor() as cur:
    cur.execute("CREATE TABLE IF NOT EXISTS visits ("
                " id BIGINT AUTO_INCREMENT PRIMARY KEY,"
                " visited_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
                " ENGINE=InnoDB")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            with connect() as db, db.cursor() as cur:
                cur.execute("INSERT INTO visits () VALUES ()")
                cur.execute("SELECT COUNT(*) FROM visits")
                body, status = "Visits: %d\n" % cur.fetchone()[0], 200
        except pymysql.MySQLError as e:  # the database is restarting: say so
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
