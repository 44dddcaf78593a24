// Umbrella header for the calibration observers (minmax, ema, percentile, mse, kl) and any_observer.
#pragma once

#include "pare/stats/observers/any_observer.hpp"
#include "pare/stats/observers/ema_minmax.hpp"
#include "pare/stats/observers/histogram.hpp"
#include "pare/stats/observers/kl.hpp"
#include "pare/stats/observers/minmax.hpp"
#include "pare/stats/observers/mse.hpp"
#include "pare/stats/observers/observer.hpp"
#include "pare/stats/observers/percentile.hpp"
