// experiment/config.h: an experiment's TOML, resolved. Loading reads a file, merges the base
// file it `extends` (recursively; the extending file wins key by key), expands ${VAR} and
// ${VAR:-default} in strings from the environment, applies `--set key=value` overrides, fills
// every default of the schema (experiment/schema.h) and validates the result. The resolved
// configuration is a plain TOML table: it is what a run stores and what `ot rerun` replays.
// Every key remembers where it came from ("file:line:col" or "--set key=value") so that an
// error can point at the line to fix.
#pragma once

#include <toml++/toml.h>

#include <map>
#include <string>
#include <vector>

namespace ot::experiment {

// Where each dotted key of a resolved configuration was written.
class SourceMap {
 public:
  void set(const std::string& key, std::string where) { where_[key] = std::move(where); }
  // The location of `key`, or of its nearest enclosing table, or `fallback`.
  std::string locate(const std::string& key, const std::string& fallback = "") const;

 private:
  std::map<std::string, std::string> where_;
};

struct Config {
  toml::table table;      // resolved: merged, expanded, overridden, defaults filled
  SourceMap sources;
  std::string file;       // the file it was loaded from ("" for a stored configuration)

  // Typed access to a resolved key ("emulator.layers"); throws ot::Error naming the key
  // when it is absent or of another type (after validation neither can happen).
  std::string str(const std::string& key) const;
  int64_t integer(const std::string& key) const;
  double number(const std::string& key) const;
  bool flag(const std::string& key) const;
  std::vector<std::string> strings(const std::string& key) const;
  std::vector<int64_t> integers(const std::string& key) const;
  bool has(const std::string& key) const;
  const toml::table* table_at(const std::string& key) const;

  // The resolved configuration as TOML text (keys sorted; stable for equal configurations).
  std::string to_toml() const;
  // "at file:line:col" for messages about `key`.
  std::string where(const std::string& key) const;
};

// Loads, merges, expands, overrides, fills defaults and validates. `overrides` are
// "key=value" strings; a value is read as a TOML value when it parses as one, else as a string.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// A configuration stored by a run (the resolved TOML text), validated again.
Config config_from_text(const std::string& toml_text, const std::string& origin);

// Expands ${VAR} and ${VAR:-default} in `s`; `where` names the key for errors.
std::string expand_variables(const std::string& s, const std::string& where);

// Sets `key` (dotted) in `t` to `value`, creating intermediate tables.
void set_dotted(toml::table& t, const std::string& key, toml::node&& value);
// The node at a dotted key, or null.
const toml::node* get_dotted(const toml::table& t, const std::string& key);
// Removes a dotted key; true if it was there.
bool erase_dotted(toml::table& t, const std::string& key);

// Sets `key` to a value written as text (a `--set` value or a command-line sweep value): read
// as a TOML value when it parses as one (2, 1e-4, true, [1, 2], "x"), else as a string.
void set_from_text(toml::table& t, const std::string& key, const std::string& text);

// Every leaf key of a table, dotted ("a.b.c"), in sorted order.
std::vector<std::string> leaf_keys(const toml::table& t, const std::string& prefix = "");

}  // namespace ot::experiment
