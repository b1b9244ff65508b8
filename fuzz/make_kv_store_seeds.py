#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_kv_store into fuzz/seeds/kv_store/.

Block records laid out as src/kv/kv_store_record.h documents, written here with
struct.pack (not by flashlm). The trailing checksum is left zero: the fuzz target
recomputes it for every input, so the seeds only need the right structure.

Usage: python3 fuzz/make_kv_store_seeds.py   (deterministic; the output is committed)
"""

import struct
from pathlib import Path

OUT = Path(__file__).resolve().parent / "seeds" / "kv_store"
NS = 0x0123456789ABCDEF  # the namespace the fuzz target's store uses


def record(block_hash: int, parent: int, tokens: list[int], payload: bytes) -> bytes:
    head = b"FLMKVB01" + struct.pack("<IIQQQIIQQ", 1, 64, NS, block_hash, parent, len(tokens), 0, len(payload), 0)
    assert len(head) == 64
    return head + struct.pack(f"<{len(tokens)}i", *tokens) + payload + b"\0" * 8


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    seeds = {
        "empty.kvb": record(1, 0, [], b""),
        "small.kvb": record(0xDEADBEEF, 7, [1, 2, 3, -1], bytes(range(40))),
        "block32.kvb": record(0xFEEDFACE12345678, 0xDEADBEEF, list(range(100, 132)), bytes(i % 251 for i in range(512))),
    }
    for name, data in seeds.items():
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()
