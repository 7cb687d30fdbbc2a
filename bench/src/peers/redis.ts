// Redis Streams (Debian's redis-server, appendonly with fsync every second): XADD
// pipelined, and XRANGE / XREVRANGE to read back.

import { createClient } from "redis";
import { payload, pool, type Throughput, throughput } from "../measure.ts";

export async function redisAdd(
  url: string,
  prefix: string,
  keys: number,
  items: number,
  size: number,
): Promise<Throughput> {
  const client = await createClient({ url }).connect();
  const batch = 1000;
  const result = await throughput("Redis Streams XADD (pipelined)", items, items * size, () =>
    pool(Math.ceil(items / batch), 4, async (b) => {
      const n = Math.min(batch, items - b * batch);
      // node-redis pipelines the commands of one tick into one write.
      await Promise.all(
        Array.from({ length: n }, (_, j) => {
          const i = b * batch + j;
          return client.xAdd(`${prefix}:${i % keys}`, "*", { v: payload(size, i).toString("latin1") });
        }),
      );
    }),
  );
  await client.quit();
  return result;
}

export async function redisRange(
  url: string,
  stream: string,
  items: number,
  size: number,
  order: "forwards" | "backwards",
): Promise<Throughput> {
  const client = await createClient({ url }).connect();
  const page = 1000;
  const name = order === "forwards" ? "Redis XRANGE" : "Redis XREVRANGE";
  const result = await throughput(name, items, items * size, async () => {
    let seen = 0;
    let cursor = order === "forwards" ? "-" : "+";
    while (seen < items) {
      const entries =
        order === "forwards"
          ? await client.xRange(stream, cursor, "+", { COUNT: page })
          : await client.xRevRange(stream, cursor, "-", { COUNT: page });
      if (!entries || entries.length === 0) break;
      seen += entries.length;
      const last = (entries.at(-1) as { id: string }).id;
      cursor = `(${last}`;
    }
  });
  await client.quit();
  return result;
}
