// pare-quantize-demo: quantizes every weight matrix of the real stories260K model with several recipes and prints error figures.
//
// Usage: pare-quantize-demo [--model PATH/stories260K.bin] [--recipe SPEC[,SPEC...]]
// Without --model it looks in $PARE_DATA_DIR/models, then ../shared/data/models (from
// the repository root), then the current directory.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "pare/pare.hpp"

namespace {

std::string find_model(std::vector<std::string>& tried) {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("PARE_DATA_DIR")) dirs.push_back(std::string(env) + "/models");
#ifdef PARE_DATA_DIR_DEFAULT
  dirs.push_back(std::string(PARE_DATA_DIR_DEFAULT) + "/models");
#endif
  dirs.push_back("../shared/data/models");
  dirs.push_back(".");
  for (const auto& d : dirs) {
    const std::string p = d + "/stories260K.bin";
    tried.push_back(p);
    if (std::filesystem::exists(p)) return p;
  }
  return {};
}

/// The largest of {preferred, 32, 16, 8, 4, 2, 1} groups that divides n.
std::string fit_group(const std::string& spec, std::size_t cols, std::string& note) {
  pare::quant_config cfg = pare::quant_config::parse(spec);
  if (cfg.gran.kind != pare::granularity_kind::per_group || cols % cfg.gran.group_size == 0) return spec;
  std::size_t g = cfg.gran.group_size;
  while (g > 1 && cols % g != 0) g /= 2;
  if (cols % g != 0) g = 1;
  note = "g" + std::to_string(cfg.gran.group_size) + "->g" + std::to_string(g) + " where rows have " +
         std::to_string(cols) + " elements";
  cfg.gran.group_size = g;
  return cfg.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, recipe =
      "int8:per_channel:sym,int8:per_channel:asym,int4:g32:sym,int4:g32:asym,int4:g32:asym:mse,"
      "int4:per_channel:sym:mse,int3:g32:asym:mse,int2:g32:asym:mse";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) {
      model = argv[++i];
    } else if (a == "--recipe" && i + 1 < argc) {
      recipe = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--model PATH] [--recipe SPEC[,SPEC...]]\nunknown argument '%s'\n", argv[0], a.c_str());
      return 2;
    }
  }
  try {
    if (model.empty()) {
      std::vector<std::string> tried;
      model = find_model(tried);
      if (model.empty()) {
        std::fprintf(stderr, "pare-quantize-demo: stories260K.bin not found; looked in:\n");
        for (const auto& t : tried) std::fprintf(stderr, "  %s\n", t.c_str());
        std::fprintf(stderr,
                     "Fetch stories260K/stories260K.bin from the Hugging Face repository karpathy/tinyllamas, or set "
                     "PARE_DATA_DIR to a folder with models/stories260K.bin.\n");
        return 1;
      }
    }
    const auto ck = pare::llama2c_checkpoint::load(model);
    const auto names = ck.matrix_names();
    std::size_t params = 0;
    for (const auto& n : names) params += ck.matrix(n).size();
    std::printf("pare %s — %s: %zu weight matrices, %zu weights; CPU ISAs:", pare::version_string, model.c_str(),
                names.size(), params);
    pare::for_each_isa(pare::enabled_isas(), [](pare::isa l) { std::printf(" %s", pare::to_string(l)); });
    std::printf("; threads %zu\n\n", pare::num_threads());
    std::printf("%-40s %8s %12s %12s %12s %10s\n", "recipe", "bits/w", "bytes", "rel. error", "max rel.", "ms");
    std::printf("%-40s %8.3f %12zu %12s %12s %10s\n", "fp32", 32.0, params * 4, "0", "0", "-");
    for (const auto& spec : pare::split(recipe, ',')) {
      std::size_t bytes = 0;
      double num = 0, den = 0, worst = 0;
      std::string note;
      const auto t0 = std::chrono::steady_clock::now();
      for (const auto& n : names) {
        const auto w = ck.matrix(n);
        const auto q = pare::quantize(w, pare::quant_config::parse(fit_group(spec, w.cols(), note)));
        bytes += q.storage_bytes();
        const auto d = q.dequantize();
        double tn = 0, td = 0;
        for (std::size_t i = 0; i < w.rows(); ++i)
          for (std::size_t j = 0; j < w.cols(); ++j) {
            const double e = double(w(i, j)) - d(i, j);
            tn += e * e;
            td += double(w(i, j)) * w(i, j);
          }
        num += tn;
        den += td;
        worst = std::max(worst, std::sqrt(tn / td));
      }
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      std::printf("%-40s %8.3f %12zu %12.5f %12.5f %10.2f%s%s\n", spec.c_str(), 8.0 * double(bytes) / double(params), bytes,
                  std::sqrt(num / den), worst, ms, note.empty() ? "" : "  note: ", note.c_str());
    }
    std::printf("\nrel. error = ||W - deq(q(W))||_F / ||W||_F over all matrices; max rel. = worst single matrix.\n");
    return 0;
  } catch (const pare::error& e) {
    std::fprintf(stderr, "pare-quantize-demo: %s\n", e.what());
    return 1;
  }
}
