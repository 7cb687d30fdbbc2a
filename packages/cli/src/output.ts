// How items are printed: jsonl (one object per item; 64/128-bit numbers exact) or text.

import type { Item } from "@klstore/core";

export type OutputFormat = "jsonl" | "text";

const utf8 = new TextDecoder("utf-8", { fatal: true });

function valueField(value: Uint8Array): string {
  try {
    return `"value":${JSON.stringify(utf8.decode(value))}`;
  } catch {
    return `"value":${JSON.stringify(Buffer.from(value).toString("base64"))},"encoding":"base64"`;
  }
}

export function formatItem(item: Item, format: OutputFormat): string {
  if (format === "text") {
    return `${item.offset}\t${item.timestamp}\t${item.nonce ?? "-"}\t${Buffer.from(item.value).toString("utf8")}`;
  }
  const nonce = item.nonce === undefined ? "null" : `"${item.nonce}"`;
  return `{"offset":${item.offset},"timestamp":${item.timestamp},"nonce":${nonce},${valueField(item.value)}}`;
}
