/*
 * libFuzzer target for the API's request parsing: the input is
 * "METHOD\nPATH\nBODY"; the path is split, the spool limit chosen, and the
 * body parsed, checking what each promises.
 */
#include "api/request.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	char *method = buf, *path = strchr(buf, '\n'), *body = NULL;
	if (path) {
		*path++ = '\0';
		body = strchr(path, '\n');
		if (body)
			*body++ = '\0';
	}
	if (path) {
		/* (The route table, api_spool_limit, needs the daemon's
		 * handlers: test_api covers its matching.) */
		(void)method;
		const char *parts[API_MAX_PARTS];
		int n = api_split_path(path, parts, API_MAX_PARTS);
		if (n > API_MAX_PARTS)
			abort();
		for (int i = 0; i < n; i++)
			if (!parts[i][0] || strchr(parts[i], '/'))
				abort();
	}
	if (body) {
		size_t len = size - (size_t)(body - buf);
		json_t *j = api_parse_body(body, len);
		if (j && !json_is_object(j))
			abort();
		json_decref(j);
	}
	free(buf);
	return 0;
}
