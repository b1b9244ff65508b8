// A fast 64-bit identity of a model file, for keying caches that must never be reused
// with other weights (the persistent KV store). Hashing all of a 70 GB file at start-up
// would take minutes, so it hashes:
//   - the file size;
//   - every byte before the tensor data: header, all metadata (tokenizer included) and
//     the tensor infos (names, shapes, types, offsets);
//   - the first 64 bytes and the 64 bytes at the middle of every tensor's data;
//   - 64 pages of 4 KiB evenly spaced over the tensor data section, first and last
//     page included.
// About 256 KiB plus 128 bytes per tensor beyond the metadata. Two files that differ
// only in bytes outside these samples (say one retouched tensor row) get the same
// fingerprint; re-quantization, fine-tunes and conversions change every sample.
#pragma once

#include <cstdint>

#include "formats/gguf.h"

namespace flashlm::gguf {

uint64_t model_fingerprint(const File& f);

}  // namespace flashlm::gguf
