// cli/brown_text.cpp: `ot brown-text --corpus DIR [--genres j,k] [--exclude-genres j]
// [--split train|validation|test|all] [--validation-fraction F] [--test-fraction F] --out FILE`:
// Brown Corpus paragraphs (tags stripped, lightly detokenized; data/brown.h) as plain text.
#include <iostream>
#include <memory>
#include <set>

#include "cli/commands.h"
#include "cli/common.h"
#include "data/brown.h"
#include "util/error.h"

namespace ot::cli {

void register_brown_text(CLI::App& app) {
  struct Args {
    std::string corpus, genres, exclude, split = "all", out;
    double validation = 0.1, test = 0.1;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("brown-text", "Write Brown Corpus text (by genre and split), one paragraph a line");
  cmd->footer(
      "Genres are the letters of the file names (ca01: a = news); --genres keeps only those,\n"
      "--exclude-genres drops those. Splits are by whole files: within each genre, files\n"
      "sorted by name, the last ceil(test_fraction * n) are test, the ceil(validation_fraction\n"
      "* n) before them validation, the rest train. Tags are stripped; `` and '' become \".");
  cmd->add_option("--corpus", args->corpus, "Brown Corpus directory (cats.txt, ca01 .. cr09)")->required();
  auto* genres = cmd->add_option("--genres", args->genres, "genre letters to keep, e.g. j,k (default: all)");
  auto* exclude = cmd->add_option("--exclude-genres", args->exclude, "genre letters to drop, e.g. j");
  cmd->add_option("--split", args->split, "train, validation, test or all")->capture_default_str();
  cmd->add_option("--validation-fraction", args->validation, "share of each genre's files for validation")
      ->capture_default_str()->check(in_range(0.0, 0.9));
  cmd->add_option("--test-fraction", args->test, "share of each genre's files for test")->capture_default_str()->check(in_range(0.0, 0.9));
  cmd->add_option("--out", args->out, "text file to write")->required();
  cmd->callback([args, genres, exclude] {
    BrownSelection sel;
    if (genres->count()) sel.genres = parse_genre_letters(args->genres, "--genres");
    if (exclude->count()) sel.exclude_genres = parse_genre_letters(args->exclude, "--exclude-genres");
    sel.split = parse_brown_split(args->split);
    sel.validation_fraction = args->validation;
    sel.test_fraction = args->test;
    const std::vector<BrownDocument> docs = select_brown(load_brown(args->corpus), sel);
    const BrownTextStats stats = write_brown_text(docs, args->out);
    std::set<char> letters;
    for (const auto& d : docs) letters.insert(d.genre_letter);
    std::string genre_text;
    for (char c : letters) genre_text += std::string(genre_text.empty() ? "" : ",") + c;
    std::cout << "files: " << stats.files << " (genres " << genre_text << ", split " << brown_split_name(sel.split)
              << ")\n"
              << "paragraphs: " << stats.paragraphs << "\n"
              << "bytes written: " << stats.bytes << " (" << args->out << ")\n";
  });
}

}  // namespace ot::cli
