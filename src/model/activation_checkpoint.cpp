// model/activation_checkpoint.cpp: see activation_checkpoint.h.
#include "model/activation_checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "model/precision.h"

namespace ot {

namespace {

struct Recompute : torch::CustomClassHolder {
  BlockFunction fn;
  explicit Recompute(BlockFunction f) : fn(std::move(f)) {}
};

// The generators a block's dropout can draw from: the CPU's, and the CUDA device's when
// the block runs there.
struct RngStates {
  at::Tensor cpu, cuda;
  static RngStates capture(const c10::Device& d) {
    RngStates s;
    s.cpu = at::detail::getDefaultCPUGenerator().get_state();
    if (d.is_cuda()) s.cuda = at::globalContext().defaultGenerator(d).get_state();
    return s;
  }
  void restore(const c10::Device& d) const {
    at::Generator cpu_gen = at::detail::getDefaultCPUGenerator();
    cpu_gen.set_state(cpu);
    if (d.is_cuda() && cuda.defined()) {
      at::Generator g = at::globalContext().defaultGenerator(d);
      g.set_state(cuda);
    }
  }
};

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  // h (B, T, C); anchor: an empty tensor that requires grad, so the output does even when
  // h does not (a frozen bottom): the block's own parameters still need their gradients.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& h,
                                                const at::Tensor& anchor, c10::intrusive_ptr<Recompute> fn) {
    (void)anchor;
    const c10::Device dev = h.device();
    RngStates rng = RngStates::capture(dev);
    AutocastState ac = AutocastState::current(dev);
    ctx->saved_data["fn"] = c10::IValue::make_capsule(fn);
    ctx->saved_data["cpu_rng"] = rng.cpu;
    if (rng.cuda.defined()) ctx->saved_data["cuda_rng"] = rng.cuda;
    ctx->saved_data["autocast"] = ac.enabled;
    ctx->saved_data["autocast_dtype"] = static_cast<int64_t>(ac.dtype);
    ctx->save_for_backward({h});
    return {fn->fn(h)};  // grad mode is off inside forward: nothing of the block is recorded
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const at::Tensor saved = ctx->get_saved_variables()[0];
    const c10::Device dev = saved.device();
    auto fn = ctx->saved_data["fn"].toCapsule();
    auto* recompute = static_cast<Recompute*>(fn.get());
    RngStates first;
    first.cpu = ctx->saved_data["cpu_rng"].toTensor();
    if (ctx->saved_data.count("cuda_rng")) first.cuda = ctx->saved_data["cuda_rng"].toTensor();
    AutocastState ac{ctx->saved_data["autocast"].toBool(),
                     static_cast<c10::ScalarType>(ctx->saved_data["autocast_dtype"].toInt())};

    at::Tensor x = saved.detach();
    x.requires_grad_(saved.requires_grad());
    at::Tensor y;
    {
      const RngStates now = RngStates::capture(dev);  // the backward pass's own state, put back below
      first.restore(dev);
      torch::AutoGradMode grad_on(true);
      AutocastRestore autocast(dev, ac);
      y = recompute->fn(x);
      now.restore(dev);
    }
    if (y.requires_grad()) torch::autograd::backward({y}, {grad_out[0]});
    at::Tensor gx = x.requires_grad() ? x.grad() : at::Tensor();
    return {gx, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor checkpointed(const BlockFunction& fn, const at::Tensor& h) {
  if (!torch::GradMode::is_enabled()) return fn(h);
  at::Tensor anchor = torch::empty({0}, h.options().requires_grad(true));
  return CheckpointFunction::apply(h, anchor, c10::make_intrusive<Recompute>(fn))[0];
}

}  // namespace ot
