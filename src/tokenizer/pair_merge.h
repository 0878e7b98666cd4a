// tokenizer/pair_merge.h: the merge loop both BPE flavours share. Symbols form a linked
// list; a min-heap holds candidate merges of adjacent pairs ordered by (priority,
// position); popping in that order applies the best-priority merge first and, among equal
// priorities, the leftmost, with stale candidates (a side already merged away) skipped.
// GPT-2 BPE uses the merge rank as priority; llama2.c uses the negated vocabulary score.
// This visits the same merges as the reference loops' full rescans, in O(n log n).
#pragma once

#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

namespace ot::detail {

struct PairMerge {
  double priority;  // lower merges first
  int32_t merged;   // id of the merged symbol
};

// `ids`: the initial symbols. `lookup(left_id, right_id)` gives the merge of a pair, if any.
template <class Lookup>
std::vector<int32_t> merge_pairs(const std::vector<int32_t>& ids, Lookup&& lookup) {
  struct Sym {
    int32_t id, prev, next;
  };
  struct Cand {
    double priority;
    int32_t left, left_id, right_id, merged;
    bool operator>(const Cand& o) const { return priority != o.priority ? priority > o.priority : left > o.left; }
  };
  const auto n = static_cast<int32_t>(ids.size());
  std::vector<Sym> sym(ids.size());
  for (int32_t i = 0; i < n; ++i) sym[i] = {ids[i], i - 1, i + 1 < n ? i + 1 : -1};
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = sym[left].next;
    if (right < 0) return;
    std::optional<PairMerge> m = lookup(sym[left].id, sym[right].id);
    if (m) heap.push({m->priority, left, sym[left].id, sym[right].id, m->merged});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    Sym& l = sym[c.left];
    if (l.id != c.left_id) continue;  // stale: the left symbol changed or died
    const int32_t r = l.next;
    if (r < 0 || sym[r].id != c.right_id) continue;  // stale: the right neighbour changed
    l.id = c.merged;
    l.next = sym[r].next;
    if (l.next >= 0) sym[l.next].prev = c.left;
    sym[r].id = -1;
    push(l.prev);
    push(c.left);
  }
  std::vector<int32_t> out;
  if (n > 0)
    for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
  return out;
}

}  // namespace ot::detail
