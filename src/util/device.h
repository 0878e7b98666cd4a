// util/device.h: parsing of the --device and dtype options shared by every command
// ("cpu", "cuda", "cuda:1"; "fp32", "bf16", "fp16" and their long spellings).
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace ot {

// Throws ot::Error naming `option` when `text` is not a device this build can use.
c10::Device parse_device(const std::string& text, const std::string& option = "--device");

// fp32|float32|float, bf16|bfloat16, fp16|float16|half.
c10::ScalarType parse_dtype(const std::string& text, const std::string& option = "--dtype");

// Short name used in files and logs: fp32, bf16, fp16 (others: their c10 name).
std::string dtype_name(c10::ScalarType t);

// The safetensors spelling: F32, BF16, F16, F64, I64, I32, I16, I8, U8, BOOL.
std::string safetensors_dtype_name(c10::ScalarType t);

}  // namespace ot
