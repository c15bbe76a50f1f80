"""An independent StoreAPI client for the `promlake store` tests.

Generates Python gRPC stubs from promlake's .proto files with grpc_tools.protoc into a
temporary directory, then calls the server the way a Thanos querier would, decoding the XOR
chunks itself. Prints one JSON document on stdout.

usage: store_client.py PROTO_DIR ADDRESS full|partition
"""

import importlib.resources
import json
import os
import sys
import tempfile

import grpc
from grpc_tools import protoc

PROTOS = ["thanos/labels.proto", "thanos/types.proto", "thanos/store.proto", "thanos/info.proto",
          "prometheus/types.proto", "hintspb/hints.proto"]


def generate(proto_dir, out):
    wkt = str(importlib.resources.files("grpc_tools") / "_proto")
    for p in PROTOS:
        rc = protoc.main(["protoc", f"-I{proto_dir}", f"-I{wkt}", f"--python_out={out}",
                          f"--grpc_python_out={out}", p])
        if rc != 0:
            raise SystemExit(f"protoc failed on {p}")
    sys.path.insert(0, out)


class Bits:
    """Reads bits MSB-first, as Prometheus's bstreamReader."""

    def __init__(self, data, byte_pos):
        self.data, self.pos = data, byte_pos * 8

    def bit(self):
        b = (self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return b

    def bits(self, n):
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bit()
        return v

    def uvarint(self):
        x, s = 0, 0
        while True:
            b = self.bits(8)
            x |= (b & 0x7F) << s
            if b < 0x80:
                return x
            s += 7


def decode_xor(data):
    """Samples of an XOR chunk as (timestamp ms, value bits)."""
    n = int.from_bytes(data[0:2], "big")
    if n == 0:
        return []
    r = Bits(data, 2)
    u = r.uvarint()
    t = (u >> 1) ^ -(u & 1)  # zigzag
    v = r.bits(64)
    out = [(t, v)]
    leading, trailing, tdelta = 0, 0, 0

    def value(v):
        nonlocal leading, trailing
        if r.bit() == 0:
            return v
        if r.bit() == 1:
            leading = r.bits(5)
            sig = r.bits(6) or 64
            trailing = 64 - leading - sig
        return v ^ (r.bits(64 - leading - trailing) << trailing)

    for i in range(1, n):
        if i == 1:
            tdelta = r.uvarint()
        else:
            d = 0
            for _ in range(4):
                d <<= 1
                if r.bit() == 0:
                    break
                d |= 1
            size = {0: 0, 0b10: 14, 0b110: 17, 0b1110: 20, 0b1111: 64}[d]
            dod = 0
            if size:
                dod = r.bits(size)
                if size == 64:
                    dod = dod - (1 << 64) if dod >= 1 << 63 else dod
                elif dod > (1 << (size - 1)):
                    dod -= 1 << size
            tdelta += dod
        t += tdelta
        v = value(v)
        out.append((t, v))
    return out


def xxh64(data):
    """xxHash64 with seed 0 (reference algorithm), to check the chunk hashes."""
    P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                          0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)
    M = (1 << 64) - 1
    rotl = lambda x, r: ((x << r) | (x >> (64 - r))) & M
    rnd = lambda acc, x: (rotl((acc + x * P2) & M, 31) * P1) & M
    n, i = len(data), 0
    if n >= 32:
        v = [(P1 + P2) & M, P2, 0, (-P1) & M]
        while i + 32 <= n:
            for k in range(4):
                v[k] = rnd(v[k], int.from_bytes(data[i + 8 * k:i + 8 * k + 8], "little"))
            i += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M
        for k in range(4):
            h = ((h ^ rnd(0, v[k])) * P1 + P4) & M
    else:
        h = P5
    h = (h + n) & M
    while i + 8 <= n:
        h = (rotl(h ^ rnd(0, int.from_bytes(data[i:i + 8], "little")), 27) * P1 + P4) & M
        i += 8
    if i + 4 <= n:
        h = (rotl(h ^ (int.from_bytes(data[i:i + 4], "little") * P1 & M), 23) * P2 + P3) & M
        i += 4
    while i < n:
        h = (rotl(h ^ (data[i] * P5 & M), 11) * P1) & M
        i += 1
    h ^= h >> 33
    h = (h * P2) & M
    h ^= h >> 29
    h = (h * P3) & M
    return h ^ (h >> 32)


def labels(ls):
    return {l.name: l.value for l in ls}


def series_call(stub, pb, **kw):
    out = {"series": [], "warnings": [], "frames": 0}
    for frame in stub.Series(pb.SeriesRequest(**kw)):
        out["frames"] += 1
        kind = frame.WhichOneof("result")
        batch = [frame.series] if kind == "series" else list(frame.batch.series) if kind == "batch" else []
        if kind == "warning":
            out["warnings"].append(frame.warning)
        for s in batch:
            chunks, samples = [], []
            for c in s.chunks:
                dec = decode_xor(c.raw.data)
                chunks.append({"min": c.min_time, "max": c.max_time, "type": c.raw.type, "n": len(dec),
                               "hash_ok": c.raw.hash == xxh64(c.raw.data),
                               "first": dec[0][0] if dec else None, "last": dec[-1][0] if dec else None})
                samples.extend([t, format(v, "016x")] for t, v in dec)
            out["series"].append({"labels": labels(s.labels), "chunks": chunks, "samples": samples})
    return out


def main():
    proto_dir, address, mode = sys.argv[1:4]
    with tempfile.TemporaryDirectory() as gen:
        generate(proto_dir, gen)
        from thanos import store_pb2 as pb, store_pb2_grpc, types_pb2, info_pb2, info_pb2_grpc

        channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 2**31 - 1)])
        grpc.channel_ready_future(channel).result(timeout=30)
        store = store_pb2_grpc.StoreStub(channel)
        info = info_pb2_grpc.InfoStub(channel).Info(info_pb2.InfoRequest())
        old = store.Info(pb.InfoRequest())
        everything = [types_pb2.LabelMatcher(type=types_pb2.LabelMatcher.RE, name="__name__", value=".+")]
        res = {
            "info": {"component": info.ComponentType, "label_sets": [labels(s.labels) for s in info.label_sets],
                     "min_time": info.store.min_time, "max_time": info.store.max_time,
                     "has_store": info.HasField("store"),
                     "without_replica_labels": info.store.supports_without_replica_labels},
            "old_info": {"store_type": old.storeType, "min_time": old.min_time, "max_time": old.max_time,
                         "label_sets": [labels(s.labels) for s in old.label_sets]},
        }
        if mode == "full":
            res["all"] = series_call(store, pb, min_time=-(2**63), max_time=2**63 - 1, matchers=everything)
            res["batched"] = series_call(store, pb, min_time=-(2**63), max_time=2**63 - 1, matchers=everything,
                                         skip_chunks=True, response_batch_size=10,
                                         without_replica_labels=["cluster"])
            res["label_names"] = list(store.LabelNames(pb.LabelNamesRequest(
                start=-(2**62), end=2**62)).names)
            res["label_values"] = list(store.LabelValues(pb.LabelValuesRequest(
                label="__name__", start=-(2**62), end=2**62)).values)
            bad = [types_pb2.LabelMatcher(type=types_pb2.LabelMatcher.RE, name="job", value="(")]
            try:
                series_call(store, pb, min_time=0, max_time=1, matchers=bad)
                res["bad_matcher"] = "OK"
            except grpc.RpcError as e:
                res["bad_matcher"] = e.code().name
        else:
            one = [types_pb2.LabelMatcher(type=types_pb2.LabelMatcher.EQ, name="__name__", value="node_temperature_celsius")]
            res["one"] = series_call(store, pb, min_time=-(2**63), max_time=2**63 - 1, matchers=one)
            try:
                series_call(store, pb, min_time=-(2**63), max_time=2**63 - 1, matchers=everything)
                res["limited"] = "OK"
            except grpc.RpcError as e:
                res["limited"] = e.code().name
        json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
