/*
 * toml_json.c: toml_to_tagged_json(), the toml-test "tagged JSON" encoding
 * of a parsed document (see toml.h).
 *
 * Tables become JSON objects with keys in document order, arrays become JSON
 * arrays, and every scalar becomes {"type": T, "value": "text"}: integers in
 * decimal, floats as the shortest text that reads back to the same double
 * ("inf", "-inf", "nan" for the special values), date/times as stored.
 * The output is compact JSON; the caller frees it.
 */
#include "toml/toml.h"

#include <inttypes.h>
#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rewrites the locale's decimal point (if not '.') in s to '.', in place. */
static void c_locale_point(char *s)
{
	const char *dp = localeconv()->decimal_point;
	if (!dp || !dp[0] || strcmp(dp, ".") == 0)
		return;
	size_t dplen = strlen(dp);
	char *hit = strstr(s, dp);
	if (!hit)
		return;
	*hit = '.';
	memmove(hit + 1, hit + dplen, strlen(hit + dplen) + 1);
}

/* The shortest %g text that reads back as d, with ".0" on integral values. */
static void format_float(double d, char *out, size_t cap)
{
	if (isnan(d)) {
		snprintf(out, cap, "nan");
		return;
	}
	if (isinf(d)) {
		snprintf(out, cap, "%s", d > 0 ? "inf" : "-inf");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, cap, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			break;
	}
	c_locale_point(out);
	if (!strpbrk(out, ".eE")) {
		size_t n = strlen(out);
		if (n + 2 < cap)
			memcpy(out + n, ".0", 3);
	}
}

static json_t *tagged(const char *type, const char *value, size_t len)
{
	json_t *obj = json_object();
	if (!obj)
		return NULL;
	if (json_object_set_new(obj, "type", json_string(type)) ||
	    json_object_set_new(obj, "value", json_stringn(value, len))) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static json_t *to_json(const struct toml_value *v)
{
	char buf[64];
	json_t *out = NULL;

	switch (v->type) {
	case TOML_STRING:
		return tagged("string", v->u.str.ptr, v->u.str.len);
	case TOML_INTEGER:
		snprintf(buf, sizeof(buf), "%" PRId64, v->u.integer);
		return tagged("integer", buf, strlen(buf));
	case TOML_FLOAT:
		format_float(v->u.flt, buf, sizeof(buf));
		return tagged("float", buf, strlen(buf));
	case TOML_BOOL:
		return tagged("bool", v->u.boolean ? "true" : "false", v->u.boolean ? 4 : 5);
	case TOML_DATETIME:
	case TOML_DATETIME_LOCAL:
	case TOML_DATE_LOCAL:
	case TOML_TIME_LOCAL:
		return tagged(toml_type_name(v->type), v->u.datetime, strlen(v->u.datetime));
	case TOML_ARRAY:
		out = json_array();
		if (!out)
			break;
		for (size_t i = 0; i < v->u.array.len; i++) {
			json_t *item = to_json(v->u.array.items[i]);
			if (!item || json_array_append_new(out, item)) {
				json_decref(out);
				out = NULL;
				break;
			}
		}
		break;
	case TOML_TABLE:
		out = json_object();
		if (!out)
			break;
		for (size_t i = 0; i < v->u.table.len; i++) {
			const struct toml_kv *kv = &v->u.table.items[i];
			json_t *item = to_json(kv->value);
			if (!item || json_object_setn_new(out, kv->key, kv->key_len, item)) {
				json_decref(out);
				out = NULL;
				break;
			}
		}
		break;
	}
	return out;
}

char *toml_to_tagged_json(const struct toml_value *root)
{
	char *s = NULL;
	json_t *j = root ? to_json(root) : NULL;
	if (!j)
		goto out;
	s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	json_decref(j);
out:
	return s;
}
