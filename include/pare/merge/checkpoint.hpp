// checkpoint: named fp32 tensors with shapes, the input and output of merging, and the compatibility check merges share.
#pragma once

// A checkpoint is a std::map from tensor name to {shape, values (row-major)}. Merging
// (average.hpp, task_arithmetic.hpp, ties.hpp) needs checkpoints of one architecture:
// the same names and, per name, the same shape. check_compatible() enforces that and
// finite values; it throws argument_error naming a tensor present in one checkpoint and
// absent from another, shape_error naming a tensor whose shapes differ, value_error
// naming a tensor and position holding NaN/Inf.
//
// The exchange with a llama_model (checkpoint_of, load_checkpoint) and merges of whole
// models are in pare/pipeline/merge_models.hpp.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pare/core/error.hpp"
#include "pare/core/tensor_view.hpp"

PARE_NAMESPACE_BEGIN

/// One named tensor: its shape and row-major values (values.size() == shape.size()).
struct checkpoint_tensor {
  shape_t shape;
  std::vector<float> values;

  checkpoint_tensor() = default;
  /// Throws shape_error unless values.size() equals the shape's element count.
  checkpoint_tensor(const shape_t& s, std::vector<float> v) : shape(s), values(std::move(v)) {
    if (values.size() != shape.size())
      detail::fail<shape_error>("checkpoint_tensor: argument 'values': expected ", shape.size(), " values for shape ", shape,
                                ", got ", values.size());
  }
};

/// Named tensors, ordered by name.
using checkpoint = std::map<std::string, checkpoint_tensor>;

namespace detail {
/// Same names and shapes as the first checkpoint, finite values everywhere (see above).
inline void check_compatible(const char* where, const std::vector<const checkpoint*>& cks) {
  for (std::size_t i = 0; i < cks.size(); ++i)
    if (!cks[i]) fail<argument_error>(where, ": checkpoint ", i, ": expected a checkpoint, got a null pointer");
  if (cks.empty()) return;
  const checkpoint& ref = *cks[0];
  for (std::size_t i = 1; i < cks.size(); ++i) {
    const checkpoint& c = *cks[i];
    for (const auto& [name, t] : ref) {
      const auto it = c.find(name);
      if (it == c.end())
        fail<argument_error>(where, ": tensor '", name, "': expected in every checkpoint, absent from checkpoint ", i);
      if (it->second.shape != t.shape)
        fail<shape_error>(where, ": tensor '", name, "': shapes disagree: expected ", t.shape, " (checkpoint 0), got ",
                          it->second.shape, " (checkpoint ", i, ")");
    }
    for (const auto& kv : c)
      if (ref.find(kv.first) == ref.end())
        fail<argument_error>(where, ": tensor '", kv.first, "': expected in every checkpoint, absent from checkpoint 0");
  }
  for (std::size_t i = 0; i < cks.size(); ++i)
    for (const auto& [name, t] : *cks[i]) {
      if (t.values.size() != t.shape.size())
        fail<shape_error>(where, ": tensor '", name, "' of checkpoint ", i, ": expected ", t.shape.size(),
                          " values for shape ", t.shape, ", got ", t.values.size());
      for (std::size_t e = 0; e < t.values.size(); ++e)
        if (!std::isfinite(t.values[e]))
          fail<value_error>(where, ": tensor '", name, "' of checkpoint ", i, ": expected finite values, got ", t.values[e],
                            " at flat index ", e);
    }
}

/// Pointers to each checkpoint of v.
inline std::vector<const checkpoint*> pointers(const std::vector<checkpoint>& v) {
  std::vector<const checkpoint*> p;
  for (const checkpoint& c : v) p.push_back(&c);
  return p;
}
}  // namespace detail

PARE_NAMESPACE_END
