// util/torch_pch.h: the precompiled header shared by every LibTorch translation unit.
// Compiling <torch/torch.h> costs ~20 s per file; precompiling it once makes a clean
// build of the whole project take minutes, not a quarter of an hour, on 2 cores.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
