"""A klstore client in Python, written from the proto files alone.

Generates the Python modules from proto/klstore/v1 with grpcio-tools, then, against running
services: checks health and reflection, creates a keyspace, appends (Append and
AppendSession) with 128-bit nonces, reads a page and a stream, and checks a status code.
Prints one JSON object with what it stored, for the calling test to verify independently.
"""

import argparse
import json
import os
import sys
import tempfile

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_tools import protoc


def generate(proto_root: str) -> str:
    out = tempfile.mkdtemp(prefix="klstore-py-")
    files = [os.path.join("klstore/v1", f) for f in ("types.proto", "writer.proto", "reader.proto")]
    args = ["protoc", f"-I{proto_root}", f"--python_out={out}", f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
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
    parser.add_argument("--keyspace", required=True)
    args = parser.parse_args()

    sys.path.insert(0, generate(args.proto_root))
    from klstore.v1 import reader_pb2, reader_pb2_grpc, types_pb2, writer_pb2, writer_pb2_grpc

    writer_channel = grpc.insecure_channel(args.writer)
    reader_channel = grpc.insecure_channel(args.reader)
    report = {}

    # Health and reflection, as grpcurl and Kubernetes probes use them.
    for name, channel in (("writer", writer_channel), ("reader", reader_channel)):
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        report[f"{name}_health"] = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)
    report["reflected_services"] = sorted(ProtoReflectionDescriptorDatabase(writer_channel).get_services())

    writer = writer_pb2_grpc.WriterServiceStub(writer_channel)
    reader = reader_pb2_grpc.ReaderServiceStub(reader_channel)

    created = writer.CreateKeyspace(
        writer_pb2.CreateKeyspaceRequest(keyspace=args.keyspace, compression=types_pb2.COMPRESSION_ZSTD), timeout=10
    )
    report["created_compression"] = types_pb2.Compression.Name(created.keyspace.compression)

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

    report["session"] = [
        {"sequence": r.sequence, "error": r.error.code if r.HasField("error") else None, "outcomes": len(r.outcomes)}
        for r in writer.AppendSession(session_requests(), timeout=10)
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

    print(json.dumps(report))


if __name__ == "__main__":
    main()
