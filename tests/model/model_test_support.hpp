// Shared input of the model tests: stories260K (models/stories260K.bin) as a llama_model.
#pragma once

#include "pare/io/llama2c.hpp"
#include "pare/model/llama_model.hpp"
#include "pare_test_support.hpp"

namespace model_test {

/// stories260K read from the data directory.
inline pare::llama_model stories260k() {
  return pare::llama_model::from_llama2c(pare::llama2c_checkpoint::load(pare_test::data_path("models/stories260K.bin")));
}

}  // namespace model_test
