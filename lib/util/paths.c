/* Default locations; see paths.h. */
#include "util/paths.h"
#include "util/err.h"
#include "util/fs.h"

#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

char *paths_data_dir(void)
{
	const char *env = getenv("MIREN_DATA_DIR");
	if (env && *env)
		return xstrdup(env);
	if (geteuid() == 0)
		return xstrdup("/var/lib/miren");
	const char *xdg = getenv("XDG_DATA_HOME");
	if (xdg && *xdg)
		return fs_join(xdg, "miren");
	const char *home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(geteuid());
		home = pw ? pw->pw_dir : "/tmp";
	}
	return xasprintf("%s/.local/share/miren", home);
}

char *paths_socket(const char *explicit_socket)
{
	if (explicit_socket && *explicit_socket)
		return xstrdup(explicit_socket);
	const char *env = getenv("MIREN_SOCKET");
	if (env && *env)
		return xstrdup(env);
	char *dir = paths_data_dir();
	char *s = fs_join(dir, "miren.sock");
	free(dir);
	return s;
}
