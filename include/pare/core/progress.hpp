// progress: the callback through which a long computation reports how far it is, as (units done, units total).
#pragma once

// A function that takes long (perplexity over a text, a calibration pass, a file
// conversion) takes a `const progress_callback&` that defaults to empty. It calls it with
// (0, total) when it starts and (done, total) after each unit, done rising to total; its
// documentation says what a unit is (a window of tokens, a tensor, a block). The callback
// runs on the thread that called the computation, never concurrently with itself. An
// exception it throws ends the computation (a way to cancel) and reaches the caller.

#include <cstddef>
#include <functional>

#include "pare/core/config.hpp"

PARE_NAMESPACE_BEGIN

/// Progress report of a long computation: (units done, units total). Empty: no report.
using progress_callback = std::function<void(std::size_t done, std::size_t total)>;

PARE_NAMESPACE_END
