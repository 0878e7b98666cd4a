// checkpoint/torch_pickle.cpp: see torch_pickle.h. Opcodes as in CPython's Lib/pickle.py
// (protocols 2 to 5); the callables as torch/_utils.py and torch/jit/_pickle.py define them.
//
// Values live on the machine's stack and in its memo as shared pointers (BINGET hands out the
// object BINPUT stored, as pickle does). Two rules keep every input finite and acyclic: a
// container that has been placed inside another is sealed (APPEND, SETITEM and BUILD refuse
// it, so no cycle can form), and values nest at most kMaxDepth deep (so freeing them cannot
// recurse deeply).
#include "checkpoint/torch_pickle.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "util/error.h"

namespace ot {

namespace {

constexpr int kMaxDepth = 32;
constexpr int kMaxDims = 64;

struct StorageInfo {
  TorchStorageType type;
  const char* name;
  std::size_t bytes;
};
constexpr StorageInfo kStorages[] = {
    {TorchStorageType::kFloat, "FloatStorage", 4},   {TorchStorageType::kDouble, "DoubleStorage", 8},
    {TorchStorageType::kHalf, "HalfStorage", 2},     {TorchStorageType::kBFloat16, "BFloat16Storage", 2},
    {TorchStorageType::kLong, "LongStorage", 8},     {TorchStorageType::kInt, "IntStorage", 4},
    {TorchStorageType::kShort, "ShortStorage", 2},   {TorchStorageType::kChar, "CharStorage", 1},
    {TorchStorageType::kByte, "ByteStorage", 1},     {TorchStorageType::kBool, "BoolStorage", 1},
};

enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kTuple: return "tuple";
    case Kind::kList: return "list";
    case Kind::kDict: return "dict";
    case Kind::kGlobal: return "global";
    case Kind::kStorage: return "storage";
    case Kind::kTensor: return "Tensor";
  }
  return "?";
}

struct Value;
using Ref = std::shared_ptr<Value>;

struct Value {
  explicit Value(Kind k) : kind(k) {}
  Kind kind;
  std::int64_t i = 0;       // int, bool
  double f = 0;             // float
  std::string s;            // str; global "module.name"
  std::vector<Ref> items;   // tuple, list; dict as key, value, key, value, ...
  int depth = 1;            // 1 + the deepest item's
  bool sealed = false;      // inside another value: no longer changed
  PickledTensor tensor;     // storage (type, key, numel) and tensor
};

class Machine {
 public:
  Machine(const char* data, std::size_t size, const std::string& where)
      : p_(reinterpret_cast<const unsigned char*>(data)), size_(size), where_(where) {}

  Ref run();

 private:
  template <class... Parts>
  [[noreturn]] void bad(Parts&&... parts) const {
    fail(where_, " byte ", op_at_, ": ", std::forward<Parts>(parts)...);
  }

  std::uint64_t read_uint(std::size_t n);  // little-endian
  std::string read_bytes(std::uint64_t n);
  std::string read_line();

  void push(Ref v) { stack_.push_back(std::move(v)); }
  Ref pop();
  Ref& top();
  std::vector<Ref> pop_to_mark();
  Ref make(Kind k) { return std::make_shared<Value>(k); }
  Ref make_int(std::int64_t v, Kind k = Kind::kInt) {
    Ref r = make(k);
    r->i = v;
    return r;
  }
  Ref make_container(Kind k, std::vector<Ref> items);
  void add_item(Value& container, Ref item);  // seals `item`, checks depth
  Value& mutable_top(Kind expected, const char* op);

  Ref reduce(const Ref& callable, const Ref& args);
  Ref persistent_load(const Ref& pid);
  Ref rebuild_tensor(const std::vector<Ref>& a, const std::string& callable);

  const unsigned char* p_;
  std::size_t size_, pos_ = 0, op_at_ = 0;
  std::string where_;
  std::vector<Ref> stack_;
  std::vector<std::size_t> marks_;
  std::map<std::uint64_t, Ref> memo_;
};

std::uint64_t Machine::read_uint(std::size_t n) {
  if (size_ - pos_ < n) bad("the pickle ends inside an opcode's argument (truncated?)");
  std::uint64_t v = 0;
  for (std::size_t k = 0; k < n; ++k) v |= std::uint64_t{p_[pos_ + k]} << (8 * k);
  pos_ += n;
  return v;
}

std::string Machine::read_bytes(std::uint64_t n) {
  if (size_ - pos_ < n) bad("a string of ", n, " bytes runs past the end of the pickle (truncated?)");
  std::string s(reinterpret_cast<const char*>(p_ + pos_), n);
  pos_ += n;
  return s;
}

std::string Machine::read_line() {
  const void* nl = std::memchr(p_ + pos_, '\n', size_ - pos_);
  if (!nl) bad("a GLOBAL name runs past the end of the pickle (truncated?)");
  const std::size_t n = static_cast<const unsigned char*>(nl) - (p_ + pos_);
  std::string s(reinterpret_cast<const char*>(p_ + pos_), n);
  pos_ += n + 1;
  return s;
}

Ref Machine::pop() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back()))
    bad("malformed pickle: an opcode takes a value from an empty stack");
  Ref v = std::move(stack_.back());
  stack_.pop_back();
  return v;
}

Ref& Machine::top() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back()))
    bad("malformed pickle: an opcode needs a value on an empty stack");
  return stack_.back();
}

std::vector<Ref> Machine::pop_to_mark() {
  if (marks_.empty()) bad("malformed pickle: an opcode needs a MARK that was never set");
  std::vector<Ref> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back())),
                         std::make_move_iterator(stack_.end()));
  stack_.resize(marks_.back());
  marks_.pop_back();
  return items;
}

void Machine::add_item(Value& container, Ref item) {
  if (item->depth + 1 > kMaxDepth) bad("values nest deeper than ", kMaxDepth, " levels (a state dict needs a few)");
  container.depth = std::max(container.depth, item->depth + 1);
  item->sealed = true;
  container.items.push_back(std::move(item));
}

Ref Machine::make_container(Kind k, std::vector<Ref> items) {
  Ref c = make(k);
  for (Ref& item : items) add_item(*c, std::move(item));
  return c;
}

Value& Machine::mutable_top(Kind expected, const char* op) {
  Value& t = *top();
  if (t.kind != expected) bad(op, " on a ", kind_name(t.kind), ", expected a ", kind_name(expected));
  if (t.sealed) bad(op, " changes a ", kind_name(t.kind), " already inside another value (not in a state dict)");
  return t;
}

// BINPERSID's id for a storage: ('storage', torch.<Type>Storage, key, location, numel).
Ref Machine::persistent_load(const Ref& pid) {
  const std::vector<Ref>& a = pid->items;
  if (pid->kind != Kind::kTuple || a.size() != 5 || a[0]->kind != Kind::kString || a[0]->s != "storage")
    bad("persistent id is not ('storage', type, key, location, numel), as torch.save writes");
  if (a[1]->kind != Kind::kGlobal) bad("storage type is a ", kind_name(a[1]->kind), ", expected torch.<Type>Storage");
  const StorageInfo* info = nullptr;
  for (const StorageInfo& s : kStorages)
    if (a[1]->s == std::string("torch.") + s.name) info = &s;
  if (!info) bad("storage type '", a[1]->s, "' is not supported (float, double, half, bfloat16, int64, int32, "
                 "int16, int8, uint8 and bool storages are)");
  if (a[2]->kind != Kind::kString || a[2]->s.empty() || a[2]->s.size() > 64)
    bad("storage key is not a short string");
  for (char c : a[2]->s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
      bad("storage key '", a[2]->s, "' is not a plain name (letters, digits, '_')");
  if (a[3]->kind != Kind::kString) bad("storage location is a ", kind_name(a[3]->kind), ", expected a str");
  if (a[4]->kind != Kind::kInt || a[4]->i < 0 ||
      static_cast<std::uint64_t>(a[4]->i) > (std::uint64_t{1} << 62) / info->bytes)
    bad("storage '", a[2]->s, "' has an impossible element count");
  Ref st = make(Kind::kStorage);
  st->tensor.type = info->type;
  st->tensor.storage_key = a[2]->s;
  st->tensor.storage_numel = a[4]->i;
  return st;
}

bool is_empty_dict_or_none(const Ref& v) {
  return v->kind == Kind::kNone || (v->kind == Kind::kDict && v->items.empty());
}

std::vector<std::int64_t> int_tuple(const Ref& v, bool* ok) {
  std::vector<std::int64_t> out;
  *ok = v->kind == Kind::kTuple && v->items.size() <= static_cast<std::size_t>(kMaxDims);
  if (!*ok) return out;
  for (const Ref& x : v->items) {
    if (x->kind != Kind::kInt || x->i < 0) {
      *ok = false;
      return out;
    }
    out.push_back(x->i);
  }
  return out;
}

// _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
Ref Machine::rebuild_tensor(const std::vector<Ref>& a, const std::string& callable) {
  if (a.size() != 6 && a.size() != 7) bad(callable, " takes 6 or 7 arguments, got ", a.size());
  if (a[0]->kind != Kind::kStorage) bad(callable, ": first argument is a ", kind_name(a[0]->kind), ", expected a storage");
  bool sizes_ok = false, strides_ok = false;
  Ref t = make(Kind::kTensor);
  t->tensor = a[0]->tensor;
  t->tensor.sizes = int_tuple(a[2], &sizes_ok);
  t->tensor.strides = int_tuple(a[3], &strides_ok);
  if (a[1]->kind != Kind::kInt || a[1]->i < 0 || a[1]->i > (std::int64_t{1} << 62))
    bad(callable, ": storage offset is not an int from 0 to 2^62");
  if (!sizes_ok || !strides_ok || t->tensor.sizes.size() != t->tensor.strides.size())
    bad(callable, ": size and stride are not tuples of as many ints >= 0 (at most ", kMaxDims, ")");
  if (a[4]->kind != Kind::kBool) bad(callable, ": requires_grad is not a bool");
  if (!is_empty_dict_or_none(a[5])) bad(callable, ": backward hooks are not supported in a state dict");
  if (a.size() == 7 && !is_empty_dict_or_none(a[6])) bad(callable, ": tensor metadata is not supported");
  t->tensor.offset = a[1]->i;
  // The highest element the view reaches must lie inside the storage (an empty view reaches none).
  const std::vector<std::int64_t>& sizes = t->tensor.sizes;
  if (std::find(sizes.begin(), sizes.end(), 0) != sizes.end()) return t;
  const std::uint64_t limit = std::uint64_t{1} << 62;
  std::uint64_t numel = 1, last = static_cast<std::uint64_t>(t->tensor.offset);
  for (std::size_t d = 0; d < sizes.size(); ++d) {
    const auto n = static_cast<std::uint64_t>(sizes[d]), s = static_cast<std::uint64_t>(t->tensor.strides[d]);
    if (n > limit / numel || (s != 0 && n - 1 > (limit - last) / s)) bad(callable, ": size or stride out of range");
    numel *= n;
    last += (n - 1) * s;
  }
  if (last >= static_cast<std::uint64_t>(t->tensor.storage_numel))
    bad(callable, ": the tensor reaches element ", last, " of storage '", t->tensor.storage_key, "', which holds ",
        t->tensor.storage_numel);
  return t;
}

Ref Machine::reduce(const Ref& callable, const Ref& args) {
  if (callable->kind != Kind::kGlobal) bad("REDUCE calls a ", kind_name(callable->kind), ", expected a global");
  if (args->kind != Kind::kTuple) bad("REDUCE arguments are a ", kind_name(args->kind), ", expected a tuple");
  const std::string& f = callable->s;
  const std::vector<Ref>& a = args->items;
  if (f == "collections.OrderedDict") {
    if (!a.empty()) bad("collections.OrderedDict is called with arguments (torch.save calls it with none)");
    return make(Kind::kDict);
  }
  if (f == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(a, f);
  if (f == "torch._utils._rebuild_parameter") {  // (tensor, requires_grad, backward_hooks)
    if (a.size() != 3 || a[0]->kind != Kind::kTensor || a[1]->kind != Kind::kBool || !is_empty_dict_or_none(a[2]))
      bad(f, " takes (Tensor, bool, {}) here");
    return a[0];
  }
  if (f == "torch.jit._pickle.restore_type_tag") {  // LibTorch's (value, type string)
    if (a.size() != 2 || a[1]->kind != Kind::kString) bad(f, " takes (value, str)");
    return a[0];
  }
  if (f == "torch.jit._pickle.build_intlist" || f == "torch.jit._pickle.build_doublelist" ||
      f == "torch.jit._pickle.build_boollist" || f == "torch.jit._pickle.build_tensorlist") {
    if (a.size() != 1 || a[0]->kind != Kind::kList) bad(f, " takes (list,)");
    return a[0];
  }
  bad("the pickle calls '", f, "'; a state dict of tensors calls only torch._utils._rebuild_tensor_v2, "
      "torch._utils._rebuild_parameter and collections.OrderedDict (nothing else is ever called)");
}

Ref Machine::run() {
  while (pos_ < size_) {
    op_at_ = pos_;
    const unsigned char op = p_[pos_++];
    switch (op) {
      case 0x80: {  // PROTO
        const auto v = read_uint(1);
        if (v < 2 || v > 5) bad("pickle protocol ", v, ", expected 2 to 5");
        break;
      }
      case 0x95: read_uint(8); break;  // FRAME: a length hint only
      case '.': {                      // STOP
        if (!marks_.empty() || stack_.size() != 1) bad("malformed pickle: STOP with ", stack_.size(), " values on the stack");
        return pop();
      }
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case '}': push(make(Kind::kDict)); break;             // EMPTY_DICT
      case ']': push(make(Kind::kList)); break;             // EMPTY_LIST
      case ')': push(make(Kind::kTuple)); break;            // EMPTY_TUPLE
      case 't': push(make_container(Kind::kTuple, pop_to_mark())); break;  // TUPLE
      case 'l': push(make_container(Kind::kList, pop_to_mark())); break;   // LIST
      case 'd': {                                                          // DICT
        std::vector<Ref> kv = pop_to_mark();
        if (kv.size() % 2) bad("DICT with an odd number of items");
        push(make_container(Kind::kDict, std::move(kv)));
        break;
      }
      case 0x85: case 0x86: case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
        std::vector<Ref> items(op - 0x84);
        for (std::size_t k = items.size(); k-- > 0;) items[k] = pop();
        push(make_container(Kind::kTuple, std::move(items)));
        break;
      }
      case 'a': {  // APPEND
        Ref v = pop();
        add_item(mutable_top(Kind::kList, "APPEND"), std::move(v));
        break;
      }
      case 'e': {  // APPENDS
        std::vector<Ref> items = pop_to_mark();
        Value& list = mutable_top(Kind::kList, "APPENDS");
        for (Ref& v : items) add_item(list, std::move(v));
        break;
      }
      case 's': {  // SETITEM
        Ref v = pop(), k = pop();
        Value& dict = mutable_top(Kind::kDict, "SETITEM");
        add_item(dict, std::move(k));
        add_item(dict, std::move(v));
        break;
      }
      case 'u': {  // SETITEMS
        std::vector<Ref> kv = pop_to_mark();
        if (kv.size() % 2) bad("SETITEMS with an odd number of items");
        Value& dict = mutable_top(Kind::kDict, "SETITEMS");
        for (Ref& v : kv) add_item(dict, std::move(v));
        break;
      }
      case 'q': memo_[read_uint(1)] = top(); break;      // BINPUT
      case 'r': memo_[read_uint(4)] = top(); break;      // LONG_BINPUT
      case 0x94: memo_[memo_.size()] = top(); break;     // MEMOIZE
      case 'h': case 'j': {                              // BINGET, LONG_BINGET
        const auto it = memo_.find(read_uint(op == 'h' ? 1 : 4));
        if (it == memo_.end()) bad("malformed pickle: GET of a memo entry never PUT");
        push(it->second);
        break;
      }
      case 'K': push(make_int(static_cast<std::int64_t>(read_uint(1)))); break;  // BININT1
      case 'M': push(make_int(static_cast<std::int64_t>(read_uint(2)))); break;  // BININT2
      case 'J': push(make_int(static_cast<std::int32_t>(read_uint(4)))); break;  // BININT
      case 0x8a: {                                                               // LONG1
        const auto n = read_uint(1);
        if (n > 8) bad("an integer of ", n, " bytes (more than 64 bits)");
        std::uint64_t v = read_uint(n);
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~std::uint64_t{0} << (8 * n);  // sign-extend
        push(make_int(static_cast<std::int64_t>(v)));
        break;
      }
      case 'N': push(make(Kind::kNone)); break;              // NONE
      case 0x88: push(make_int(1, Kind::kBool)); break;      // NEWTRUE
      case 0x89: push(make_int(0, Kind::kBool)); break;      // NEWFALSE
      case 'G': {                                            // BINFLOAT (big-endian)
        std::uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | read_uint(1);
        Ref v = make(Kind::kFloat);
        std::memcpy(&v->f, &bits, sizeof bits);
        push(v);
        break;
      }
      case 'X': case 0x8c: case 0x8d: {  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
        const auto n = read_uint(op == 'X' ? 4 : op == 0x8c ? 1 : 8);
        Ref v = make(Kind::kString);
        v->s = read_bytes(n);
        push(v);
        break;
      }
      case 'c': {  // GLOBAL
        Ref g = make(Kind::kGlobal);
        g->s = read_line();
        g->s += "." + read_line();
        push(g);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Ref name = pop(), module = pop();
        if (module->kind != Kind::kString || name->kind != Kind::kString) bad("STACK_GLOBAL of non-strings");
        Ref g = make(Kind::kGlobal);
        g->s = module->s + "." + name->s;
        push(g);
        break;
      }
      case 'Q': {  // BINPERSID
        Ref pid = pop();
        push(persistent_load(pid));
        break;
      }
      case 'R': {  // REDUCE
        Ref args = pop(), callable = pop();
        push(reduce(callable, args));
        break;
      }
      case 'b': {  // BUILD: only an OrderedDict's attributes (its _metadata), which are dropped
        Ref state = pop();
        if (top()->kind != Kind::kDict) bad("BUILD on a ", kind_name(top()->kind), " (only a dict's attributes are read)");
        if (state->kind != Kind::kDict && state->kind != Kind::kNone) bad("BUILD with a ", kind_name(state->kind), " state");
        break;
      }
      case '0': pop(); break;                  // POP
      case '1': pop_to_mark(); break;          // POP_MARK
      case '2': push(Ref(top())); break;       // DUP
      default:
        bad("pickle opcode 0x", "0123456789abcdef"[op >> 4], "0123456789abcdef"[op & 15],
            " is not one torch.save writes for a state dict");
    }
  }
  op_at_ = pos_;
  bad("the pickle ends without STOP (truncated?)");
}

}  // namespace

std::size_t element_size(TorchStorageType t) {
  for (const StorageInfo& s : kStorages)
    if (s.type == t) return s.bytes;
  return 0;
}

const char* storage_type_name(TorchStorageType t) {
  for (const StorageInfo& s : kStorages)
    if (s.type == t) return s.name;
  return "?";
}

std::vector<PickledTensor> read_state_dict_pickle(const char* pickle, std::size_t size, const std::string& where,
                                                  const std::string& entry) {
  Ref root = Machine(pickle, size, where).run();
  if (!entry.empty()) {
    OT_REQUIRE(root->kind == Kind::kDict, where, ": expected a pickled dict holding a state dict under '", entry,
               "', got a ", kind_name(root->kind));
    Ref held;
    for (std::size_t k = 0; k + 1 < root->items.size(); k += 2)
      if (root->items[k]->kind == Kind::kString && root->items[k]->s == entry) held = root->items[k + 1];
    OT_REQUIRE(held, where, ": the pickled dict has no key '", entry, "'");
    root = held;
  }
  OT_REQUIRE(root->kind == Kind::kDict, where, ": expected a pickled state dict (dict of str -> Tensor)",
             entry.empty() ? "" : " under '" + entry + "'", ", got a ", kind_name(root->kind));
  std::vector<PickledTensor> out;
  std::set<std::string> names;
  std::map<std::string, const PickledTensor*> storages;
  for (std::size_t k = 0; k + 1 < root->items.size(); k += 2) {
    const Value& key = *root->items[k];
    const Value& value = *root->items[k + 1];
    OT_REQUIRE(key.kind == Kind::kString, where, ": state dict key of type ", kind_name(key.kind), ", expected str");
    OT_REQUIRE(value.kind == Kind::kTensor, where, ": entry '", key.s, "' is a ", kind_name(value.kind),
               ", expected a Tensor", value.kind == Kind::kDict ? " (a training checkpoint holding its state dict under this key?)" : "");
    OT_REQUIRE(names.insert(key.s).second, where, ": state dict key '", key.s, "' appears twice");
    out.push_back(value.tensor);
    out.back().name = key.s;
  }
  for (const PickledTensor& t : out) {
    const auto [it, fresh] = storages.emplace(t.storage_key, &t);
    OT_REQUIRE(fresh || (it->second->type == t.type && it->second->storage_numel == t.storage_numel), where,
               ": storage '", t.storage_key, "' is pickled as ", storage_type_name(it->second->type), " of ",
               it->second->storage_numel, " elements for '", it->second->name, "' and as ",
               storage_type_name(t.type), " of ", t.storage_numel, " for '", t.name, "'");
  }
  return out;
}

}  // namespace ot
