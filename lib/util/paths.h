/*
 * Where things live by default, shared by the daemon and the CLI.
 */
#ifndef MIREN_PATHS_H
#define MIREN_PATHS_H

/* MIREN_DATA_DIR if set; else /var/lib/miren as root; else
 * $XDG_DATA_HOME/miren (~/.local/share/miren).  Caller frees. */
char *paths_data_dir(void);
/* --socket value if given, else MIREN_SOCKET, else <data dir>/miren.sock. */
char *paths_socket(const char *explicit_socket);

#endif
