/* Request parsing; see request.h. */
#include "api/request.h"
#include "api/routes.h"
#include "util/err.h"
#include "util/text.h"

#include <stdlib.h>
#include <string.h>

int api_split_path(char *url, const char **parts, int max)
{
	if (strncmp(url, "/v1/", 4) != 0)
		return -1;
	int n = 0;
	for (char *tok, *save = NULL, *s = url + 4; (tok = strtok_r(s, "/", &save)); s = NULL) {
		if (n == max)
			return -1;
		parts[n++] = tok;
	}
	return n;
}

size_t api_unescape(char *s)
{
	char *w = s;
	for (const char *r = s; *r;) {
		int hi = r[0] == '%' ? text_hex_value((unsigned char)r[1]) : -1,
		    lo = hi >= 0 ? text_hex_value((unsigned char)r[2]) : -1;
		int b = lo >= 0 ? hi * 16 + lo : -1;
		if (b >= 0x20 && b != 0x7f) {
			*w++ = (char)b;
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

json_t *api_parse_body(const char *buf, size_t len)
{
	json_error_t jerr;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}
