// The importance matrix: per weight matrix, the mean squared input of each column over
// calibration text, which the quantizer uses to weight its rounding error (columns that
// see large activations matter more). Files are llama.cpp's, both forms:
//  - GGUF (llama-imatrix's default): general.type = "imatrix", imatrix.datasets,
//    imatrix.chunk_count, imatrix.chunk_size, and per matrix NAME.in_sum2 (f32
//    [n_cols, n_mat], raw sums) and NAME.counts (f32 [1, n_mat], tokens per matrix);
//  - legacy .dat: int32 n_entries, then per entry int32 name length, name, int32 ncall,
//    int32 nval, f32 values[nval] (mean squares times ncall), then optionally int32
//    chunk count, int32 length and the dataset name.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "factory/activations.h"
#include "formats/gguf.h"
#include "util/status.h"

namespace flashlm::factory {

struct ImatrixEntry {
  std::vector<float> sums;    // [n_mat][n_cols]
  std::vector<float> counts;  // [n_mat]; a legacy file has one: its ncall
};

struct Imatrix {
  std::map<std::string, ImatrixEntry> entries;  // by weight name
  std::vector<std::string> datasets;
  uint32_t chunk_count = 0;
  uint32_t chunk_size = 0;
  bool legacy = false;

  // The per-column importance of a weight of n_cols x n_mat columns as llama-quantize
  // derives it: sums / count (a legacy file's values / ncall); 1 for an expert that saw
  // no tokens. Empty when the file has no entry of that name; an error when the entry
  // has another size (an imatrix made for another model).
  Result<std::vector<float>> importance(const std::string& name, int64_t n_cols, int64_t n_mat) const;
};

// From collected statistics (factory/activations.h); dataset names the text.
Imatrix imatrix_from_stats(const ActivationStats& s, const std::string& dataset);

// Writes `path` in the GGUF form, or the legacy one when `legacy` (llama-imatrix
// --output-format dat), through a temporary file renamed when complete.
Status save_imatrix(const std::string& path, const Imatrix& m, bool legacy);

// Reads either form (GGUF recognised by its magic). A truncated, foreign or
// inconsistent file is an error naming what is wrong.
Result<Imatrix> load_imatrix(const std::string& path);
Result<Imatrix> parse_imatrix_legacy(std::span<const uint8_t> bytes);
Result<Imatrix> imatrix_from_gguf(const gguf::File& f);

// Every entry names a weight matrix of the model with as many columns (and experts):
// an imatrix for another model is refused before anything is quantized.
Status check_imatrix_fits(const Imatrix& m, const gguf::File& model);

}  // namespace flashlm::factory
