// offsite/cka.h: representation-similarity layer selection (CRaSh, PAPER.md section 4).
// The outputs of the middle blocks on calibration data (text, or images for an encoder) are
// compared with linear CKA;
// adjacent blocks are clustered bottom-up (always merging the adjacent pair of clusters
// whose boundary blocks are most similar) until k clusters remain, and the middle block
// of each cluster (cluster[len / 2]) is kept.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "data/batch.h"
#include "model/block_model.h"
#include "model/decoder_lm.h"

namespace ot {

// Linear CKA of two representations X (N, C1), Y (N, C2) of the same N examples:
// ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), with column-centred Xc, Yc.
double linear_cka(const at::Tensor& x, const at::Tensor& y);

// Adjacent agglomerative clustering of n layers into k clusters given the similarity
// sim(i, i+1) of neighbours (size n - 1 would not be enough after merges, so the full
// n x n matrix is passed). Returns the kept index of each cluster.
std::vector<int64_t> cluster_adjacent_layers(const std::vector<std::vector<double>>& sim, int64_t k);

// Outputs of the middle blocks [bottom, n - top) of `model` on `batches` (the
// representations of real tokens, or of every token of an image, flattened to (N, C)), their
// CKA matrix, and the clustered selection of k blocks, relative to the middle.
std::vector<int64_t> cka_select_middle_blocks(BlockModelImpl& model, int64_t bottom, int64_t top, int64_t k,
                                              const std::vector<Batch>& batches);
inline std::vector<int64_t> cka_select_middle_blocks(DecoderLM& model, int64_t bottom, int64_t top, int64_t k,
                                                     const std::vector<Batch>& batches) {
  return cka_select_middle_blocks(*model, bottom, top, k, batches);
}

}  // namespace ot
