#!/usr/bin/python3
"""bench/hf_opt_step.py: the reference side of `bench/vs_transformers.sh`.

One full fine-tuning step of an OPT-shaped causal LM (forward, shifted cross-entropy, backward,
gradient clipping at 1.0, AdamW, zero_grad) in PyTorch, op for op as Hugging Face transformers
4.35's OPTForCausalLM computes it in training mode and as its Trainer steps it:
  - positions from the cumulative sum of an all-ones attention mask, offset 2;
  - a (B, 1, T, T) additive causal mask of finfo.min, built per forward;
  - attention: q_proj scaled by D^-1/2, k/v projections reshaped to (B*H, T, D) by
    view/transpose/contiguous, bmm, + mask, max with finfo.min, softmax, dropout, bmm,
    transpose, reshape, out_proj;
  - pre-LN blocks, dropout on both residual branches, no dropout on the embeddings; LayerDrop's
    per-layer draw; the final LayerNorm; lm_head without bias, tied to the token embedding;
  - loss on logits[:, :-1].contiguous() against labels[:, 1:];
  - torch.nn.utils.clip_grad_norm_, torch.optim.AdamW with decay on all but biases and
    LayerNorm weights, Module.zero_grad().
With `--impl transformers` the model is transformers' own OPTForCausalLM (any importable
transformers: put its source or site-packages on PYTHONPATH), built from an OPTConfig of the
same shape, its loss from `labels=ids`; the data, optimizer, clipping and zero_grad are the
same. The re-statement (`--impl restated`, the default) needs only PyTorch, so the comparison
runs where transformers cannot be installed. Both run on the same PyTorch 1.13 and OpenBLAS as
`ot` (Debian's python3-torch and libtorch). Weights are random: speed does not depend on them.
Prints one JSON line: tokens/s, step seconds, the implementation and its version, and the fp32
GEMM rate (2048^2, same threads) measured in the same process before and after.

  bench/hf_opt_step.py [--impl restated|transformers] --threads 2 --layers 12 --hidden 768 --heads 12 --vocab 50272 \
                       --seq-len 512 --batch 1 --steps 5 --warmup 2
"""
import argparse
import json
import math
import time

import torch
from torch import nn
from torch.nn import functional as F


class Attention(nn.Module):
    def __init__(self, hidden, heads, p):
        super().__init__()
        self.h, self.d, self.p = heads, hidden // heads, p
        self.scaling = self.d ** -0.5
        self.k_proj = nn.Linear(hidden, hidden)
        self.v_proj = nn.Linear(hidden, hidden)
        self.q_proj = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, hidden)

    def heads(self, x, b, t):  # (B, T, C) -> (B, H, T, D), contiguous
        return x.view(b, t, self.h, self.d).transpose(1, 2).contiguous()

    def forward(self, x, mask):
        b, t, c = x.size()
        q = self.q_proj(x) * self.scaling
        k = self.heads(self.k_proj(x), b, t).view(b * self.h, t, self.d)
        v = self.heads(self.v_proj(x), b, t).view(b * self.h, t, self.d)
        q = self.heads(q, b, t).view(b * self.h, t, self.d)
        w = torch.bmm(q, k.transpose(1, 2))  # (B*H, T, T)
        w = w.view(b, self.h, t, t) + mask
        w = torch.max(w, torch.tensor(torch.finfo(w.dtype).min, device=w.device))
        w = F.softmax(w.view(b * self.h, t, t), dim=-1)
        w = F.dropout(w, p=0.0, training=self.training)  # attention_dropout 0.0 in OPT configs
        o = torch.bmm(w, v).view(b, self.h, t, self.d).transpose(1, 2).reshape(b, t, c)
        return self.out_proj(o)


class Block(nn.Module):
    def __init__(self, hidden, heads, ffn, p):
        super().__init__()
        self.p = p
        self.self_attn = Attention(hidden, heads, p)
        self.self_attn_layer_norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, ffn)
        self.fc2 = nn.Linear(ffn, hidden)
        self.final_layer_norm = nn.LayerNorm(hidden)

    def forward(self, x, mask):
        r = x
        x = self.self_attn(self.self_attn_layer_norm(x), mask)
        x = r + F.dropout(x, p=self.p, training=self.training)
        shape = x.shape
        x = x.reshape(-1, x.size(-1))
        r = x
        x = self.fc2(F.relu(self.fc1(self.final_layer_norm(x))))
        x = r + F.dropout(x, p=self.p, training=self.training)
        return x.view(shape)


class OPTLM(nn.Module):
    def __init__(self, layers, hidden, heads, ffn, vocab, positions, p):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, hidden, padding_idx=1)
        self.embed_positions = nn.Embedding(positions + 2, hidden)
        self.layers = nn.ModuleList([Block(hidden, heads, ffn, p) for _ in range(layers)])
        self.final_layer_norm = nn.LayerNorm(hidden)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)
        self.lm_head.weight = self.embed_tokens.weight
        self.layerdrop = 0.0

    def forward(self, ids):
        b, t = ids.shape
        x = self.embed_tokens(ids)
        attention_mask = torch.ones(b, t, dtype=torch.bool)
        lowest = torch.finfo(x.dtype).min
        causal = torch.full((t, t), lowest)
        cond = torch.arange(t)
        causal.masked_fill_(cond < (cond + 1).view(t, 1), 0)
        padding = (1.0 - attention_mask[:, None, None, :].to(x.dtype)).masked_fill(
            (1.0 - attention_mask[:, None, None, :].to(x.dtype)).bool(), lowest)
        mask = causal[None, None].expand(b, 1, t, t).masked_fill(padding.bool(), lowest)
        m = attention_mask.long()
        positions = (torch.cumsum(m, dim=1).type_as(m) * m).long() - 1
        x = x + self.embed_positions(positions + 2)
        for layer in self.layers:
            if self.training and torch.rand([]) < self.layerdrop:
                continue
            x = layer(x, mask)
        logits = self.lm_head(self.final_layer_norm(x)).contiguous()
        shift_logits = logits[..., :-1, :].contiguous()
        shift_labels = ids[..., 1:].contiguous()
        return F.cross_entropy(shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1))


def gemm_gflops(seconds=2.0, n=2048):
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        reps += 1
    return 2.0 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--ffn", type=int, default=0, help="0: 4 x hidden")
    ap.add_argument("--vocab", type=int, default=50272)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--impl", choices=["restated", "transformers"], default="restated")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    ffn, positions = a.ffn or 4 * a.hidden, max(2048, a.seq_len)
    if a.impl == "transformers":
        import transformers
        version = transformers.__version__
        config = transformers.OPTConfig(vocab_size=a.vocab, hidden_size=a.hidden, num_hidden_layers=a.layers,
                                        ffn_dim=ffn, num_attention_heads=a.heads, max_position_embeddings=positions,
                                        word_embed_proj_dim=a.hidden, dropout=a.dropout, attention_dropout=0.0,
                                        activation_dropout=0.0, layerdrop=0.0, do_layer_norm_before=True,
                                        enable_bias=True, layer_norm_elementwise_affine=True)
        hf_model = transformers.OPTForCausalLM(config)

        def forward(ids):
            return hf_model(input_ids=ids, labels=ids).loss

        model = hf_model
    else:
        version = torch.__version__
        model = OPTLM(a.layers, a.hidden, a.heads, ffn, a.vocab, positions, a.dropout)
        forward = model
    for mod in model.modules():  # OPT's init: normal(0, 0.02), zero biases
        if isinstance(mod, (nn.Linear, nn.Embedding)):
            mod.weight.data.normal_(0.0, 0.02)
        if isinstance(mod, nn.Linear) and mod.bias is not None:
            mod.bias.data.zero_()
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "layer_norm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "layer_norm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.0}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4)
    model.train()
    ids = torch.randint(0, a.vocab, (a.batch, a.seq_len))

    def step():
        loss = forward(ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        model.zero_grad()

    gemm_before = gemm_gflops()
    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    secs = (time.perf_counter() - t0) / a.steps
    gemm_after = gemm_gflops()
    print(json.dumps({"tokens_per_s": a.batch * a.seq_len / secs, "step_seconds": secs, "threads": a.threads,
                      "impl": a.impl, "version": version, "torch": torch.__version__, "gemm_gflops_before": gemm_before,
                      "gemm_gflops_after": gemm_after}))


if __name__ == "__main__":
    main()
