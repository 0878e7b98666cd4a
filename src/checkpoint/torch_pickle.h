// checkpoint/torch_pickle.h: the pickle program (`data.pkl`) of a torch.save zip, read as a
// state dict: which tensors it names and where each lies in which storage. A small pickle
// machine that knows the opcodes and the few callables torch.save writes for a state dict
// (plain dicts, OrderedDicts with their _metadata, tensors and parameters, LibTorch's type
// tags); it builds no Python object and calls nothing, so a file can describe tensors and
// nothing else, whoever wrote it. Torch-free (the fuzz targets compile it alone).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ot {

// The typed storages torch.save names (`torch.FloatStorage`, ...).
enum class TorchStorageType { kFloat, kDouble, kHalf, kBFloat16, kLong, kInt, kShort, kChar, kByte, kBool };

std::size_t element_size(TorchStorageType t);
const char* storage_type_name(TorchStorageType t);  // "FloatStorage", ...

struct PickledTensor {
  std::string name;                     // the state-dict key
  TorchStorageType type = TorchStorageType::kFloat;
  std::string storage_key;              // its storage is the zip entry `<archive>/data/<key>`
  std::int64_t storage_numel = 0;       // elements in that storage
  std::int64_t offset = 0;              // storage offset, in elements
  std::vector<std::int64_t> sizes, strides;
};

// The tensors of the state dict pickled in the `size` bytes at `pickle`, in pickled order;
// with `entry` set, of the state dict held under that key of the pickled dict (training
// checkpoints such as {"model": state_dict, ...}; the other values are parsed, not used).
// Every tensor is checked to lie inside its storage, storage keys to be plain names (letters,
// digits, '_') and one storage to keep one type and size. Throws ot::Error naming `where`
// (the file and entry) and the byte at fault for anything else: another opcode or callable,
// a malformed program, a key that is not a string, a value that is not a tensor.
std::vector<PickledTensor> read_state_dict_pickle(const char* pickle, std::size_t size, const std::string& where,
                                                  const std::string& entry = "");

}  // namespace ot
