/*
 * The store's enums and their words (see store.h).  The words here and
 * the lists in migration 4's triggers (store.c) are the same sets;
 * tests/unit/test_store.c checks every word is accepted and others not.
 */
#include "store/store.h"

#include <string.h>

static const char *const addon_status_words[] = { "pending", "provisioning", "active", "error",
						  "deprovisioning" };
static const char *const addon_source_words[] = { "config", "cli" };
static const char *const server_kind_words[] = { "small", "shared" };
static const char *const disk_status_words[] = { "in use", "unused", "deleting" };
static const char *const env_source_words[] = { "config", "manual", "addon" };

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *word(const char *const *words, size_t n, int v)
{
	return v >= 0 && (size_t)v < n ? words[v] : "unknown";
}

static int parse(const char *const *words, size_t n, const char *name)
{
	for (size_t i = 0; name && i < n; i++)
		if (!strcmp(words[i], name))
			return (int)i;
	return -1;
}

const char *addon_status_name(enum addon_status s)
{
	return word(addon_status_words, N(addon_status_words), (int)s);
}

int addon_status_parse(const char *name)
{
	return parse(addon_status_words, N(addon_status_words), name);
}

const char *addon_source_name(enum addon_source s)
{
	return word(addon_source_words, N(addon_source_words), (int)s);
}

int addon_source_parse(const char *name)
{
	return parse(addon_source_words, N(addon_source_words), name);
}

const char *server_kind_name(enum server_kind k)
{
	return word(server_kind_words, N(server_kind_words), (int)k);
}

int server_kind_parse(const char *name)
{
	return parse(server_kind_words, N(server_kind_words), name);
}

const char *disk_status_name(enum disk_status s)
{
	return word(disk_status_words, N(disk_status_words), (int)s);
}

int disk_status_parse(const char *name)
{
	return parse(disk_status_words, N(disk_status_words), name);
}

const char *env_source_name(enum env_source s)
{
	return word(env_source_words, N(env_source_words), (int)s);
}

int env_source_parse(const char *name)
{
	return parse(env_source_words, N(env_source_words), name);
}
