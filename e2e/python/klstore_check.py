"""A klstore client in Python, written from the proto files alone.

Generates the Python modules from proto/klstore/v1 (and google.rpc's error details) with
grpcio-tools, then, against running services: checks health and reflection, asks a shard for
the shard list (GetShards) and sends appends to each key's owner by the hash of
docs/sharding.md, creates a keyspace, appends (Append and AppendSession) with 128-bit nonces,
reads a page and a stream, and reads the error details of a status and of an in-band error.
Prints one JSON object with what it stored, for the calling test to verify independently.
"""

import argparse
import hashlib
import json
import os
import struct
import sys
import tempfile
import types

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_tools import protoc


def generate(proto_root: str, rpc_root: str) -> str:
    out = tempfile.mkdtemp(prefix="klstore-py-")
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    files = [os.path.join("klstore/v1", f) for f in ("types.proto", "writer.proto", "reader.proto")]
    args = ["protoc", f"-I{proto_root}", f"--python_out={out}", f"--grpc_python_out={out}", *files]
    rpc = ["google/rpc/status.proto", "google/rpc/error_details.proto"]
    for argv in (args, ["protoc", f"-I{rpc_root}", f"-I{well_known}", f"--python_out={out}", *rpc]):
        if protoc.main(argv) != 0:
            raise SystemExit(f"protoc failed: {argv}")
    return out


SLOT_COUNT = 1024


def slot_of(keyspace: str, key: str) -> int:
    """docs/sharding.md: SHA-256 of the length-prefixed UTF-8 keyspace and key, as a u64, mod 1024."""
    message = b"".join(struct.pack(">I", len(s.encode())) + s.encode() for s in (keyspace, key))
    return int.from_bytes(hashlib.sha256(message).digest()[:8], "big") % SLOT_COUNT


def slot_score(shard: str, slot: int) -> int:
    """docs/sharding.md: the first 8 bytes, big-endian, of SHA-256(u32be(len) shard u32be(slot))."""
    message = struct.pack(">I", len(shard.encode())) + shard.encode() + struct.pack(">I", slot)
    return int.from_bytes(hashlib.sha256(message).digest()[:8], "big")


def owner_of(shards, keyspace: str, key: str):
    """The owner of the key's slot: the highest score; a tie goes to the name whose UTF-8 bytes sort first."""
    slot = slot_of(keyspace, key)
    return min(shards, key=lambda s: (-slot_score(s.name, slot), s.name.encode()))


def error_details(err: grpc.RpcError) -> dict:
    """The google.rpc details of a status (docs/errors.md), from its trailing metadata."""
    from google.rpc import error_details_pb2, status_pb2

    out = {}
    for name, value in err.trailing_metadata() or ():
        if name != "grpc-status-details-bin":
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                out["reason"], out["domain"], out["metadata"] = info.reason, info.domain, dict(info.metadata)
            elif detail.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
                resource = error_details_pb2.ResourceInfo()
                detail.Unpack(resource)
                out["resource"] = [resource.resource_type, resource.resource_name]
    return out


def u128(n: int):
    from klstore.v1 import types_pb2

    return types_pb2.Uint128(high=n >> 64, low=n & ((1 << 64) - 1))


def from_u128(m) -> int:
    return (m.high << 64) | m.low


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writer", required=True)
    parser.add_argument("--reader", required=True)
    parser.add_argument("--proto-root", required=True)
    parser.add_argument("--rpc-proto-root", required=True, help="holds google/rpc/*.proto")
    parser.add_argument("--keyspace", required=True)
    args = parser.parse_args()

    sys.path.insert(0, generate(args.proto_root, args.rpc_proto_root))
    from klstore.v1 import reader_pb2, reader_pb2_grpc, types_pb2, writer_pb2, writer_pb2_grpc

    writer_channel = grpc.insecure_channel(args.writer)
    reader_channel = grpc.insecure_channel(args.reader)
    report = {}

    # Health and reflection, as grpcurl and Kubernetes probes use them.
    for name, channel in (("writer", writer_channel), ("reader", reader_channel)):
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        report[f"{name}_health"] = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)
        report[f"{name}_reflected_services"] = sorted(ProtoReflectionDescriptorDatabase(channel).get_services())

    writer = writer_pb2_grpc.WriterServiceStub(writer_channel)
    reader = reader_pb2_grpc.ReaderServiceStub(reader_channel)

    created = writer.CreateKeyspace(
        writer_pb2.CreateKeyspaceRequest(keyspace=args.keyspace, compression=types_pb2.COMPRESSION_ZSTD), timeout=10
    )
    report["created_compression"] = types_pb2.Compression.Name(created.keyspace.compression)

    # Routing without configuration: the shard list from the one shard given, then each
    # append straight to its key's owner.
    listed = writer.GetShards(writer_pb2.GetShardsRequest(), timeout=10)
    report["shards"] = [{"name": s.name, "address": s.address} for s in listed.shards]
    report["this_shard"] = listed.this_shard
    owners = {}
    for i in range(8):
        key = f"routed-{i}"
        owner = owner_of(listed.shards, args.keyspace, key)
        owners[key] = owner.name
        stub = writer_pb2_grpc.WriterServiceStub(grpc.insecure_channel(owner.address))
        stub.Append(
            writer_pb2.AppendRequest(keyspace=args.keyspace, key=key, insertions=[types_pb2.Insertion(value=b"r")]),
            timeout=10,
        )
    report["owners"] = owners

    big = (1 << 100) + 7  # needs all 128 bits of the wire type
    appended = writer.Append(
        writer_pb2.AppendRequest(
            keyspace=args.keyspace,
            key="py-key",
            insertions=[
                types_pb2.Insertion(value=b"one", nonce=u128(big), timestamp_millis=1_700_000_000_000),
                types_pb2.Insertion(value=b"two", nonce=u128(big + 1)),
                types_pb2.Insertion(value=b"again", nonce=u128(big)),  # a duplicate: dropped
            ],
            ack_mode=writer_pb2.ACK_MODE_DURABLE,
        ),
        timeout=10,
    )
    report["append_outcomes"] = [
        {"offset": o.appended.offset} if o.WhichOneof("outcome") == "appended" else "duplicate"
        for o in appended.outcomes
    ]

    def session_requests():
        for i in range(3):
            yield writer_pb2.AppendSessionRequest(
                sequence=i,
                keyspace=args.keyspace if i != 1 else "no-such-keyspace",
                key="py-session",
                insertions=[types_pb2.Insertion(value=f"s{i}".encode())],
            )

    responses = list(writer.AppendSession(session_requests(), timeout=10))
    report["session"] = [
        {"sequence": r.sequence, "error": r.error.code if r.HasField("error") else None, "outcomes": len(r.outcomes)}
        for r in responses
    ]
    report["session_errors"] = [
        {"reason": r.error.reason, "metadata": dict(r.error.metadata)} for r in responses if r.HasField("error")
    ]

    page = reader.ReadPage(
        reader_pb2.ReadPageRequest(keyspace=args.keyspace, key="py-key", order=reader_pb2.ORDER_BACKWARDS), timeout=10
    )
    report["page"] = [
        {"offset": i.offset, "value": i.value.decode(), "nonce": str(from_u128(i.nonce)), "ts": i.timestamp_millis}
        for i in page.items
    ]
    stream = reader.ReadStream(
        reader_pb2.ReadStreamRequest(
            keyspace=args.keyspace, key="py-key", filter=reader_pb2.ItemFilter(start_nonce=u128(big + 1))
        ),
        timeout=10,
    )
    report["stream"] = [i.value.decode() for message in stream for i in message.items]

    try:
        reader.ReadPage(reader_pb2.ReadPageRequest(keyspace="no-such-keyspace", key="k"), timeout=10)
        report["missing_keyspace"] = "OK"
    except grpc.RpcError as err:
        report["missing_keyspace"] = err.code().name
        report["missing_keyspace_details"] = error_details(err)

    print(json.dumps(report))


if __name__ == "__main__":
    main()
