// analysis/runs.cpp: reading a results directory (see runs.h).
#include "analysis/runs.h"

#include <algorithm>
#include <filesystem>

#include "util/error.h"
#include "util/strings.h"

namespace ot::analysis {

namespace fs = std::filesystem;

namespace {

// The temporaries of an atomic write: ".<name>.tmp.<pid>" (util/fs.h, results/SCHEMA.md).
bool is_leftover_temporary(const std::string& name) {
  return name.size() > 1 && name[0] == '.' && name.find(".tmp.") != std::string::npos;
}

std::string optional_string(const results::RunReader& r, const std::string& name) {
  return r.has_attribute(name) ? r.string_attribute(name) : std::string();
}

RunData to_run_data(const results::RunReader& r, const std::string& path, const std::string& rel) {
  RunData d;
  d.path = path;
  d.rel_path = rel;
  d.run_id = optional_string(r, "run_id");
  d.experiment = optional_string(r, "experiment");
  d.label = optional_string(r, "label");
  if (d.label.empty()) d.label = !d.experiment.empty() ? d.experiment : d.run_id;
  if (d.label.empty()) d.label = rel;
  d.group_id = optional_string(r, "group_id");
  if (d.group_id.empty()) d.group_id = d.label;
  d.recipe = optional_string(r, "recipe");
  d.paper_table = optional_string(r, "paper_table");

  if (r.has_attribute("sweep_params")) {
    const std::string& text = r.string_attribute("sweep_params");
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    OT_REQUIRE(j.is_object(), path, ": root attribute 'sweep_params' should be a JSON object of the swept ",
               "keys and values, e.g. {\"emulator.layers\": 8, \"experiment.seed\": 1}; it is '", text, "'");
    d.sweep_params = j;
  }
  if (r.has_attribute("seed")) {
    d.seed = r.int_attribute("seed");
  } else {
    for (const auto& [key, value] : d.sweep_params.items()) {
      if (is_seed_key(key) && value.is_number_integer()) d.seed = value.get<std::int64_t>();
    }
  }
  if (r.has_attribute("cka_similarity")) {
    const std::string& text = r.string_attribute("cka_similarity");
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    bool ok = j.is_object() && j.contains("blocks") && j["blocks"].is_array() && j.contains("matrix") &&
              j["matrix"].is_array() && j["matrix"].size() == j["blocks"].size() && j.contains("kept") &&
              j["kept"].is_array();
    for (std::size_t i = 0; ok && i < j["matrix"].size(); ++i) {
      ok = j["matrix"][i].is_array() && j["matrix"][i].size() == j["blocks"].size();
      for (std::size_t k = 0; ok && k < j["matrix"][i].size(); ++k) ok = j["matrix"][i][k].is_number();
    }
    for (const char* list : {"blocks", "kept"}) {
      for (std::size_t k = 0; ok && k < j[list].size(); ++k) ok = j[list][k].is_number_integer();
    }
    OT_REQUIRE(ok, path, ": root attribute 'cka_similarity' should be a JSON object {\"blocks\": [block indices], ",
               "\"matrix\": a square array of numbers with a row per block, \"kept\": [block indices]}; it is '",
               text.substr(0, 200), "'");
    d.cka = std::move(j);
  }
  d.eval = r.eval();
  d.efficiency = r.efficiency();
  for (const auto& kv : r.curves()) d.curves.push_back(kv.first);  // std::map: sorted
  return d;
}

}  // namespace

bool is_seed_key(const std::string& key) { return key == "seed" || ends_with(key, ".seed"); }

RunCollection collect_runs(const std::string& dir) {
  OT_REQUIRE(fs::is_directory(dir), dir, ": not a directory (expected a results directory holding *.h5 run files)");
  RunCollection out;
  out.root = dir;

  // Relative paths, so that the order (and every listing) does not depend on how the
  // directory was named on the command line.
  std::vector<std::string> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  OT_REQUIRE(!ec, dir, ": cannot list directory: ", ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    OT_REQUIRE(!ec, dir, ": cannot list directory: ", ec.message());
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    const std::string rel = fs::relative(it->path(), dir).generic_string();
    if (is_leftover_temporary(name)) {
      out.ignored.push_back(rel);
    } else if (ends_with(name, ".h5")) {
      files.push_back(rel);
    }
  }
  OT_REQUIRE(!ec, dir, ": cannot list directory: ", ec.message());
  std::sort(files.begin(), files.end());
  std::sort(out.ignored.begin(), out.ignored.end());

  for (const std::string& rel : files) {
    const std::string path = (fs::path(dir) / rel).string();
    results::RunReader r = results::RunReader::open(path);  // names the file on any error
    if (r.status() == results::RunStatus::Completed) {
      out.runs.push_back(to_run_data(r, path, rel));
    } else {
      std::string reason = "status " + results::to_string(r.status());
      if (r.status() == results::RunStatus::Failed) {
        const std::string first_line = r.error().substr(0, r.error().find('\n'));
        reason += ": " + (first_line.empty() ? std::string("no error recorded") : first_line);
      }
      out.skipped.push_back({path, rel, reason});
    }
  }
  return out;
}

}  // namespace ot::analysis
