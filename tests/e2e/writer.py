#!/usr/bin/python3
"""A client inserting rows continuously with an app's env (the variant
change tests and bench/variant-change run it as the app's service).

    writer.py pg|mysql [SECONDS]

Connects with DATABASE_URL (postgres://... or mysql://...), makes table `load` (id serial primary key, i bigint, at) if it
is missing, then inserts i = 1, 2, ... one committed transaction each.
Prints one line per insert to stdout, flushed:

    ok I MS        the insert of I returned success (MS: wall clock, ms)
    fail I MS WHY  it did not (the same I is tried again)

On a failure it reconnects (after 10 ms); with WRITER_APP and WRITER_MIREN
set (an app's name, the miren binary) it first reads the app's env again
from the daemon, as a client that follows the env does (the bench).
SIGTERM ends it after the insert in progress.  With SECONDS it stops by
itself after that long.
"""
import os
import signal
import subprocess
import sys
import time

stop = False


def on_term(*_):
    global stop
    stop = True


def now_ms():
    return int(time.time() * 1000)


def reread_env():
    app, miren = os.environ.get("WRITER_APP"), os.environ.get("WRITER_MIREN")
    if not app or not miren:
        return
    p = subprocess.run([miren, "env", "get", "-a", app, "DATABASE_URL", "--unmask"],
                       capture_output=True, text=True, timeout=10)
    if p.returncode == 0:
        os.environ["DATABASE_URL"] = p.stdout.strip()


def connect(engine):
    if engine == "pg":
        import psycopg2
        c = psycopg2.connect(os.environ["DATABASE_URL"], connect_timeout=5)
        c.autocommit = True
        cur = c.cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS load (id bigserial PRIMARY KEY,"
                    " i bigint NOT NULL, at timestamptz NOT NULL DEFAULT now())")
        return c, "INSERT INTO load (i) VALUES (%s)"
    import pymysql
    from urllib.parse import unquote, urlsplit
    u = urlsplit(os.environ["DATABASE_URL"])
    c = pymysql.connect(host=u.hostname, port=u.port or 3306, user=unquote(u.username),
                        password=unquote(u.password), database=u.path.lstrip("/"),
                        connect_timeout=5, autocommit=True)
    cur = c.cursor()
    cur.execute("CREATE TABLE IF NOT EXISTS `load` (id bigint AUTO_INCREMENT PRIMARY KEY,"
                " i bigint NOT NULL, at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))"
                " ENGINE=InnoDB")
    return c, "INSERT INTO `load` (i) VALUES (%s)"


def main():
    engine = sys.argv[1]
    until = time.time() + float(sys.argv[2]) if len(sys.argv) > 2 else None
    signal.signal(signal.SIGTERM, on_term)
    conn, sql = None, None
    i = 1
    # Continue the numbering of an earlier run (a restart) from the table.
    while not stop and (until is None or time.time() < until):
        try:
            if conn is None:
                conn, sql = connect(engine)
                cur = conn.cursor()
                cur.execute("SELECT coalesce(max(i), 0) FROM load" if engine == "pg"
                            else "SELECT coalesce(max(i), 0) FROM `load`")
                i = max(i, int(cur.fetchone()[0]) + 1)
            conn.cursor().execute(sql, (i,))
            print("ok %d %d" % (i, now_ms()), flush=True)
            i += 1
        except Exception as e:  # noqa: BLE001 (any failure is a refusal)
            why = " ".join(str(e).split())[:200]
            print("fail %d %d %s" % (i, now_ms(), why), flush=True)
            try:
                if conn is not None:
                    conn.close()
            except Exception:  # noqa: BLE001
                pass
            conn = None
            time.sleep(0.01)
            reread_env()
    if conn is not None:
        conn.close()


main()
