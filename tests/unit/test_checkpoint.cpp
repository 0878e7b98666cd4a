// tests/unit/test_checkpoint.cpp: safetensors reader/writer, pytorch_model.bin reader,
// Hugging Face checkpoint directories, the llama2.c importer and `ot convert`, including
// corrupt inputs (each must give one ot::Error naming what is wrong).
#include <ATen/ATen.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "checkpoint/hf_checkpoint.h"
#include "checkpoint/llama2c.h"
#include "checkpoint/safetensors.h"
#include "checkpoint/torch_bin.h"
#include "checkpoint/torch_zip.h"
#include "test_support.h"
#include "util/error.h"
#include "util/fs.h"

namespace {

using nlohmann::json;
namespace stdfs = std::filesystem;

using ot::test::slurp;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file from a raw header string and `data_bytes` zero bytes of data.
std::string safetensors_bytes(const std::string& header, std::size_t data_bytes) {
  std::string out(8, '\0');
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + std::string(data_bytes, '\0');
}

using ot::test::expect_error;

bool bit_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  at::Tensor ca = a.contiguous(), cb = b.contiguous();
  const auto n = static_cast<std::size_t>(ca.numel() * ca.element_size());
  return n == 0 || std::memcmp(ca.data_ptr(), cb.data_ptr(), n) == 0;
}

using ot::test::fixture_dir;

// ---------------------------------------------------------------- HF fixtures

class CheckpointFixtureParity : public ::testing::TestWithParam<std::string> {};

TEST_P(CheckpointFixtureParity, SafetensorsAndTorchBinAgree) {
  const std::string m = GetParam();
  const std::string dir = fixture_dir(m);
  json ref = json::parse(slurp(ot::test::shared_path("fixtures/hf-parity/" + m + ".json")));
  const json& keys = ref.at("state_dict_keys");

  ot::StateDict st = ot::SafetensorsFile::open(dir + "/model.safetensors").all();
  ot::StateDict bin = ot::load_torch_bin(dir + "/pytorch_model.bin");

  // The .bin holds the full state dict (tied lm_head.weight included); safetensors drops
  // the tied head and nothing else.
  std::set<std::string> bin_keys, st_keys, ref_keys;
  for (const auto& kv : bin) bin_keys.insert(kv.first);
  for (const auto& kv : st) st_keys.insert(kv.first);
  for (auto it = keys.begin(); it != keys.end(); ++it) ref_keys.insert(it.key());
  EXPECT_EQ(bin_keys, ref_keys);
  // transformers' default is a tied head; only llama's config unties it.
  const bool tied = ref.at("config").value("tie_word_embeddings", true);
  std::set<std::string> expected_st = ref_keys;
  if (tied) expected_st.erase("lm_head.weight");
  EXPECT_EQ(st_keys, expected_st);
  std::set<std::string> listed;
  for (const auto& k : ref.at("safetensors_keys")) listed.insert(k.get<std::string>());
  EXPECT_EQ(st_keys, listed);

  for (const auto& [name, t] : bin) {
    std::vector<int64_t> shape = keys.at(name).get<std::vector<int64_t>>();
    EXPECT_EQ(t.sizes().vec(), shape) << m << " " << name;
    EXPECT_EQ(t.scalar_type(), at::kFloat) << name;
    auto it = st.find(name);
    if (it == st.end()) continue;
    EXPECT_TRUE(bit_equal(t, it->second)) << m << " " << name;
  }
  if (tied) {
    const std::string emb = m == "opt"    ? "model.decoder.embed_tokens.weight"
                            : m == "gpt2" ? "transformer.wte.weight"
                                          : "transformer.word_embeddings.weight";
    ASSERT_TRUE(st.count(emb)) << emb;
    EXPECT_TRUE(bit_equal(bin.at("lm_head.weight"), st.at(emb)));
  }

  // The directory loader prefers safetensors.
  ot::WeightFiles wf = ot::find_weight_files(dir);
  EXPECT_EQ(wf.format, "safetensors");
  EXPECT_EQ(ot::load_hf_weights(dir).size(), st.size());
  EXPECT_EQ(ot::load_hf_config(dir).at("model_type").get<std::string>(),
            ref.at("config").at("model_type").get<std::string>());
}

INSTANTIATE_TEST_SUITE_P(HfParity, CheckpointFixtureParity,
                         ::testing::Values("opt", "gpt2", "bloom", "llama"));

TEST(Safetensors, MappedTensorsViewTheFile) {
  ot::SafetensorsFile f = ot::SafetensorsFile::open(fixture_dir("llama") + "/model.safetensors");
  EXPECT_EQ(f.header().metadata.at("format"), "pt");
  EXPECT_EQ(f.header().data_offset % 8, 0u);
  at::Tensor t;
  {
    // The tensor must outlive the SafetensorsFile that produced it.
    ot::SafetensorsFile g = ot::SafetensorsFile::open(fixture_dir("llama") + "/model.safetensors");
    t = g.tensor("model.norm.weight");
  }
  EXPECT_TRUE(bit_equal(t, f.tensor("model.norm.weight")));
  expect_error([&] { f.tensor("no.such.tensor"); }, {"model.safetensors", "no.such.tensor"});
}

// ---------------------------------------------------------------- round trips

ot::StateDict sample_tensors() {
  ot::StateDict sd;
  at::manual_seed(7);
  sd["a.f32"] = at::randn({3, 5});
  sd["b.f16"] = at::randn({4, 7}).to(at::kHalf);
  sd["c.bf16"] = at::randn({2, 3, 5}).to(at::kBFloat16);
  sd["d.scalar"] = at::tensor(3.25f).reshape({});
  sd["e.empty"] = at::empty({0, 4});
  sd["f.empty_bf16"] = at::empty({2, 0}, at::kBFloat16);
  sd["g.i64"] = at::arange(11, at::kLong);
  sd["h.bool"] = at::tensor({1, 0, 1}).to(at::kBool);
  sd["i.strided"] = at::randn({6, 4}).t();  // non-contiguous input
  sd["j.u8"] = at::arange(13, at::kByte);    // odd byte count: misaligns what follows
  sd["k.f64"] = at::randn({3}, at::kDouble);
  return sd;
}

TEST(Safetensors, SaveLoadRoundTripIsBitExact) {
  ot::test::TempDir tmp;
  ot::StateDict sd = sample_tensors();
  const std::string path = tmp.file("rt.safetensors");
  ot::save_safetensors(path, sd);
  ot::SafetensorsFile f = ot::SafetensorsFile::open(path);
  EXPECT_EQ(f.header().data_offset % 8, 0u);
  EXPECT_EQ(f.header().metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  ot::StateDict back = f.all();
  ASSERT_EQ(back.size(), sd.size());
  for (const auto& [name, t] : sd) {
    ASSERT_TRUE(back.count(name)) << name;
    EXPECT_TRUE(bit_equal(t, back.at(name))) << name;
    EXPECT_EQ(back.at(name).dim(), t.dim()) << name;
  }
  // Sorted keys in the header and data laid out in the same order.
  std::uint64_t prev_end = 0;
  for (const auto& e : f.header().entries) {
    EXPECT_EQ(e.begin, prev_end) << e.name;
    prev_end = e.end;
  }
  std::string raw = slurp(path);
  std::string header = raw.substr(8, f.header().data_offset - 8);
  EXPECT_LT(header.find("\"a.f32\""), header.find("\"b.f16\""));
  EXPECT_EQ(header.back() == ' ' || header.back() == '}', true);
}

TEST(Safetensors, SaveRejectsUnstorableTensors) {
  ot::test::TempDir tmp;
  const std::string path = tmp.file("bad.safetensors");
  expect_error([&] { ot::save_safetensors(path, {{"x", at::Tensor()}}); }, {"'x'", "undefined"});
  expect_error([&] { ot::save_safetensors(path, {{"z", at::zeros({2}, at::kComplexFloat)}}); },
               {"'z'", "cannot store"});
  EXPECT_FALSE(ot::file_exists(path));
}

TEST(Checkpoint, HfSaveLoadRoundTrip) {
  ot::test::TempDir tmp;
  ot::StateDict sd = sample_tensors();
  json config = {{"model_type", "llama"}, {"hidden_size", 64}};
  const std::string dir = tmp.file("ckpt");
  ot::save_hf_checkpoint(dir, config, sd);
  EXPECT_EQ(slurp(dir + "/config.json"), config.dump(2) + "\n");
  EXPECT_EQ(ot::load_hf_config(dir), config);
  ot::WeightFiles wf = ot::find_weight_files(dir);
  EXPECT_EQ(wf.format, "safetensors");
  EXPECT_TRUE(wf.index.empty());
  ot::StateDict back = ot::load_hf_weights(dir);
  ASSERT_EQ(back.size(), sd.size());
  for (const auto& [name, t] : sd) EXPECT_TRUE(bit_equal(t, back.at(name))) << name;
}

TEST(Checkpoint, ShardedSaveLoadRoundTrip) {
  ot::test::TempDir tmp;
  ot::StateDict sd = sample_tensors();
  const std::string dir = tmp.file("sharded");
  ot::save_hf_checkpoint(dir, json{{"model_type", "x"}}, sd, /*max_shard_bytes=*/64);
  EXPECT_FALSE(ot::file_exists(dir + "/model.safetensors"));
  ot::WeightFiles wf = ot::find_weight_files(dir);
  EXPECT_EQ(wf.format, "safetensors");
  EXPECT_EQ(wf.index, dir + "/model.safetensors.index.json");
  EXPECT_GT(wf.files.size(), 2u);
  json index = json::parse(slurp(wf.index));
  EXPECT_EQ(index.at("weight_map").size(), sd.size());
  std::uint64_t total = 0;
  for (const auto& kv : sd) total += static_cast<std::uint64_t>(kv.second.numel() * kv.second.element_size());
  EXPECT_EQ(index.at("metadata").at("total_size").get<std::uint64_t>(), total);
  EXPECT_EQ(index.at("weight_map").at("a.f32"), "model-00001-of-0000" + std::to_string(wf.files.size()) + ".safetensors");
  // No shard exceeds the limit unless it holds a single larger tensor.
  for (const auto& f : wf.files) {
    ot::SafetensorsFile s = ot::SafetensorsFile::open(f);
    std::uint64_t bytes = 0;
    for (const auto& e : s.header().entries) bytes += e.end - e.begin;
    EXPECT_TRUE(bytes <= 64 || s.header().entries.size() == 1) << f;
  }
  ot::StateDict back = ot::load_hf_weights(dir);
  ASSERT_EQ(back.size(), sd.size());
  for (const auto& [name, t] : sd) EXPECT_TRUE(bit_equal(t, back.at(name))) << name;
}

TEST(Checkpoint, SaveReplacesDirectoryAtomically) {
  ot::test::TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  ot::save_hf_checkpoint(dir, json{{"v", 1}}, {{"w", at::ones({2})}});
  // A failing save leaves the previous checkpoint untouched.
  expect_error([&] { ot::save_hf_checkpoint(dir, json{{"v", 2}}, {{"w", at::Tensor()}}); },
               {"'w'", "undefined"});
  EXPECT_EQ(ot::load_hf_config(dir).at("v"), 1);
  for (const auto& entry : stdfs::directory_iterator(tmp.path()))
    EXPECT_EQ(entry.path().filename().string(), "ckpt");
}

// ---------------------------------------------------------------- corrupt safetensors

class SafetensorsCorrupt : public ::testing::Test {
 protected:
  // Writes `bytes` as model.safetensors and expects opening it to fail with `parts`.
  void expect_rejected(const std::string& bytes, const std::vector<std::string>& parts) {
    const std::string path = tmp_.file("model.safetensors");
    write_bytes(path, bytes);
    std::vector<std::string> all = parts;
    all.push_back("model.safetensors");
    expect_error([&] { ot::SafetensorsFile::open(path); }, all);
    // The parser alone (no mapping) gives the same verdict.
    expect_error([&] { ot::parse_safetensors_header(bytes.data(), bytes.size(), "buf"); }, parts);
  }
  ot::test::TempDir tmp_;
};

TEST_F(SafetensorsCorrupt, TooShortForLength) {
  expect_rejected("", {"0 bytes", "too short"});
  expect_rejected(std::string("\x10\0\0", 3), {"3 bytes", "too short"});
}

TEST_F(SafetensorsCorrupt, HeaderLengthBeyondFile) {
  std::string b = safetensors_bytes("{}", 0);
  b[0] = 100;
  expect_rejected(b, {"header length 100", "past the end of the file"});
  std::string huge(8, '\xff');
  expect_rejected(huge + "{}", {"implausibly large"});
}

TEST_F(SafetensorsCorrupt, MalformedJson) {
  expect_rejected(safetensors_bytes("{\"a\": {\"dtype\": \"F32\",", 0), {"malformed JSON header"});
  expect_rejected(safetensors_bytes("[1, 2, 3]", 0), {"must be a JSON object", "array"});
  expect_rejected(safetensors_bytes("{\"a\": 5}", 0), {"tensor 'a'", "expected an object"});
}

TEST_F(SafetensorsCorrupt, UnknownDtype) {
  expect_rejected(
      safetensors_bytes(R"({"x.weight":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}})", 2),
      {"tensor 'x.weight'", "unknown dtype 'F8'"});
}

TEST_F(SafetensorsCorrupt, ShapeSizeMismatch) {
  expect_rejected(
      safetensors_bytes(R"({"x.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 16),
      {"tensor 'x.weight': data_offsets [0, 12] span 12 bytes but shape [2, 2] x F32 needs 16"});
  expect_rejected(
      safetensors_bytes(R"({"x":{"dtype":"F32","shape":[-2,2],"data_offsets":[0,16]}})", 16),
      {"tensor 'x'", "non-negative integers"});
  // Dims whose product overflows 64 bits must not wrap around to a small span.
  expect_rejected(safetensors_bytes(
                      R"({"x":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})",
                      0),
                  {"tensor 'x'", "overflows"});
  expect_rejected(safetensors_bytes(R"({"x":{"dtype":"F32","data_offsets":[0,4]}})", 4),
                  {"tensor 'x'", "missing \"shape\""});
}

TEST_F(SafetensorsCorrupt, OffsetsOutOfRange) {
  // Data cut short: the header promises 16 bytes, the file has 8.
  expect_rejected(
      safetensors_bytes(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8),
      {"tensor 'x'", "data_offsets [0, 16]", "past the end of the data section (8 bytes"});
  expect_rejected(
      safetensors_bytes(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", 8),
      {"tensor 'x'", "begin > end"});
  expect_rejected(
      safetensors_bytes(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 8),
      {"tensor 'x'", "[begin, end]"});
}

TEST_F(SafetensorsCorrupt, OverlappingOffsets) {
  expect_rejected(
      safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                        16),
      {"'a' data_offsets [0, 16]", "'b' data_offsets [8, 16]", "overlap"});
}

TEST_F(SafetensorsCorrupt, BadMetadata) {
  expect_rejected(safetensors_bytes(R"({"__metadata__":{"format":1}})", 0),
                  {"__metadata__", "format", "string"});
}

TEST_F(SafetensorsCorrupt, BoolBytesOtherThanZeroOrOne) {
  std::string b = safetensors_bytes(R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", 3);
  b[b.size() - 2] = '\x05';
  const std::string path = tmp_.file("model.safetensors");
  write_bytes(path, b);
  ot::SafetensorsFile f = ot::SafetensorsFile::open(path);  // the header itself is fine
  expect_error([&] { f.tensor("m"); }, {"model.safetensors", "tensor 'm'", "byte 5", "element 1"});
}

TEST_F(SafetensorsCorrupt, ValidHeaderStillParses) {
  std::string b = safetensors_bytes(
      R"({"__metadata__":{"k":"v"},"b":{"dtype":"BF16","shape":[],"data_offsets":[4,6]},)"
      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
      6);
  ot::SafetensorsHeader h = ot::parse_safetensors_header(b.data(), b.size(), "ok");
  ASSERT_EQ(h.entries.size(), 2u);
  EXPECT_EQ(h.entries[0].name, "a");  // sorted by offset
  EXPECT_EQ(h.entries[1].shape.size(), 0u);
  EXPECT_EQ(h.metadata.at("k"), "v");
}

// ---------------------------------------------------------------- corrupt torch .bin

// Found by tests/fuzz/fuzz_torch_bin (seed cd_past_end.bin): a zip whose zip64 end record
// lies past the end of the file crashed LibTorch's zip reader, which the reader used then (it
// reads where the end records point without bounds checks). torch_zip.cpp checks every zip
// structure, and LibTorch's reader and unpickler are no longer used (test_torch_pickle.cpp).
TEST(CheckpointTorchBin, ZipStructuresOutsideTheFileAreRejected) {
  ot::test::TempDir tmp;
  const std::string p = tmp.file("pytorch_model.bin");
  const std::string crash = slurp(ot::test::repo_root() + "/tests/fuzz/seeds/torch_bin/cd_past_end.bin");
  write_bytes(p, crash);
  expect_error([&] { ot::load_torch_bin(p); },
               {"pytorch_model.bin", "corrupt PyTorch zip checkpoint", "zip64 end record expected at byte 397 (of 580)"});
  // A good checkpoint whose stored entry claims more bytes than it holds.
  std::string good = slurp(fixture_dir("llama") + "/pytorch_model.bin");
  const std::size_t cd = good.rfind(std::string("PK\x01\x02", 4));
  ASSERT_NE(cd, std::string::npos);
  const std::uint32_t huge = 0x7fffffff;
  std::memcpy(&good[cd + 24], &huge, 4);  // uncompressed size of the last entry
  write_bytes(p, good);
  expect_error([&] { ot::load_torch_bin(p); }, {"pytorch_model.bin", "2147483647 bytes cannot come from"});
}

TEST(CheckpointTorchBin, TruncatedAndGarbageFilesAreRejected) {
  ot::test::TempDir tmp;
  const std::string good = slurp(fixture_dir("llama") + "/pytorch_model.bin");
  const std::string p = tmp.file("pytorch_model.bin");

  write_bytes(p, good.substr(0, good.size() / 2));
  expect_error([&] { ot::load_torch_bin(p); }, {"pytorch_model.bin", "truncated"});
  write_bytes(p, good.substr(0, good.size() - 10));
  expect_error([&] { ot::load_torch_bin(p); }, {"pytorch_model.bin", "truncated"});
  write_bytes(p, "this is not a checkpoint at all");
  expect_error([&] { ot::load_torch_bin(p); }, {"pytorch_model.bin", "not a PyTorch zip checkpoint"});
  write_bytes(p, std::string("\x80\x02\x8a\x0alegacy", 10));
  expect_error([&] { ot::load_torch_bin(p); }, {"pytorch_model.bin", "legacy", "torch>=1.6"});
  write_bytes(p, "");
  expect_error([&] { ot::load_torch_bin(p); }, {"pytorch_model.bin", "empty"});
  expect_error([&] { ot::load_torch_bin(tmp.file("missing.bin")); }, {"missing.bin", "no such file"});

  // Damage inside the zip (the pickle stream) rather than its end: still one ot::Error.
  std::string mangled = good;
  auto pos = mangled.find("data.pkl");
  ASSERT_NE(pos, std::string::npos);
  for (std::size_t i = pos + 40; i < pos + 400 && i < mangled.size(); ++i) mangled[i] = '\x07';
  write_bytes(p, mangled);
  expect_error([&] { ot::load_torch_bin(p); }, {"pytorch_model.bin"});
}

// ---------------------------------------------------------------- HF directories

TEST(Checkpoint, DirectoryErrors) {
  ot::test::TempDir tmp;
  const std::string dir = tmp.file("m");
  expect_error([&] { ot::load_hf_config(dir); }, {dir, "no such directory"});
  stdfs::create_directories(dir);
  expect_error([&] { ot::load_hf_config(dir); }, {dir + "/config.json", "missing"});
  write_bytes(dir + "/config.json", "{\"a\": ");
  expect_error([&] { ot::load_hf_config(dir); }, {"config.json", "malformed JSON"});
  expect_error([&] { ot::find_weight_files(dir); },
               {dir, "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json"});

  // An index naming a shard that is not there.
  ot::save_safetensors(dir + "/model-00001-of-00002.safetensors", {{"a", at::ones({2})}});
  write_bytes(dir + "/model.safetensors.index.json",
              R"({"metadata":{"total_size":16},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
              R"("b":"model-00002-of-00002.safetensors"}})");
  expect_error([&] { ot::load_hf_weights(dir); },
               {"model.safetensors.index.json", "model-00002-of-00002.safetensors", "does not exist"});

  // The same key in two shards.
  ot::save_safetensors(dir + "/model-00002-of-00002.safetensors",
                       {{"a", at::ones({2})}, {"b", at::ones({2})}});
  expect_error([&] { ot::load_hf_weights(dir); }, {"tensor 'a'", "two shards"});

  // A key listed in the index but held by another shard.
  ot::save_safetensors(dir + "/model-00002-of-00002.safetensors", {{"c", at::ones({2})}});
  expect_error([&] { ot::load_hf_weights(dir); }, {"tensor 'b'", "does not hold it"});

  // Shard names that escape the directory.
  write_bytes(dir + "/model.safetensors.index.json", R"({"weight_map":{"a":"../x.safetensors"}})");
  expect_error([&] { ot::find_weight_files(dir); }, {"'../x.safetensors'", "plain file name"});
  write_bytes(dir + "/model.safetensors.index.json", R"({"metadata":{}})");
  expect_error([&] { ot::find_weight_files(dir); }, {"index.json", "weight_map"});
}

TEST(Checkpoint, TorchBinDirectoryLoads) {
  ot::test::TempDir tmp;
  const std::string dir = tmp.file("bin");
  stdfs::create_directories(dir);
  stdfs::copy_file(fixture_dir("gpt2") + "/pytorch_model.bin", dir + "/pytorch_model.bin");
  ot::WeightFiles wf = ot::find_weight_files(dir);
  EXPECT_EQ(wf.format, "torch");
  EXPECT_EQ(ot::load_hf_weights(dir).count("lm_head.weight"), 1u);
}

// ---------------------------------------------------------------- llama2.c

std::string stories_bin() { return ot::test::shared_path("data/models/stories260K/stories260K.bin"); }
std::string stories_tok() { return ot::test::shared_path("data/models/stories260K/tok512.bin"); }

TEST(Llama2c, Stories260KMatchesIndependentHfConversion) {
  ot::Llama2cModel m = ot::load_llama2c(stories_bin());
  EXPECT_EQ(m.params.dim, 64);
  EXPECT_EQ(m.params.hidden_dim, 172);
  EXPECT_EQ(m.params.n_layers, 5);
  EXPECT_EQ(m.params.n_heads, 8);
  EXPECT_EQ(m.params.n_kv_heads, 4);
  EXPECT_EQ(m.params.vocab_size, 512);
  EXPECT_EQ(m.params.seq_len, 512);
  EXPECT_TRUE(m.params.shared_classifier);

  const std::string ref_dir = ot::test::shared_path("data/models/stories260K_hf");
  ot::StateDict ref = ot::load_hf_weights(ref_dir);
  std::set<std::string> ours, theirs;
  for (const auto& kv : m.weights) ours.insert(kv.first);
  for (const auto& kv : ref) theirs.insert(kv.first);
  EXPECT_EQ(ours, theirs);
  EXPECT_EQ(ours.count("lm_head.weight"), 0u);  // tied head
  for (const auto& [name, t] : ref) {
    ASSERT_TRUE(m.weights.count(name)) << name;
    const at::Tensor& mine = m.weights.at(name);
    ASSERT_EQ(mine.sizes(), t.sizes()) << name;
    EXPECT_LE((mine - t).abs().max().item<float>(), 1e-6f) << name;
  }

  json cfg = ot::load_hf_config(ref_dir);
  for (const char* key : {"model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "num_key_value_heads", "vocab_size",
                          "max_position_embeddings", "rms_norm_eps", "rope_theta", "hidden_act",
                          "tie_word_embeddings", "bos_token_id", "eos_token_id"}) {
    EXPECT_EQ(m.config.at(key), cfg.at(key)) << key;
  }
}

TEST(Llama2c, RopeRowPermutationMovesPairsToHalves) {
  // Head 0 of layer 0: HF row j is llama2.c row 2j, HF row j + hd/2 is llama2.c row 2j+1.
  ot::Llama2cModel m = ot::load_llama2c(stories_bin());
  std::string raw = slurp(stories_bin());
  const int64_t D = 64, V = 512, L = 5, hd = 8;
  const std::size_t wq_offset = 28 + sizeof(float) * static_cast<std::size_t>(V * D + L * D);
  at::Tensor wq0 = at::from_blob(raw.data() + wq_offset, {D, D}, at::kFloat).clone();
  at::Tensor q = m.weights.at("model.layers.0.self_attn.q_proj.weight");
  for (int64_t h = 0; h < D / hd; ++h) {
    for (int64_t j = 0; j < hd / 2; ++j) {
      EXPECT_TRUE(at::equal(q[h * hd + j], wq0[h * hd + 2 * j]));
      EXPECT_TRUE(at::equal(q[h * hd + j + hd / 2], wq0[h * hd + 2 * j + 1]));
    }
  }
}

TEST(Llama2c, BadFilesAreRejected) {
  ot::test::TempDir tmp;
  std::string raw = slurp(stories_bin());
  const std::string p = tmp.file("model.bin");
  write_bytes(p, raw.substr(0, raw.size() - 100));
  expect_error([&] { ot::load_llama2c(p); },
               {"model.bin", "truncated llama2.c checkpoint", "needs 1056540 bytes, file has 1056440"});
  write_bytes(p, raw + "xxxx");
  expect_error([&] { ot::load_llama2c(p); }, {"model.bin", "4 unexpected trailing bytes"});
  write_bytes(p, raw.substr(0, 20));
  expect_error([&] { ot::load_llama2c(p); }, {"model.bin", "too short"});
  std::string bad = raw;
  int32_t neg = -3;
  std::memcpy(&bad[8], &neg, 4);  // n_layers
  write_bytes(p, bad);
  expect_error([&] { ot::load_llama2c(p); }, {"model.bin", "n_layers -3"});
  expect_error([&] { ot::load_llama2c(tmp.file("none.bin")); }, {"none.bin", "no such file"});
  // The versioned int8 export of the same model is recognised and refused.
  expect_error([&] { ot::load_llama2c(ot::test::shared_path("data/models/stories260K/stories260K-q8.bin")); },
               {"stories260K-q8.bin", "ak42", "version 2", "not supported"});
}

// Found by tests/fuzz/fuzz_llama2c (seed sum_wraps.bin): the weight count of this header
// wraps around 2^64 to 8 floats, so a 60-byte file matched it and the loader read far past
// the mapping. Every product and sum is now checked.
TEST(Llama2c, HeaderWhoseSizesWrapAroundIsRejected) {
  ot::test::TempDir tmp;
  const int32_t header[7] = {2, 1431655763, 2147483646, 1, 1, 2147483647, 10};
  std::string bytes(reinterpret_cast<const char*>(header), sizeof header);
  bytes += std::string(32, '\0');
  const std::string p = tmp.file("model.bin");
  write_bytes(p, bytes);
  expect_error([&] { ot::load_llama2c(p); },
               {"model.bin", "n_layers 2147483646", "more than 2^64 bytes of weights", "not a llama2.c checkpoint"});
  expect_error([&] { ot::parse_llama2c_header(bytes.data(), bytes.size(), "buf"); }, {"buf", "2^64"});
}

TEST(Llama2c, UnsharedClassifierBecomesLmHead) {
  // Rewrite stories260K with a negative vocab_size and an explicit classifier appended.
  ot::test::TempDir tmp;
  std::string raw = slurp(stories_bin());
  int32_t neg = -512;
  std::memcpy(&raw[20], &neg, 4);
  std::string cls(512 * 64 * sizeof(float), '\0');
  for (std::size_t i = 0; i < 512 * 64; ++i) {
    float v = static_cast<float>(i % 97) * 0.5f;
    std::memcpy(&cls[i * sizeof(float)], &v, sizeof v);
  }
  write_bytes(tmp.file("m.bin"), raw + cls);
  ot::Llama2cModel m = ot::load_llama2c(tmp.file("m.bin"));
  EXPECT_FALSE(m.params.shared_classifier);
  EXPECT_EQ(m.config.at("tie_word_embeddings"), false);
  ASSERT_TRUE(m.weights.count("lm_head.weight"));
  EXPECT_EQ(m.weights.at("lm_head.weight")[1][0].item<float>(), 32.0f);  // i = 64 -> 64 % 97 * .5
}

// ---------------------------------------------------------------- ot convert

TEST(CheckpointCli, ConvertLlama2c) {
  ot::test::TempDir tmp;
  const std::string out = tmp.file("stories_hf");
  auto r = ot::test::run_cli("convert llama2c --checkpoint '" + stories_bin() + "' --tokenizer '" +
                             stories_tok() + "' --out '" + out + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(ot::file_exists(out + "/config.json"));
  EXPECT_TRUE(ot::file_exists(out + "/model.safetensors"));
  EXPECT_TRUE(ot::file_exists(out + "/tokenizer.bin"));
  EXPECT_EQ(slurp(out + "/tokenizer.bin"), slurp(stories_tok()));
  ot::StateDict ours = ot::load_hf_weights(out);
  ot::StateDict ref = ot::load_hf_weights(ot::test::shared_path("data/models/stories260K_hf"));
  ASSERT_EQ(ours.size(), ref.size());
  for (const auto& [name, t] : ref) EXPECT_TRUE(at::allclose(ours.at(name), t, 0, 1e-6)) << name;
  EXPECT_EQ(ot::load_hf_config(out).at("model_type"), "llama");

  // A non-empty output is not replaced without --force.
  auto again = ot::test::run_cli("convert llama2c --checkpoint '" + stories_bin() + "' --tokenizer '" +
                                 stories_tok() + "' --out '" + out + "'");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
}

TEST(CheckpointCli, ConvertBadInputLeavesNothing) {
  ot::test::TempDir tmp;
  const std::string out = tmp.file("out");
  auto r = ot::test::run_cli("convert llama2c --checkpoint '" + tmp.file("nope.bin") +
                             "' --tokenizer '" + stories_tok() + "' --out '" + out + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nope.bin"), std::string::npos) << r.err;
  EXPECT_FALSE(stdfs::exists(out));

  write_bytes(tmp.file("cut.bin"), slurp(stories_bin()).substr(0, 5000));
  r = ot::test::run_cli("convert llama2c --checkpoint '" + tmp.file("cut.bin") + "' --tokenizer '" +
                        stories_tok() + "' --out '" + out + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cut.bin: truncated"), std::string::npos) << r.err;
  EXPECT_FALSE(stdfs::exists(out));

  r = ot::test::run_cli("convert llama2c --checkpoint '" + stories_bin() + "' --tokenizer '" +
                        tmp.file("tok_missing.bin") + "' --out '" + out + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("tok_missing.bin"), std::string::npos) << r.err;
  EXPECT_FALSE(stdfs::exists(out));
  // Only the TempDir's own entries remain (no temporaries left behind).
  for (const auto& e : stdfs::directory_iterator(tmp.path())) {
    std::string n = e.path().filename().string();
    EXPECT_TRUE(n == "cut.bin") << n;
  }

  auto help = ot::test::run_cli("convert llama2c --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--checkpoint"), std::string::npos);
  // A usage error (no format given) is CLI11's business: non-zero, not a crash.
  auto usage = ot::test::run_cli("convert");
  EXPECT_NE(usage.exit_code, 0);
  EXPECT_LT(usage.exit_code, 128);
}

}  // namespace
