// offsite/layer_selection.h: which middle blocks an emulator keeps. Given the m middle
// blocks of a model (after the l bottom and r top adapter blocks) and a budget k:
//   uniform  the paper's uniform_choose_layers: idx_i = round(i * (m-1)/(k-1)) with
//            Python's round-half-to-even (m=6, k=3 -> [0, 2, 5]); first and last kept
//   floor    FedBiOT's variant: idx_i = floor(i * (m-1)/(k-1))
//   list     explicit indices ("0,3,5"), relative to the middle blocks
// Representation-similarity selection (CKA clustering, CRaSh) lives in offsite/cka.h
// because it needs activations. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ot {

// Python's round() on a double: nearest integer, ties to the even neighbour.
int64_t round_half_even(double x);

std::vector<int64_t> uniform_layer_indices(int64_t m, int64_t k);
std::vector<int64_t> floor_layer_indices(int64_t m, int64_t k);

// Parses "0,2,5" into middle-block indices; checks range [0, m), strictly increasing
// order and count. `option` names the flag/key in errors.
std::vector<int64_t> parse_layer_list(const std::string& text, int64_t m, const std::string& option);

// Validates a split of n blocks into l bottom + middle + r top adapter blocks with an
// emulator of k blocks; throws ot::Error with the offending numbers.
void check_offsite_split(int64_t n, int64_t l, int64_t r, int64_t k);

}  // namespace ot
