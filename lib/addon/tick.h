/*
 * The engines' periodic work: a thread that calls each engine's tick hook
 * (addon_def.tick) in turn about every ADDON_TICK_MS (MIREN_ADDON_TICK_MS
 * overrides, >= 100), never two calls at once.  The hooks get a copy of
 * the daemon's addon_ctx whose stopping flag turns true at
 * addon_ticker_stop, which then waits for the call in progress.
 */
#ifndef MIREN_ADDON_TICK_H
#define MIREN_ADDON_TICK_H

#include "addon/addon.h"

#define ADDON_TICK_MS 10000

struct addon_ticker;
/* NULL when the thread cannot start (logged). */
struct addon_ticker *addon_ticker_start(const struct addon_ctx *ctx);
void addon_ticker_stop(struct addon_ticker *t);

#endif
