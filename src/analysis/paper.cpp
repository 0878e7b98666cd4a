// analysis/paper.cpp: reading analysis/paper_numbers.csv (see paper.h).
#include "analysis/paper.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "util/error.h"
#include "util/fs.h"

namespace ot::analysis {

namespace {

// One CSV line into fields: commas separate, a field may be double-quoted ("" is a quote).
std::vector<std::string> split_csv_line(const std::string& line, const std::string& where) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"' && fields.back().empty()) {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  OT_REQUIRE(!quoted, where, ": unterminated double quote");
  return fields;
}

}  // namespace

PaperRef parse_paper_ref(const std::string& text, const std::string& where) {
  const std::size_t colon = text.find(':');
  const bool ok = colon != std::string::npos && colon > 0 && colon + 1 < text.size() &&
                  text.find(':', colon + 1) == std::string::npos;
  OT_REQUIRE(ok, where, ": paper_table '", text, "' should be TABLE:MODEL, e.g. table1:opt-1.3b, ",
             "table2:bloom-7.1b or efficiency:gpt2-xl");
  return {text.substr(0, colon), text.substr(colon + 1)};
}

PaperNumbers PaperNumbers::load(const std::string& path) {
  PaperNumbers p;
  p.path_ = path;
  std::istringstream in(read_text_file(path));
  std::string line;
  int line_no = 0;
  bool header_seen = false;
  const std::vector<std::string> header = {"table", "model", "setting", "task", "metric", "value"};
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(line_no);
    std::vector<std::string> f = split_csv_line(line, where);
    if (!header_seen) {
      OT_REQUIRE(f == header, where, ": expected the header 'table,model,setting,task,metric,value'");
      header_seen = true;
      continue;
    }
    OT_REQUIRE(f.size() == header.size(), where, ": expected 6 fields (table,model,setting,task,metric,value), got ",
               f.size());
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(f[5].c_str(), &end);
    OT_REQUIRE(!f[5].empty() && end != nullptr && *end == '\0' && errno == 0 && std::isfinite(v), where,
               ": value '", f[5], "' is not a number");
    OT_REQUIRE(!f[0].empty() && !f[1].empty() && !f[2].empty() && !f[4].empty(), where,
               ": table, model, setting and metric must not be empty");
    p.numbers_.push_back({f[0], f[1], f[2], f[3], f[4], v});
  }
  OT_REQUIRE(header_seen, path, ": empty; expected the header 'table,model,setting,task,metric,value' and rows");
  return p;
}

std::vector<PaperNumber> PaperNumbers::select(const PaperRef& ref) const {
  std::vector<PaperNumber> out;
  for (const PaperNumber& n : numbers_) {
    if (n.table == ref.table && n.model == ref.model) out.push_back(n);
  }
  return out;
}

}  // namespace ot::analysis
