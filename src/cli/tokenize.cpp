// cli/tokenize.cpp: `ot tokenize` (text -> JSON id arrays) and `ot detokenize` (the reverse).
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"

namespace ot::cli {
namespace {

using json = nlohmann::json;

struct Options {
  std::string tokenizer, text, ids, input;
  bool jsonl = false, bos = false;
};

// Lines split on '\n' only (a '\r' stays part of its line); a final newline ends the last
// line rather than starting an empty one.
std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < s.size()) {
    std::size_t nl = s.find('\n', start);
    if (nl == std::string::npos) nl = s.size();
    lines.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

std::vector<int64_t> parse_ids(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // also out_of_range: a number too large
    fail(where, ": invalid JSON (", e.what(), "), expected a JSON array of integer token ids");
  }
  OT_REQUIRE(j.is_array(), where, ": expected a JSON array of integer token ids, found ", j.type_name());
  std::vector<int64_t> ids;
  ids.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    OT_REQUIRE(j[i].is_number_integer(), where, ": element ", i, " is ", j[i].dump(),
               ", expected an integer token id");
    ids.push_back(j[i].get<int64_t>());
  }
  return ids;
}

void print_ids(const std::vector<int64_t>& ids) { std::cout << json(ids).dump() << "\n"; }

void require_one_source(const CLI::Option* a, const CLI::Option* b) {
  if (a->count() + b->count() != 1)
    throw CLI::RequiredError("exactly one of " + a->get_name() + " or " + b->get_name());
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto o = std::make_shared<Options>();

  auto* tok = app.add_subcommand("tokenize", "Encode text into token ids, printed as a JSON array");
  tok->footer(
      "Exactly one of --text or --input is required. Without --jsonl the whole input is one\n"
      "text and one array is printed; with --jsonl every input line ('\\n'-separated) is\n"
      "encoded on its own and printed as one JSON array per line.");
  tok->add_option("--tokenizer", o->tokenizer,
                  "Tokenizer file or directory (tokenizer.json, vocab.json + merges.txt, "
                  "encoder.json + vocab.bpe, tokenizer.model, llama2.c *.bin)")
      ->required();
  auto* text = tok->add_option("--text", o->text, "Text to encode");
  auto* input = tok->add_option("--input", o->input, "File whose contents are encoded");
  tok->add_flag("--jsonl", o->jsonl, "One JSON array per input line");
  tok->add_flag("--bos", o->bos, "Prepend the BOS id (tokenizers that have one)");
  tok->callback([o, text, input] {
    require_one_source(text, input);
    auto t = load_tokenizer(o->tokenizer);
    std::string src = input->count() ? read_text_file(o->input) : o->text;
    if (!o->jsonl) {
      print_ids(t->encode(src, o->bos));
      return;
    }
    for (const auto& line : split_lines(src)) print_ids(t->encode(line, o->bos));
  });

  auto* detok = app.add_subcommand("detokenize", "Decode token ids (a JSON array) back into text");
  detok->footer(
      "Exactly one of --ids or --input is required. Without --jsonl the input is one JSON\n"
      "array and the decoded bytes are written to stdout as they are (no newline added);\n"
      "with --jsonl every non-empty input line is a JSON array and each decoded text is\n"
      "printed as one JSON string per line (invalid UTF-8 shown as U+FFFD).\n"
      "An id outside the vocabulary is an error (exit code 1).");
  detok->add_option("--tokenizer", o->tokenizer, "Tokenizer file or directory (as for tokenize)")
      ->required();
  auto* ids = detok->add_option("--ids", o->ids, "Token ids as a JSON array, e.g. '[15496, 995]'");
  auto* dinput = detok->add_option("--input", o->input, "File holding the JSON array(s)");
  detok->add_flag("--jsonl", o->jsonl, "One JSON array per input line; prints JSON strings");
  detok->callback([o, ids, dinput] {
    require_one_source(ids, dinput);
    auto t = load_tokenizer(o->tokenizer);
    const bool from_file = dinput->count() > 0;
    std::string src = from_file ? read_text_file(o->input) : o->ids;
    const std::string where = from_file ? o->input : std::string("--ids");
    if (!o->jsonl) {
      std::cout << t->decode(parse_ids(src, where));
      return;
    }
    std::size_t line_no = 0;
    for (const auto& line : split_lines(src)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      std::string text = t->decode(parse_ids(line, where + ":" + std::to_string(line_no)));
      std::cout << json(text).dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    }
  });
}

}  // namespace ot::cli
