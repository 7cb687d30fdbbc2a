// Entry point of a piscina worker thread: runs a codec task and transfers the result back
// (its ArrayBuffer moves to the main thread instead of being copied).

import { move } from "piscina";
import { type EncodeTask, encodeBatch, type MergeTask, mergeObjects } from "./codec-tasks.ts";

export function encode(task: EncodeTask) {
  const out = encodeBatch(task);
  return move(out as Uint8Array<ArrayBuffer>);
}

export function merge(task: MergeTask) {
  const out = mergeObjects(task);
  return move(out as Uint8Array<ArrayBuffer>);
}
