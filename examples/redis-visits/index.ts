// Counts visits in Redis: one INCR per request.  REDIS_URL and, on the
// shared variant, REDIS_PREFIX (every key must start with it) are injected
// by the miren-redis addon.
import { RedisClient } from "bun";

const redis = new RedisClient(process.env.REDIS_URL);
const key = `${process.env.REDIS_PREFIX ?? ""}visits`;

Bun.serve({
  port: process.env.PORT || 3000,
  async fetch() {
    const count = await redis.incr(key);
    return new Response(`Visits: ${count}\n`);
  },
});
