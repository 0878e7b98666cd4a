// analysis/paper.h: the Offsite-Tuning paper's published numbers (analysis/paper_numbers.csv,
// typed in from ../shared/PAPER.md: Tables 1, 2 and 3, the efficiency table, and GradOT's
// OPT-1.3B averages from section 4) and the `paper_table` attribute that points a group of
// runs at them ("table1:opt-1.3b", "gradot:crash").
#pragma once

#include <string>
#include <vector>

namespace ot::analysis {

// One published number, as printed: accuracies in %, perplexities as is, throughput and
// memory as the paper's efficiency figure shows them.
struct PaperNumber {
  std::string table;    // "table1", "table2", "table3", "efficiency", "gradot"
  std::string model;    // "gpt2-xl", "opt-1.3b", ...; gradot: the row of its table ("crash", "gradot", ...)
  std::string setting;  // zs_full, zs_emulator, ft_full, ft_emulator, plugin, or a difference (privacy_gap);
                        // efficiency: ft, ft_lora, ot, ot_lora
  std::string task;     // openbookqa, ..., wikitext, average_8 (the 8-task average); empty for efficiency rows
  std::string metric;   // acc, perplexity, tokens_per_s, peak_memory_mb
  double value = 0;
};

// A parsed `paper_table` attribute.
struct PaperRef {
  std::string table, model;
  std::string text() const { return table + ":" + model; }
};

// "table1:opt-1.3b" -> {table1, opt-1.3b}; throws ot::Error naming `where` unless the text
// is exactly two non-empty parts joined by ':'.
PaperRef parse_paper_ref(const std::string& text, const std::string& where);

class PaperNumbers {
 public:
  // Reads the CSV: header table,model,setting,task,metric,value; '#' starts a comment
  // line; fields may be double-quoted. Throws ot::Error naming the file and line.
  static PaperNumbers load(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<PaperNumber>& numbers() const { return numbers_; }
  // The rows of one table and model, in file order (empty if there are none).
  std::vector<PaperNumber> select(const PaperRef& ref) const;

 private:
  std::string path_;
  std::vector<PaperNumber> numbers_;
};

}  // namespace ot::analysis
