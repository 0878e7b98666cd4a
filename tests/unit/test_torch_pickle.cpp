// tests/unit/test_torch_pickle.cpp: the pytorch_model.bin reader's own parts, the pickle
// machine (checkpoint/torch_pickle.h) and the zip entries (checkpoint/torch_zip.h), against
// LibTorch's unpickler on every torch.save file in ../shared and on files LibTorch writes, and
// on pickles and zips written here: the forms torch.save uses (plain dicts, OrderedDicts with
// _metadata, parameters, deflated entries, big-endian storages) and hostile ones (calls of
// anything else, malformed programs, views outside their storage, cycles, deep nesting, a
// damaged byte), each one ot::Error naming the file and what is wrong.
#include <ATen/ATen.h>
#include <torch/serialize.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "checkpoint/torch_bin.h"
#include "checkpoint/torch_pickle.h"
#include "checkpoint/torch_zip.h"
#include "test_support.h"
#include "util/error.h"

namespace {

using ot::test::expect_error;
using ot::test::slurp;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// ---------------------------------------------------------------- writers for the tests

// A pickle program, opcode by opcode (protocol 2, as torch.save writes).
struct Pickle {
  std::string b = std::string("\x80\x02", 2);
  Pickle& op(char c) { b += c; return *this; }
  Pickle& str(const std::string& s) {
    b += 'X';
    for (int k = 0; k < 4; ++k) b += static_cast<char>((s.size() >> (8 * k)) & 0xff);
    b += s;
    return *this;
  }
  Pickle& int1(int v) { b += 'K'; b += static_cast<char>(v); return *this; }
  Pickle& global(const std::string& module, const std::string& name) {
    b += 'c' + module + '\n' + name + '\n';
    return *this;
  }
  Pickle& put(int i) { b += 'q'; b += static_cast<char>(i); return *this; }
  Pickle& get(int i) { b += 'h'; b += static_cast<char>(i); return *this; }
  // _rebuild_tensor_v2(storage(type, key, numel), offset, sizes, strides, False, OrderedDict())
  Pickle& tensor(const std::string& type, const std::string& key, int numel, int offset, std::vector<int> sizes,
                 std::vector<int> strides) {
    global("torch._utils", "_rebuild_tensor_v2").op('(');
    op('(').str("storage").global("torch", type).str(key).str("cpu").int1(numel).op('t').op('Q');
    int1(offset);
    op('(');
    for (int s : sizes) int1(s);
    op('t').op('(');
    for (int s : strides) int1(s);
    op('t').op('\x89').global("collections", "OrderedDict").op(')').op('R').op('t').op('R');
    return *this;
  }
  std::string done() { return b + '.'; }
};

std::vector<ot::PickledTensor> read(const std::string& pickle, const std::string& entry = "") {
  return ot::read_state_dict_pickle(pickle.data(), pickle.size(), "m.bin: archive/data.pkl", entry);
}

// A zip archive of (name, bytes) entries, stored or deflated, without zip64 (which
// read_zip_directory takes as optional).
std::string zip(const std::vector<std::pair<std::string, std::string>>& entries, bool deflated) {
  auto u16 = [](std::string& o, unsigned v) { o += static_cast<char>(v & 0xff); o += static_cast<char>(v >> 8); };
  auto u32 = [&](std::string& o, std::uint32_t v) { u16(o, v & 0xffff); u16(o, v >> 16); };
  std::string out, central;
  for (const auto& [name, bytes] : entries) {
    std::string data = bytes;
    if (deflated) {
      z_stream z{};
      deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
      data.assign(deflateBound(&z, bytes.size()), '\0');
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
      z.avail_in = static_cast<uInt>(bytes.size());
      z.next_out = reinterpret_cast<Bytef*>(data.data());
      z.avail_out = static_cast<uInt>(data.size());
      EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
      data.resize(z.total_out);
      deflateEnd(&z);
    }
    const auto crc = static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(bytes.data()),
                                                      static_cast<uInt>(bytes.size())));
    const auto offset = static_cast<std::uint32_t>(out.size());
    std::string common;  // version needed .. extra length, shared by both headers
    u16(common, 20), u16(common, 0), u16(common, deflated ? 8 : 0), u16(common, 0), u16(common, 0);
    u32(common, crc), u32(common, static_cast<std::uint32_t>(data.size())),
        u32(common, static_cast<std::uint32_t>(bytes.size()));
    u16(common, static_cast<unsigned>(name.size())), u16(common, 0);
    u32(out, 0x04034b50);
    out += common + name + data;
    u32(central, 0x02014b50), u16(central, 20);
    central += common;
    u16(central, 0), u16(central, 0), u16(central, 0), u32(central, 0), u32(central, offset);
    central += name;
  }
  const auto cd_offset = static_cast<std::uint32_t>(out.size());
  out += central;
  u32(out, 0x06054b50), u16(out, 0), u16(out, 0), u16(out, static_cast<unsigned>(entries.size())),
      u16(out, static_cast<unsigned>(entries.size()));
  u32(out, static_cast<std::uint32_t>(central.size())), u32(out, cd_offset), u16(out, 0);
  return out;
}

std::string floats(std::vector<float> v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

// LibTorch's own reading of a trusted file, as the reference.
ot::StateDict libtorch_load(const std::string& path) {
  const std::string bytes = slurp(path);
  const c10::IValue root = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  ot::StateDict out;
  for (const auto& item : root.toGenericDict()) out.emplace(item.key().toStringRef(), item.value().toTensor());
  return out;
}

void expect_same(const ot::StateDict& ours, const ot::StateDict& ref, const std::string& what) {
  ASSERT_EQ(ours.size(), ref.size()) << what;
  for (const auto& [name, t] : ref) {
    ASSERT_TRUE(ours.count(name)) << what << ": " << name;
    const at::Tensor& o = ours.at(name);
    EXPECT_EQ(o.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(o.sizes(), t.sizes()) << name;
    EXPECT_EQ(o.strides(), t.strides()) << name;
    EXPECT_EQ(o.storage_offset(), t.storage_offset()) << name;
    EXPECT_TRUE(o.equal(t)) << what << ": " << name;
  }
}

// ---------------------------------------------------------------- real files

TEST(TorchPickle, EveryTorchSaveFileInSharedReadsAsLibTorchReadsIt) {
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(ot::test::shared_path("fixtures"))) {
    if (e.path().filename() != "pytorch_model.bin") continue;
    expect_same(ot::load_torch_bin(e.path().string()), libtorch_load(e.path().string()), e.path().string());
    ++files;
  }
  EXPECT_GE(files, 12);  // hf-parity, hf-vision, hf-families
}

TEST(TorchPickle, FilesLibTorchWritesReadAsLibTorchReadsThem) {
  ot::test::TempDir tmp;
  c10::impl::GenericDict d(c10::StringType::get(), c10::TensorType::get());
  const at::Tensor emb = at::arange(12, at::kFloat).reshape({3, 4});
  d.insert("embed.weight", emb);
  d.insert("lm_head.weight", emb);                      // tied: one storage
  d.insert("column", emb.select(1, 2));                 // a strided view with an offset
  d.insert("h", at::ones({3}, at::kHalf));
  d.insert("b", at::full({2}, 1.5, at::kBFloat16));
  d.insert("i", at::arange(3, at::kLong));
  d.insert("mask", at::tensor({1, 0, 1}).to(at::kBool));
  d.insert("scalar", at::scalar_tensor(7.0, at::kDouble));
  d.insert("empty", at::zeros({0, 4}));
  const std::vector<char> bytes = torch::pickle_save(d);
  const std::string p = tmp.file("pytorch_model.bin");
  write_bytes(p, std::string(bytes.begin(), bytes.end()));
  const ot::StateDict ours = ot::load_torch_bin(p);
  expect_same(ours, libtorch_load(p), p);
  // One storage per pickled storage, as torch.load gives (LibTorch's pickle_load copies).
  EXPECT_TRUE(ours.at("embed.weight").storage().is_alias_of(ours.at("lm_head.weight").storage()));
  EXPECT_TRUE(ours.at("column").storage().is_alias_of(ours.at("embed.weight").storage()));
  EXPECT_FALSE(ours.at("h").storage().is_alias_of(ours.at("embed.weight").storage()));
}

// ---------------------------------------------------------------- torch.save's forms

// torch.save(model.state_dict()): an OrderedDict, parameters, and _metadata set by BUILD.
TEST(TorchPickle, OrderedDictWithMetadataAndParameters) {
  Pickle p;
  p.global("collections", "OrderedDict").op(')').op('R').put(0).op('(');
  p.str("w").tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1});
  p.str("p").global("torch._utils", "_rebuild_parameter").op('(');
  p.tensor("FloatStorage", "1", 2, 0, {2}, {1}).op('\x88').global("collections", "OrderedDict").op(')').op('R');
  p.op('t').op('R');
  p.op('u');
  // state = {'_metadata': OrderedDict({'': {'version': 1}})}
  p.op('}').str("_metadata").global("collections", "OrderedDict").op(')').op('R').str("").op('}').str("version");
  p.int1(1).op('s').op('s').op('s').op('b');
  const auto t = read(p.done());
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].name, "w");
  EXPECT_EQ(t[0].sizes, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(t[1].name, "p");
  EXPECT_EQ(t[1].storage_key, "1");

  // The same program in a zip, stored and deflated, loads to the values written.
  for (bool deflate : {false, true}) {
    ot::test::TempDir tmp;
    const std::string path = tmp.file("m.bin");
    write_bytes(path, zip({{"m/data.pkl", p.done()}, {"m/byteorder", "little"}, {"m/data/0", floats({0, 1, 2, 3, 4, 5})},
                           {"m/data/1", floats({-1, 0.5f})}, {"m/version", "3\n"}},
                          deflate));
    const ot::StateDict sd = ot::load_torch_bin(path);
    EXPECT_TRUE(sd.at("w").equal(at::arange(6, at::kFloat).reshape({2, 3}))) << deflate;
    EXPECT_TRUE(sd.at("p").equal(at::tensor({-1.0f, 0.5f}))) << deflate;
  }
}

TEST(TorchPickle, BigEndianStoragesAreSwapped) {
  ot::test::TempDir tmp;
  const std::string path = tmp.file("m.bin");
  std::string be = floats({1.0f, -2.0f});
  for (std::size_t k = 0; k < be.size(); k += 4) std::reverse(be.begin() + k, be.begin() + k + 4);
  Pickle p;
  p.op('}').str("x").tensor("FloatStorage", "0", 2, 0, {2}, {1}).op('s');
  write_bytes(path, zip({{"m/data.pkl", p.done()}, {"m/byteorder", "big"}, {"m/data/0", be}}, false));
  EXPECT_TRUE(ot::load_torch_bin(path).at("x").equal(at::tensor({1.0f, -2.0f})));
  write_bytes(path, zip({{"m/data.pkl", p.done()}, {"m/byteorder", "middle"}, {"m/data/0", be}}, false));
  expect_error([&] { ot::load_torch_bin(path); }, {"m.bin", "m/byteorder", "'middle'", "'little' or 'big'"});
}

// ---------------------------------------------------------------- hostile pickles

TEST(TorchPickle, CallsOfAnythingButTensorsAreRefusedByName) {
  Pickle p;
  p.global("os", "system").op('(').str("echo hi").op('t').op('R');
  expect_error([&] { read(p.done()); }, {"m.bin: archive/data.pkl", "byte", "calls 'os.system'", "nothing else is ever called"});
  Pickle q;
  q.op('}').str("x").global("torch._utils", "_rebuild_qtensor").op(')').op('R').op('s');
  expect_error([&] { read(q.done()); }, {"calls 'torch._utils._rebuild_qtensor'"});
  Pickle r;
  r.op('}').str("x").op('(').str("storage").global("torch", "QUInt8Storage").str("0").str("cpu").int1(1).op('t').op('Q');
  expect_error([&] { read(r.done()); }, {"storage type 'torch.QUInt8Storage' is not supported"});
}

TEST(TorchPickle, MalformedProgramsAreOneErrorWithTheByte) {
  expect_error([&] { read(std::string("\x80\x02", 2)); }, {"ends without STOP"});
  expect_error([&] { read(std::string("\x80\x02s.", 4)); }, {"byte 2", "empty stack"});
  expect_error([&] { read(std::string("\x80\x02h\x05.", 5)); }, {"byte 2", "GET of a memo entry never PUT"});
  expect_error([&] { read(std::string("\x80\x02t.", 4)); }, {"MARK that was never set"});
  expect_error([&] { read(std::string("\x80\x02}}.", 5)); }, {"STOP with 2 values"});
  expect_error([&] { read(std::string("\x80\x02X\xff\xff\xff\x7f", 7)); }, {"runs past the end"});
  expect_error([&] { read(std::string("\x80\x09}.", 4)); }, {"pickle protocol 9"});
  expect_error([&] { read(std::string("\x80\x02\x8e", 3)); }, {"opcode 0x8e"});
  expect_error([&] { read(std::string("\x80\x02\x8a\x09", 4)); }, {"more than 64 bits"});
  expect_error([&] { read(Pickle().op(']').done()); }, {"expected a pickled state dict", "got a list"});
}

TEST(TorchPickle, StateDictShapeIsChecked) {
  expect_error([&] { read(Pickle().op('}').int1(1).tensor("FloatStorage", "0", 1, 0, {1}, {1}).op('s').done()); },
               {"key of type int, expected str"});
  expect_error([&] { read(Pickle().op('}').str("model").op('}').op('s').done()); },
               {"entry 'model' is a dict", "a training checkpoint holding its state dict under this key?"});
  // Such a checkpoint's state dict is read by naming its key; the other values are not used.
  Pickle held;
  held.op('}').op('(').str("epoch").int1(3).str("model").op('}').str("w");
  held.tensor("FloatStorage", "0", 2, 0, {2}, {1}).op('s').op('u');
  const auto got = read(held.done(), "model");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].name, "w");
  expect_error([&] { read(held.done()); }, {"entry 'epoch' is a int, expected a Tensor"});
  expect_error([&] { read(held.done(), "optimizer"); }, {"m.bin", "no key 'optimizer'"});
  expect_error([&] { read(held.done(), "epoch"); }, {"expected a pickled state dict", "under 'epoch'", "got a int"});
  Pickle twice;
  twice.op('}').op('(').str("a").tensor("FloatStorage", "0", 1, 0, {1}, {1});
  twice.str("a").tensor("FloatStorage", "1", 1, 0, {1}, {1}).op('u');
  expect_error([&] { read(twice.done()); }, {"key 'a' appears twice"});
  Pickle retyped;
  retyped.op('}').op('(').str("a").tensor("FloatStorage", "0", 4, 0, {1}, {1});
  retyped.str("b").tensor("HalfStorage", "0", 8, 0, {1}, {1}).op('u');
  expect_error([&] { read(retyped.done()); }, {"storage '0' is pickled as FloatStorage of 4", "HalfStorage of 8"});
}

TEST(TorchPickle, ViewsOutsideTheirStorageAndOddKeysAreRefused) {
  // 2 x 3 with strides (3, 1) from offset 1 reaches element 6 of a storage of 6.
  expect_error([&] { read(Pickle().op('}').str("w").tensor("FloatStorage", "0", 6, 1, {2, 3}, {3, 1}).op('s').done()); },
               {"reaches element 6 of storage '0', which holds 6"});
  EXPECT_EQ(read(Pickle().op('}').str("w").tensor("FloatStorage", "0", 7, 1, {2, 3}, {3, 1}).op('s').done()).size(), 1u);
  // An empty tensor may sit anywhere.
  EXPECT_EQ(read(Pickle().op('}').str("w").tensor("FloatStorage", "0", 0, 5, {0, 3}, {3, 1}).op('s').done()).size(), 1u);
  expect_error([&] { read(Pickle().op('}').str("w").tensor("FloatStorage", "../x", 1, 0, {1}, {1}).op('s').done()); },
               {"storage key '../x' is not a plain name"});
  expect_error([&] { read(Pickle().op('}').str("w").tensor("FloatStorage", "0", 2, 0, {2}, {1, 1}).op('s').done()); },
               {"size and stride are not tuples of as many ints"});
}

TEST(TorchPickle, CyclesAndDeepNestingCannotBeBuilt) {
  // a = []; b = [a]; a.append(b) would close a cycle: a is sealed once inside b.
  Pickle cycle;
  cycle.op(']').put(0).op(']').get(0).op('a').put(1).get(0).get(1).op('a');
  expect_error([&] { read(cycle.done()); }, {"APPEND changes a list already inside another value"});
  Pickle deep;
  for (int k = 0; k < 40; ++k) deep.op('(');
  for (int k = 0; k < 40; ++k) deep.op('t');
  expect_error([&] { read(deep.done()); }, {"nest deeper than 32 levels"});
}

// ---------------------------------------------------------------- zip entries

TEST(TorchPickle, DamagedEntriesAndMissingStoragesAreRefused) {
  ot::test::TempDir tmp;
  const std::string path = tmp.file("m.bin");
  Pickle p;
  p.op('}').str("x").tensor("FloatStorage", "0", 2, 0, {2}, {1}).op('s');
  for (bool deflate : {false, true}) {
    std::string good = zip({{"m/data.pkl", p.done()}, {"m/data/0", floats({1, 2})}}, deflate);
    std::string bad = good;
    const std::size_t data0 = bad.find("m/data/0") + 8;  // the entry's data follows its local name
    bad[data0 + 1] ^= 0x10;
    write_bytes(path, bad);
    expect_error([&] { ot::load_torch_bin(path); }, {"m.bin", "entry 'm/data/0'"});
  }
  write_bytes(path, zip({{"m/data.pkl", p.done()}}, false));
  expect_error([&] { ot::load_torch_bin(path); }, {"m.bin", "tensor 'x' lies in storage '0'", "no entry 'm/data/0'"});
  write_bytes(path, zip({{"m/data.pkl", p.done()}, {"m/data/0", floats({1, 2, 3})}}, false));
  expect_error([&] { ot::load_torch_bin(path); }, {"entry 'm/data/0' holds 12 bytes", "2 elements of 4 bytes"});
  write_bytes(path, zip({{"m/data.pkl", p.done()}, {"n/data/0", floats({1, 2})}}, false));
  expect_error([&] { ot::load_torch_bin(path); }, {"zip entries in two folders ('m' and 'n')"});
  write_bytes(path, zip({{"m/data/0", floats({1, 2})}}, false));
  expect_error([&] { ot::load_torch_bin(path); }, {"no 'm/data.pkl' entry"});
  write_bytes(path, zip({{"m/data.pkl", p.done()}, {"m/data.pkl", p.done()}}, false));
  expect_error([&] { ot::load_torch_bin(path); }, {"entry 'm/data.pkl' appears twice"});
  Pickle flags;
  flags.op('}').str("m").tensor("BoolStorage", "0", 2, 0, {2}, {1}).op('s');
  write_bytes(path, zip({{"m/data.pkl", flags.done()}, {"m/data/0", std::string("\x01\x02", 2)}}, false));
  expect_error([&] { ot::load_torch_bin(path); }, {"BoolStorage", "byte 2 at element 1, expected 0 or 1"});
}

}  // namespace
