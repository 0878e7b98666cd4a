// experiment/sweep.cpp: see sweep.h.
#include "experiment/sweep.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "experiment/schema.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"

namespace ot::experiment {

namespace {

// One swept dimension: a group of keys, each with the same number of values.
struct Axis {
  std::vector<std::string> keys;
  std::vector<toml::array> values;  // values[key][i]
  size_t size() const { return values.empty() ? 0 : values.front().size(); }
};

// The resolved TOML without the keys that do not change what a run computes.
std::string identity_text(const Config& c, bool with_seed) {
  toml::table t = c.table;
  t.erase("runtime");
  t.erase("sweep");
  for (const char* k : {"experiment.results_dir", "experiment.work_dir", "experiment.label", "experiment.description",
                        "experiment.paper_table"})
    erase_dotted(t, k);
  if (!with_seed) erase_dotted(t, "experiment.seed");
  std::ostringstream os;
  os << toml::toml_formatter(t, toml::format_flags::none);
  return os.str();
}

std::string value_text(const toml::node& n) {
  if (n.is_floating_point()) {  // the shortest text that reads back as the same double
    const double x = *n.value<double>();
    char buf[32];
    for (int p = 1; p <= 17; ++p) {
      std::snprintf(buf, sizeof buf, "%.*g", p, x);
      if (std::strtod(buf, nullptr) == x) break;
    }
    std::string s = buf;
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // stays a TOML float
    return s;
  }
  std::ostringstream os;
  os << toml::toml_formatter(n, toml::format_flags::none);
  return os.str();
}

Axis axis_from(const toml::table& group, const std::string& prefix, const Config& c) {
  Axis a;
  for (const auto& [k, v] : group) {
    const std::string key(k.str());
    const std::string at = prefix + "." + key;
    OT_REQUIRE(v.is_array(), c.sources.locate(at, at), ": ", at, ": expected an array of values for '", key, "'");
    OT_REQUIRE(key.rfind("sweep", 0) != 0, c.sources.locate(at, at), ": a sweep cannot vary its own keys");
    const toml::array& vals = *v.as_array();
    OT_REQUIRE(!vals.empty(), c.sources.locate(at, at), ": ", at, ": an empty list gives a sweep of zero runs");
    if (!a.values.empty())
      OT_REQUIRE(vals.size() == a.size(), c.sources.locate(at, at), ": ", at, " has ", vals.size(),
                 " values but the other keys of its zip group have ", a.size(), " (zipped keys vary together)");
    a.keys.push_back(key);
    a.values.push_back(vals);
  }
  return a;
}

}  // namespace

std::string run_id_of(const Config& c) { return hex_digits(fnv1a(identity_text(c, true)), 12); }
std::string group_id_of(const Config& c) { return hex_digits(fnv1a(identity_text(c, false)), 12); }

std::string params_json(const std::vector<std::pair<std::string, std::string>>& params) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [k, v] : params) {
    try {
      j[k] = nlohmann::json::parse(v);  // numbers, booleans, arrays of them
    } catch (const nlohmann::json::exception&) {
      toml::table holder = toml::parse("v = " + v);
      j[k] = holder.get("v")->value<std::string>().value_or(v);
    }
  }
  return j.dump();
}

std::vector<PlannedRun> plan_runs(const Config& c) {
  std::vector<Axis> axes;
  if (const toml::table* sweep = c.table_at("sweep")) {
    if (const toml::node* grid = sweep->get("grid"))
      for (const auto& [k, v] : *grid->as_table()) {
        toml::table one;
        one.insert(k, v);
        axes.push_back(axis_from(one, "sweep.grid", c));
      }
    if (const toml::node* zip = sweep->get("zip")) {
      size_t i = 0;
      for (const auto& g : *zip->as_array()) {
        Axis a = axis_from(*g.as_table(), "sweep.zip", c);
        OT_REQUIRE(!a.keys.empty(), c.sources.locate("sweep.zip", "sweep.zip"), ": [[sweep.zip]] group ", i, " is empty");
        axes.push_back(std::move(a));
        ++i;
      }
    }
    const toml::node* seeds = sweep->get("seeds");
    if (seeds && !seeds->as_array()->empty()) {
      toml::table one;
      one.insert("experiment.seed", *seeds);
      Axis a = axis_from(one, "sweep.seeds", c);
      axes.push_back(std::move(a));
    }
  }
  std::set<std::string> seen_keys;
  for (const Axis& a : axes)
    for (const std::string& k : a.keys)
      OT_REQUIRE(seen_keys.insert(k).second, c.sources.locate("sweep", "sweep"), ": '", k,
                 "' is swept twice (in grid, zip or seeds); sweep each key once");

  size_t total = 1;
  for (const Axis& a : axes) total *= a.size();
  OT_REQUIRE(total > 0, c.file, ": the sweep has zero runs");

  std::vector<PlannedRun> runs;
  std::map<std::string, size_t> ids;
  std::vector<size_t> idx(axes.size(), 0);
  for (size_t r = 0; r < total; ++r) {
    PlannedRun run;
    toml::table t = c.table;
    t.erase("sweep");
    SourceMap sources = c.sources;
    for (size_t ai = 0; ai < axes.size(); ++ai) {
      const Axis& a = axes[ai];
      for (size_t ki = 0; ki < a.keys.size(); ++ki) {
        const toml::node& v = *a.values[ki].get(idx[ai]);
        toml::node* copy = nullptr;
        toml::table holder;
        holder.insert("v", v);
        copy = holder.get("v");
        const std::string origin = c.sources.locate("sweep", c.file);
        sources.set(a.keys[ki], origin + " (sweep value " + value_text(v) + ")");
        set_dotted(t, a.keys[ki], std::move(*copy));
        run.params.emplace_back(a.keys[ki], value_text(v));
      }
    }
    run.config.table = std::move(t);
    run.config.sources = std::move(sources);
    run.config.file = c.file;
    apply_schema(run.config.table, run.config.sources);
    run.run_id = run_id_of(run.config);
    auto [it, fresh] = ids.emplace(run.run_id, r);
    OT_REQUIRE(fresh, c.file, ": sweep runs ", it->second, " and ", r, " have the same configuration (run id ",
               run.run_id, "); a key probably sweeps over a value it already has in every run");
    run.result_path = path_join(path_join(run.config.str("experiment.results_dir"), run.config.str("experiment.name")),
                                run.run_id + ".h5");
    runs.push_back(std::move(run));
    // Advance the mixed-radix counter, last axis fastest.
    for (size_t ai = axes.size(); ai-- > 0;) {
      if (++idx[ai] < axes[ai].size()) break;
      idx[ai] = 0;
    }
  }
  return runs;
}

}  // namespace ot::experiment
