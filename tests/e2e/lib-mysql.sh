# shellcheck shell=bash
# Helpers of the miren-mysql end-to-end tests (sourced after lib.sh).
#
#   write_mysql_app NAME VARIANT   $TMP/NAME/.miren/app.toml with a sleeping
#                                  service and a miren-mysql addon
#   mysql_as APP [mariadb args]    the MariaDB client as the app's user, on
#                                  the app's database (its unmasked env);
#                                  -N -B: bare tab-separated rows
#   mysql_with HOST USER PASSWORD [args]   the same with explicit credentials
#   mariadbd_pid DISK              the server's pid (its pid file), or empty

write_mysql_app() {
  mkdir -p "$TMP/$1/.miren"
  cat > "$TMP/$1/.miren/app.toml" <<TOML
name = "$1"
[services.web]
command = "test -n \"\$DATABASE_URL\" || exit 1; exec sleep 100000"
[addons.miren-mysql]
variant = "$2"
TOML
}

# The password goes through MYSQL_PWD, never the command line.
mysql_with() {
  local host=$1 user=$2 pw=$3; shift 3
  MYSQL_PWD="$pw" mariadb --no-defaults --connect-timeout=5 -h "$host" -P 3306 -u "$user" -N -B "$@"
}

mysql_as() {
  local app=$1; shift
  mysql_with "$(miren env get -a "$app" MYSQL_HOST)" "$(miren env get -a "$app" MYSQL_USER)" \
    "$(miren env get -a "$app" MYSQL_PASSWORD --unmask)" \
    -D "$(miren env get -a "$app" MYSQL_DATABASE)" "$@"
}

# The run directory of the server of disk $1 (mariadb_run_dir in
# lib/addon/mysql/mariadb_files.c: 16 hex of the SHA-256 of the disk's path).
mariadb_run_dir_of() {
  local base=/run/miren-mysql
  [ "$(id -u)" = 0 ] || base=/tmp/miren-mysql-$(id -u)
  echo "$base/$(printf '%s' "$DATA/disks/$1" | sha256sum | cut -c1-16)"
}

mariadbd_pid() { head -n 1 "$(mariadb_run_dir_of "$1")/mysqld.pid" 2>/dev/null; }

# How many mariadbd processes serve disk $1.
mariadbd_count() { pgrep -f -- "--datadir=$DATA/disks/$1/data" | wc -l; }
