/*
 * What the registry offers beyond addon.h: only for tests.
 */
#ifndef MIREN_ADDON_REGISTRY_H
#define MIREN_ADDON_REGISTRY_H

#include "addon/addon.h"

/* Tests only: makes addon_all() and addon_find() see defs (sorted by name,
 * NULL-terminated, owned by the caller and kept alive while in use)
 * instead of the engines of this build; NULL puts the engines back.  Not
 * thread-safe against concurrent lookups. */
void addon_registry_override(const struct addon_def *const *defs);

#endif
