// Training checkpoints: every trainable tensor's weights and AdamW moments, the step and
// the data cursor, and what they belong to (the base model's fingerprint, each tensor's
// name and size, the options that shape the run). Written to a temporary file, flushed to
// disk and renamed over the old one, so a kill at any moment leaves the previous
// checkpoint or the new one, never a mix; each array and the header carry an XXH64,
// checked on load, and any mismatch is refused with its reason.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/adamw.h"
#include "train/train_model.h"
#include "util/status.h"

namespace flashlm::train {

struct TrainState {
  uint64_t base_fingerprint = 0;
  int64_t step = 0;         // optimizer updates done
  int64_t cursor = 0;       // training sequences consumed
  std::string options;      // the run's shaping options as text; must match to resume
  double last_loss = 0.0;   // for the progress line after a resume
};

Status save_checkpoint(const std::string& path, const TrainState& st, const std::vector<Param>& params,
                       AdamW& opt);
// Fills params' weights and opt's moments; the caller compares st's fingerprint and
// options with its own run before trusting it.
Status load_checkpoint(const std::string& path, TrainState* st, std::vector<Param>& params, AdamW& opt);

}  // namespace flashlm::train
