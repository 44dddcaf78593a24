// Umbrella header for the calibration observers (minmax, ema, percentile, mse, kl) and any_observer.
#pragma once

#include "pare/quant/observers/any_observer.hpp"
#include "pare/quant/observers/ema_minmax.hpp"
#include "pare/quant/observers/histogram.hpp"
#include "pare/quant/observers/kl.hpp"
#include "pare/quant/observers/minmax.hpp"
#include "pare/quant/observers/mse.hpp"
#include "pare/quant/observers/observer.hpp"
#include "pare/quant/observers/percentile.hpp"
