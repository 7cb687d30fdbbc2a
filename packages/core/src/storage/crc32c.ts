// CRC32C for the S3 client's checksums (computed for every PUT, verified on every GET), in
// native code (@node-rs/crc32: the CPU's CRC32C instructions, on the caller's buffers without
// copying). The SDK's default is plain JavaScript at about 100 MB/s, which made checksums the
// writer's bottleneck; WebAssembly reached about 1.8 GB/s; this runs at about 6 GB/s.

import { crc32c } from "@node-rs/crc32";

/** The SDK's Checksum interface (@smithy/types): update may be called many times, then digest. */
export class Crc32cChecksum {
  private state = 0;

  update(chunk: Uint8Array): void {
    if (chunk.byteLength > 0)
      this.state = crc32c(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength), this.state);
  }

  async digest(): Promise<Uint8Array> {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, this.state >>> 0, false);
    return out;
  }

  reset(): void {
    this.state = 0;
  }
}
