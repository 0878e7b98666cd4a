// experiment/config.cpp: see config.h.
#include "experiment/config.h"

#include <cstdlib>
#include <set>
#include <sstream>

#include "experiment/schema.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot::experiment {

namespace {

std::string position(const toml::source_region& r, const std::string& file) {
  return file + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column);
}

// Records where every key of a freshly parsed file was written (copies of nodes lose it).
void record_sources(const toml::table& t, const std::string& prefix, const std::string& file, SourceMap& out) {
  for (const auto& [k, v] : t) {
    const std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    out.set(key, position(k.source().begin.line ? k.source() : v.source(), file));
    if (const auto* sub = v.as_table()) record_sources(*sub, key, file, out);
  }
}

// `over` wins key by key; tables merge recursively; arrays are replaced whole.
void merge_into(toml::table& base, const toml::table& over) {
  for (const auto& [k, v] : over) {
    toml::node* existing = base.get(k);
    if (existing && existing->is_table() && v.is_table()) {
      merge_into(*existing->as_table(), *v.as_table());
    } else {
      base.insert_or_assign(k, v);
    }
  }
}

void expand_all(toml::table& t, const std::string& prefix, const SourceMap& sources) {
  for (auto&& [k, v] : t) {
    const std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (auto* s = v.as_string()) {
      s->get() = expand_variables(s->get(), key + " " + sources.locate(key));
    } else if (auto* sub = v.as_table()) {
      expand_all(*sub, key, sources);
    } else if (auto* arr = v.as_array()) {
      for (auto& e : *arr)
        if (auto* es = e.as_string()) es->get() = expand_variables(es->get(), key + " " + sources.locate(key));
    }
  }
}

toml::table parse_file_with_errors(const std::string& path) {
  OT_REQUIRE(file_exists(path), path, ": no such experiment file");
  const std::string text = read_text_file(path);
  try {
    return toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    fail(position(e.source(), path), ": malformed TOML: ", e.description());
  }
}

// Reads `path` and the chain of files it extends, merged; records sources.
toml::table load_merged(const std::string& path, SourceMap& sources, std::vector<std::string>& chain) {
  for (const std::string& seen : chain)
    OT_REQUIRE(seen != path, path, ": `extends` forms a cycle (", chain.front(), " ... ", path, ")");
  chain.push_back(path);
  toml::table own = parse_file_with_errors(path);
  toml::table merged;
  if (const toml::node* ext = own.get("extends")) {
    const std::string where = position(ext->source(), path);
    OT_REQUIRE(ext->is_string(), where, ": extends: expected a file name (string)");
    std::string base = expand_variables(ext->value<std::string>().value(), "extends at " + where);
    if (!base.empty() && base[0] != '/') {
      const size_t slash = path.find_last_of('/');
      base = path_join(slash == std::string::npos ? "." : path.substr(0, slash), base);
    }
    OT_REQUIRE(file_exists(base), where, ": extends: base file '", base, "' does not exist");
    merged = load_merged(base, sources, chain);
    own.erase("extends");
  }
  record_sources(own, "", path, sources);
  merge_into(merged, own);
  return merged;
}

void finish(Config& c) {
  expand_all(c.table, "", c.sources);
  bool swept = false;  // a sweep's runs are checked in full one by one (experiment/sweep.h)
  if (const toml::node* s = get_dotted(c.table, "sweep"); s && s->is_table()) {
    for (const auto& [k, v] : *s->as_table()) {
      if (const auto* a = v.as_array(); a && !a->empty()) swept = true;
      else if (const auto* t = v.as_table(); t && !t->empty()) swept = true;
    }
  }
  apply_schema(c.table, c.sources, !swept);
  expand_all(c.table, "", c.sources);  // defaults may name variables too
}

const toml::node& require_node(const Config& c, const std::string& key) {
  const toml::node* n = get_dotted(c.table, key);
  OT_REQUIRE(n != nullptr, "configuration key '", key, "' is missing");
  return *n;
}

}  // namespace

std::string SourceMap::locate(const std::string& key, const std::string& fallback) const {
  std::string k = key;
  while (true) {
    auto it = where_.find(k);
    if (it != where_.end()) return it->second;
    const size_t dot = k.find_last_of('.');
    if (dot == std::string::npos) return fallback;
    k = k.substr(0, dot);
  }
}

std::string expand_variables(const std::string& s, const std::string& where) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '{') {
      const size_t close = s.find('}', i + 2);
      OT_REQUIRE(close != std::string::npos, where, ": unterminated ${ in '", s, "'");
      std::string inner = s.substr(i + 2, close - i - 2);
      std::string name = inner, fallback;
      bool has_fallback = false;
      const size_t dash = inner.find(":-");
      if (dash != std::string::npos) {
        name = inner.substr(0, dash);
        fallback = inner.substr(dash + 2);
        has_fallback = true;
      }
      bool valid = !name.empty();
      for (char ch : name) valid = valid && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
      OT_REQUIRE(valid, where, ": '${", inner, "}' is not a variable reference (expected ${NAME} or ${NAME:-default})");
      const char* env = std::getenv(name.c_str());
      if (env && *env) out += env;
      else if (has_fallback) out += fallback;
      else fail(where, ": environment variable ", name, " is not set (write ${", name, ":-default} to give a default)");
      i = close + 1;
    } else {
      out += s[i++];
    }
  }
  return out;
}

void set_dotted(toml::table& t, const std::string& key, toml::node&& value) {
  toml::table* cur = &t;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    OT_REQUIRE(!part.empty(), "'", key, "' is not a valid key");
    if (dot == std::string::npos) {
      cur->insert_or_assign(part, std::move(value));
      return;
    }
    toml::node* next = cur->get(part);
    if (!next) {
      cur->insert_or_assign(part, toml::table{});
      next = cur->get(part);
    }
    OT_REQUIRE(next->is_table(), "'", key, "': '", key.substr(0, dot), "' is a value, not a table");
    cur = next->as_table();
    start = dot + 1;
  }
}

const toml::node* get_dotted(const toml::table& t, const std::string& key) {
  const toml::table* cur = &t;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const toml::node* n = cur->get(part);
    if (!n || dot == std::string::npos) return n;
    cur = n->as_table();
    if (!cur) return nullptr;
    start = dot + 1;
  }
}

bool erase_dotted(toml::table& t, const std::string& key) {
  const size_t dot = key.find_last_of('.');
  toml::table* parent = &t;
  if (dot != std::string::npos) {
    const toml::node* p = get_dotted(t, key.substr(0, dot));
    if (!p || !p->is_table()) return false;
    parent = const_cast<toml::node*>(p)->as_table();
  }
  return parent->erase(dot == std::string::npos ? key : key.substr(dot + 1)) > 0;
}

void set_from_text(toml::table& t, const std::string& key, const std::string& text) {
  try {
    toml::table holder = toml::parse("v = " + text);
    if (toml::node* v = holder.get("v")) {
      set_dotted(t, key, std::move(*v));
      return;
    }
  } catch (const toml::parse_error&) {
  }
  set_dotted(t, key, toml::value<std::string>(text));
}

std::vector<std::string> leaf_keys(const toml::table& t, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& [k, v] : t) {
    const std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* sub = v.as_table()) {
      auto inner = leaf_keys(*sub, key);
      out.insert(out.end(), inner.begin(), inner.end());
    } else {
      out.push_back(key);
    }
  }
  return out;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  Config c;
  c.file = path;
  std::vector<std::string> chain;
  c.table = load_merged(path, c.sources, chain);
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    OT_REQUIRE(eq != std::string::npos && eq > 0, "--set '", o, "': expected KEY=VALUE, e.g. --set finetune.lr=2e-5");
    const std::string key = o.substr(0, eq);
    set_from_text(c.table, key, o.substr(eq + 1));
    c.sources.set(key, "--set " + o);
  }
  finish(c);
  return c;
}

Config config_from_text(const std::string& toml_text, const std::string& origin) {
  Config c;
  try {
    c.table = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    fail(position(e.source(), origin), ": malformed stored configuration: ", e.description());
  }
  record_sources(c.table, "", origin, c.sources);
  finish(c);
  return c;
}

std::string Config::where(const std::string& key) const {
  const std::string w = sources.locate(key);
  return w.empty() ? "" : " (at " + w + ")";
}

bool Config::has(const std::string& key) const { return get_dotted(table, key) != nullptr; }

const toml::table* Config::table_at(const std::string& key) const {
  const toml::node* n = get_dotted(table, key);
  return n ? n->as_table() : nullptr;
}

std::string Config::str(const std::string& key) const {
  auto v = require_node(*this, key).value<std::string>();
  OT_REQUIRE(v.has_value(), key, ": expected a string", where(key));
  return *v;
}

int64_t Config::integer(const std::string& key) const {
  const toml::node& n = require_node(*this, key);
  OT_REQUIRE(n.is_integer(), key, ": expected an integer", where(key));
  return *n.value<int64_t>();
}

double Config::number(const std::string& key) const {
  const toml::node& n = require_node(*this, key);
  OT_REQUIRE(n.is_number(), key, ": expected a number", where(key));
  return *n.value<double>();
}

bool Config::flag(const std::string& key) const {
  const toml::node& n = require_node(*this, key);
  OT_REQUIRE(n.is_boolean(), key, ": expected true or false", where(key));
  return *n.value<bool>();
}

std::vector<std::string> Config::strings(const std::string& key) const {
  const toml::node& n = require_node(*this, key);
  OT_REQUIRE(n.is_array(), key, ": expected an array of strings", where(key));
  std::vector<std::string> out;
  for (const auto& e : *n.as_array()) {
    OT_REQUIRE(e.is_string(), key, ": expected an array of strings", where(key));
    out.push_back(*e.value<std::string>());
  }
  return out;
}

std::vector<int64_t> Config::integers(const std::string& key) const {
  const toml::node& n = require_node(*this, key);
  OT_REQUIRE(n.is_array(), key, ": expected an array of integers", where(key));
  std::vector<int64_t> out;
  for (const auto& e : *n.as_array()) {
    OT_REQUIRE(e.is_integer(), key, ": expected an array of integers", where(key));
    out.push_back(*e.value<int64_t>());
  }
  return out;
}

std::string Config::to_toml() const {
  std::ostringstream os;
  os << toml::toml_formatter(table, toml::format_flags::none);
  return os.str() + "\n";
}

}  // namespace ot::experiment
