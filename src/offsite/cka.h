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

// The linear CKA of every pair of representations (each (N, C_i), the same N examples): an
// m x m symmetric matrix with 1 on the diagonal (0 for a constant representation), each
// entry linear_cka's value, with each representation centred once.
std::vector<std::vector<double>> linear_cka_matrix(const std::vector<at::Tensor>& reps);

// Adjacent agglomerative clustering of n layers into k clusters given the similarity
// sim(i, i+1) of neighbours (size n - 1 would not be enough after merges, so the full
// n x n matrix is passed). Returns the kept index of each cluster.
std::vector<int64_t> cluster_adjacent_layers(const std::vector<std::vector<double>>& sim, int64_t k);

// The CKA matrix of the middle blocks and the blocks selected from it.
struct CkaSelection {
  int64_t first_block = 0;                     // the model block of row 0 (= bottom)
  std::vector<std::vector<double>> similarity;  // m x m linear CKA of every pair; diagonal 1
  std::vector<int64_t> kept;                   // relative to the middle
};

// Outputs of the middle blocks [bottom, n - top) of `model` on `batches` (the
// representations of real tokens, or of every token of an image, flattened to (N, C)), their
// CKA matrix (every pair, so that it can be recorded and drawn; the clustering reads only
// neighbours), and the clustered selection of k blocks.
CkaSelection cka_select_middle_blocks(BlockModelImpl& model, int64_t bottom, int64_t top, int64_t k,
                                      const std::vector<Batch>& batches);
inline CkaSelection cka_select_middle_blocks(DecoderLM& model, int64_t bottom, int64_t top, int64_t k,
                                             const std::vector<Batch>& batches) {
  return cka_select_middle_blocks(*model, bottom, top, k, batches);
}

}  // namespace ot
