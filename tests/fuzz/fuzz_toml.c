/*
 * libFuzzer target for the TOML parser: every input either parses (and then
 * encodes to tagged JSON and frees) or is rejected with a position and a
 * reason.  Build: see tests/fuzz/README.md.
 */
#include "toml/toml.h"
#include <stdlib.h>
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct toml_error err;
	struct toml_value *v = toml_parse((const char *)data, size, &err);
	if (v) {
		char *j = toml_to_tagged_json(v);
		if (!j)
			abort();
		free(j);
		toml_free(v);
	} else if (err.line < 1 || err.col < 1 || !err.reason[0]) {
		abort();
	}
	return 0;
}
