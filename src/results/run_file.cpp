// results/run_file.cpp: RunRecorder, RunReader and run_is_complete (see run_file.h and
// results/SCHEMA.md). Uses HDF5's own C++ API (H5Cpp.h); never includes LibTorch.
//
// Cost of a flush (the whole file rewritten to a temporary, fsync'ed, renamed), measured on
// the 2-core development box with two curves (6 columns), 2 eval rows, 2 efficiency and 2
// rank entries: 100 or 5,000 rows per curve ~3-4 ms on ext4 (~2.4 ms on tmpfs), 50,000
// rows ~12 ms. At the default 10 s interval that is well under 0.1% of a run's time.
#include "results/run_file.h"

#include <H5Cpp.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>

#include "util/error.h"
#include "util/fs.h"
#include "util/provenance.h"
#include "util/version.h"

namespace ot::results {
namespace {

// Root attributes owned by the schema; set_attribute may not overwrite them.
const std::set<std::string>& reserved_attributes() {
  static const std::set<std::string> names = {
      "schema_version", "run_id",       "experiment",      "status",
      "error",          "created_utc",  "updated_utc",     "config_toml",
      "command_line",   "git_commit",   "host",            "offsite_version",
      "libtorch_version", "hdf5_version", "world_size"};
  return names;
}

// HDF5 prints its error stack to stderr by default; we report through ot::Error instead.
void silence_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] { H5::Exception::dontPrint(); });
}

std::string hdf5_library_version() {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
}

std::string describe(const H5::Exception& e) {
  std::string func = e.getFuncName();
  std::string detail = e.getDetailMsg();
  return func.empty() ? detail : func + ": " + detail;
}

// ---- writing helpers ----

H5::StrType utf8_string_type() {
  H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
  type.setCset(H5T_CSET_UTF8);
  return type;
}

void write_attr(H5::H5Object& obj, const std::string& name, const std::string& value) {
  H5::StrType type = utf8_string_type();
  H5::Attribute attr = obj.createAttribute(name, type, H5::DataSpace(H5S_SCALAR));
  attr.write(type, value);
}

void write_attr(H5::H5Object& obj, const std::string& name, std::int64_t value) {
  H5::Attribute attr =
      obj.createAttribute(name, H5::PredType::STD_I64LE, H5::DataSpace(H5S_SCALAR));
  attr.write(H5::PredType::NATIVE_INT64, &value);
}

void write_attr(H5::H5Object& obj, const std::string& name, double value) {
  H5::Attribute attr =
      obj.createAttribute(name, H5::PredType::IEEE_F64LE, H5::DataSpace(H5S_SCALAR));
  attr.write(H5::PredType::NATIVE_DOUBLE, &value);
}

void write_string_list_attr(H5::H5Object& obj, const std::string& name,
                            const std::vector<std::string>& values) {
  H5::StrType type = utf8_string_type();
  hsize_t n = values.size();
  H5::Attribute attr = obj.createAttribute(name, type, H5::DataSpace(1, &n));
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  if (n > 0) attr.write(type, ptrs.data());
}

void write_column(H5::Group& group, const std::string& name, const std::vector<double>& v) {
  hsize_t n = v.size();
  H5::DataSet ds = group.createDataSet(name, H5::PredType::IEEE_F64LE, H5::DataSpace(1, &n));
  if (n > 0) ds.write(v.data(), H5::PredType::NATIVE_DOUBLE);
}

void write_column(H5::Group& group, const std::string& name,
                  const std::vector<std::int64_t>& v) {
  hsize_t n = v.size();
  H5::DataSet ds = group.createDataSet(name, H5::PredType::STD_I64LE, H5::DataSpace(1, &n));
  if (n > 0) ds.write(v.data(), H5::PredType::NATIVE_INT64);
}

// String columns go through HDF5's type conversion, whose buffer (1 MiB by default) is
// calloc'ed on every H5Dwrite/H5Dread: that zeroing was ~75% of a flush's time. A buffer
// sized to the column (16 bytes per variable-length element on disk) avoids it.
H5::DSetMemXferPropList string_transfer(std::size_t n) {
  H5::DSetMemXferPropList xfer;
  xfer.setBuffer(std::max<std::size_t>(n * 16, 4096), nullptr, nullptr);
  return xfer;
}

void write_column(H5::Group& group, const std::string& name,
                  const std::vector<std::string>& v) {
  H5::StrType type = utf8_string_type();
  hsize_t n = v.size();
  H5::DataSet ds = group.createDataSet(name, type, H5::DataSpace(1, &n));
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  if (n > 0) {
    ds.write(ptrs.data(), type, H5::DataSpace::ALL, H5::DataSpace::ALL, string_transfer(v.size()));
  }
}

// ---- validation of what callers hand the recorder ----

// Names that become HDF5 links (curve and column names).
void check_link_name(const std::string& file, const std::string& what,
                     const std::string& name) {
  OT_REQUIRE(!name.empty() && name != "." && name.find('/') == std::string::npos &&
                 name.find('\0') == std::string::npos,
             file, ": ", what, " '", name,
             "' is not valid: expected a non-empty name without '/' or NUL");
}

// Variable-length HDF5 strings are C strings: an embedded NUL would silently truncate.
void check_text(const std::string& file, const std::string& what, const std::string& text) {
  OT_REQUIRE(text.find('\0') == std::string::npos, file, ": ", what,
             " contains a NUL character, which HDF5 strings cannot hold");
}

// ---- reading helpers ----

std::vector<std::string> decode_strings(const H5::StrType& file_type, std::size_t n,
                                        const H5::DataSpace& space,
                                        const std::function<void(const H5::DataType&, void*)>& read) {
  std::vector<std::string> out;
  out.reserve(n);
  if (n == 0) return out;
  if (file_type.isVariableStr()) {
    // Read with the file's character set: HDF5 does not convert between sets.
    H5::StrType mem(H5::PredType::C_S1, H5T_VARIABLE);
    mem.setCset(file_type.getCset());
    std::vector<char*> ptrs(n, nullptr);
    read(mem, ptrs.data());
    for (char* p : ptrs) out.emplace_back(p != nullptr ? p : "");
    H5::DataSet::vlenReclaim(ptrs.data(), mem, space);
  } else {
    std::size_t size = file_type.getSize();
    std::vector<char> buf(n * size);
    read(file_type, buf.data());
    for (std::size_t i = 0; i < n; ++i) {
      const char* p = buf.data() + i * size;
      out.emplace_back(p, ::strnlen(p, size));
    }
  }
  return out;
}

std::size_t length_1d(const H5::DataSpace& space, const std::string& file,
                      const std::string& where) {
  OT_REQUIRE(space.getSimpleExtentNdims() == 1, file, ": ", where,
             " is not one-dimensional as the schema requires");
  hsize_t n = 0;
  space.getSimpleExtentDims(&n);
  return static_cast<std::size_t>(n);
}

std::vector<std::string> read_string_list_attr(const H5::H5Object& obj, const std::string& name,
                                               const std::string& file,
                                               const std::string& where) {
  H5::Attribute attr = obj.openAttribute(name);
  OT_REQUIRE(attr.getTypeClass() == H5T_STRING, file, ": attribute '", name, "' of ", where,
             " should hold strings");
  H5::DataSpace space = attr.getSpace();
  std::size_t n = length_1d(space, file, "attribute '" + name + "' of " + where);
  return decode_strings(attr.getStrType(), n, space,
                        [&](const H5::DataType& t, void* buf) { attr.read(t, buf); });
}

std::string read_string_attr(const H5::Attribute& attr) {
  std::string value;
  attr.read(attr.getStrType(), value);
  return value;
}

// A 1-D table column; `where` is e.g. "/eval/task".
H5::DataSet open_column(const H5::Group& group, const std::string& name, const std::string& file,
                        const std::string& group_path) {
  OT_REQUIRE(group.nameExists(name), file, ": ", group_path, ": missing column '", name, "'");
  OT_REQUIRE(group.childObjType(name) == H5O_TYPE_DATASET, file, ": ", group_path, "/", name,
             " should be a dataset");
  return group.openDataSet(name);
}

std::vector<double> read_doubles(const H5::Group& group, const std::string& name,
                                 const std::string& file, const std::string& group_path) {
  H5::DataSet ds = open_column(group, name, file, group_path);
  H5T_class_t cls = ds.getTypeClass();
  OT_REQUIRE(cls == H5T_FLOAT || cls == H5T_INTEGER, file, ": ", group_path, "/", name,
             " should hold numbers");
  std::size_t n = length_1d(ds.getSpace(), file, group_path + "/" + name);
  std::vector<double> v(n);
  if (n > 0) ds.read(v.data(), H5::PredType::NATIVE_DOUBLE);
  return v;
}

std::vector<std::int64_t> read_ints(const H5::Group& group, const std::string& name,
                                    const std::string& file, const std::string& group_path) {
  H5::DataSet ds = open_column(group, name, file, group_path);
  OT_REQUIRE(ds.getTypeClass() == H5T_INTEGER, file, ": ", group_path, "/", name,
             " should hold integers");
  std::size_t n = length_1d(ds.getSpace(), file, group_path + "/" + name);
  std::vector<std::int64_t> v(n);
  if (n > 0) ds.read(v.data(), H5::PredType::NATIVE_INT64);
  return v;
}

std::vector<std::string> read_strings(const H5::Group& group, const std::string& name,
                                      const std::string& file, const std::string& group_path) {
  H5::DataSet ds = open_column(group, name, file, group_path);
  OT_REQUIRE(ds.getTypeClass() == H5T_STRING, file, ": ", group_path, "/", name,
             " should hold strings");
  H5::DataSpace space = ds.getSpace();
  std::size_t n = length_1d(space, file, group_path + "/" + name);
  return decode_strings(ds.getStrType(), n, space,
                        [&](const H5::DataType& t, void* buf) {
                          ds.read(buf, t, H5::DataSpace::ALL, H5::DataSpace::ALL,
                                  string_transfer(n));
                        });
}

// Every column of a table must have as many rows as the first.
void check_rows(std::size_t n, std::size_t expected, const std::string& file,
                const std::string& group_path, const std::string& column,
                const std::string& first_column) {
  OT_REQUIRE(n == expected, file, ": ", group_path, ": column '", column, "' has ", n,
             " rows but '", first_column, "' has ", expected);
}

Curve read_curve(const H5::Group& g, const std::string& file, const std::string& group_path) {
  Curve curve;
  if (g.attrExists("columns")) {
    curve.columns = read_string_list_attr(g, "columns", file, group_path);
  } else {
    // Written by something else: fall back to the datasets in name order.
    for (hsize_t i = 0; i < g.getNumObjs(); ++i) curve.columns.push_back(g.getObjnameByIdx(i));
  }
  for (const auto& col : curve.columns) {
    auto values = read_doubles(g, col, file, group_path);
    if (!curve.values.empty()) {
      check_rows(values.size(), curve.values.at(curve.columns.front()).size(), file, group_path,
                 col, curve.columns.front());
    }
    curve.values.emplace(col, std::move(values));
  }
  return curve;
}

RunStatus parse_status(const std::string& s, const std::string& file) {
  if (s == "running") return RunStatus::Running;
  if (s == "completed") return RunStatus::Completed;
  if (s == "failed") return RunStatus::Failed;
  ot::fail(file, ": root attribute 'status' is '", s,
           "', expected 'running', 'completed' or 'failed'");
}

}  // namespace

std::string to_string(RunStatus status) {
  switch (status) {
    case RunStatus::Running: return "running";
    case RunStatus::Completed: return "completed";
    case RunStatus::Failed: return "failed";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------- Curve

std::size_t Curve::rows() const {
  return columns.empty() ? 0 : values.at(columns.front()).size();
}

const std::vector<double>& Curve::column(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end()) {
    std::string have;
    for (const auto& c : columns) have += (have.empty() ? "" : ", ") + c;
    ot::fail("curve has no column '", name, "' (columns: ", have, ")");
  }
  return it->second;
}

// ---------------------------------------------------------------------------- RunRecorder

RunRecorder::RunRecorder(std::string path, RunInfo info) : path_(std::move(path)), info_(std::move(info)) {
  open_file(nullptr);
}

RunRecorder::RunRecorder(std::string path, RunInfo info, const RunReader& earlier)
    : path_(std::move(path)), info_(std::move(info)) {
  open_file(&earlier);
}

void RunRecorder::open_file(const RunReader* earlier) {
  silence_hdf5();
  OT_REQUIRE(!path_.empty(), "run file path is empty");
  if (info_.git_commit.empty()) info_.git_commit = ot::git_commit();
  if (info_.host.empty()) info_.host = ot::hostname();
  if (info_.offsite_version.empty()) info_.offsite_version = ot::version();
  OT_REQUIRE(info_.world_size >= 1, path_, ": world_size must be at least 1, got ",
             info_.world_size);
  for (const auto* field : {&info_.run_id, &info_.experiment, &info_.config_toml,
                            &info_.command_line, &info_.git_commit, &info_.host,
                            &info_.offsite_version, &info_.libtorch_version}) {
    check_text(path_, "run info", *field);
  }
  created_utc_ = ot::utc_now_iso8601();
  if (earlier) {
    OT_REQUIRE(earlier->status() == RunStatus::Running, earlier->path(), ": only a running (interrupted) run can be continued, this one is ",
               to_string(earlier->status()));
    const auto id = earlier->attributes().find("run_id");
    OT_REQUIRE(id != earlier->attributes().end() && std::holds_alternative<std::string>(id->second) &&
                   std::get<std::string>(id->second) == info_.run_id,
               earlier->path(), ": belongs to another run than ", info_.run_id);
    for (const auto& [name, value] : earlier->attributes()) {
      if (name == "created_utc" && std::holds_alternative<std::string>(value)) created_utc_ = std::get<std::string>(value);
      if (reserved_attributes().count(name) == 0) attributes_[name] = value;
    }
    for (const auto& [name, curve] : earlier->curves()) {
      CurveData data;
      data.columns = curve.columns;
      for (const auto& c : curve.columns) data.values.push_back(curve.values.at(c));
      curves_.emplace_back(name, std::move(data));
    }
    eval_ = earlier->eval();
    efficiency_ = earlier->efficiency();
    for (const auto& r : earlier->ranks()) ranks_[r.rank] = r.tokens_per_s;
  }
  std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    OT_REQUIRE(!ec, parent.string(), ": cannot create results directory: ", ec.message());
  }
  // An earlier attempt at this run killed mid-flush left its temporary behind.
  ot::remove_atomic_write_leftovers(path_);
  flush();
}

RunRecorder::~RunRecorder() {
  if (!dirty_) return;
  try {
    flush();
  } catch (...) {
    // A destructor must not throw; the last successful flush stays on disk.
  }
}

void RunRecorder::set_flush_interval_seconds(double seconds) {
  OT_REQUIRE(seconds >= 0, path_, ": flush interval must be >= 0 seconds, got ", seconds);
  flush_interval_s_ = seconds;
}

void RunRecorder::require_open(const char* what) const {
  OT_REQUIRE(status_ == RunStatus::Running, path_, ": cannot ", what,
             ": the run is already marked ", to_string(status_));
}

void RunRecorder::set_attribute_value(const std::string& name, AttributeValue value) {
  require_open("set an attribute");
  OT_REQUIRE(!name.empty() && name.find('\0') == std::string::npos, path_,
             ": attribute name '", name, "' is not valid: expected a non-empty name");
  OT_REQUIRE(reserved_attributes().count(name) == 0, path_, ": attribute '", name,
             "' is part of the result schema and cannot be set with set_attribute");
  if (const auto* s = std::get_if<std::string>(&value)) check_text(path_, "attribute '" + name + "'", *s);
  attributes_[name] = std::move(value);
  dirty_ = true;
}

void RunRecorder::set_attribute(const std::string& name, const std::string& value) {
  set_attribute_value(name, AttributeValue(value));
}
void RunRecorder::set_attribute(const std::string& name, const char* value) {
  OT_REQUIRE(value != nullptr, path_, ": attribute '", name, "' is a null string");
  set_attribute_value(name, AttributeValue(std::string(value)));
}
void RunRecorder::set_attribute(const std::string& name, double value) {
  set_attribute_value(name, AttributeValue(value));
}

void RunRecorder::add_curve_row(const std::string& curve, const CurveRow& row) {
  require_open("add a curve row");
  check_link_name(path_, "curve name", curve);
  OT_REQUIRE(!row.empty(), path_, ": curve '", curve, "': a row needs at least one column");
  auto it = std::find_if(curves_.begin(), curves_.end(),
                         [&](const auto& c) { return c.first == curve; });
  if (it == curves_.end()) {
    CurveData data;
    for (const auto& [name, value] : row) {
      check_link_name(path_, "curve '" + curve + "': column name", name);
      OT_REQUIRE(std::find(data.columns.begin(), data.columns.end(), name) == data.columns.end(),
                 path_, ": curve '", curve, "': column '", name, "' appears twice in one row");
      data.columns.push_back(name);
      data.values.push_back({value});
    }
    curves_.emplace_back(curve, std::move(data));
  } else {
    CurveData& data = it->second;
    auto columns_text = [&] {
      std::string s;
      for (const auto& c : data.columns) s += (s.empty() ? "" : ", ") + c;
      return s;
    };
    // Map every value to its column before touching the data, so a bad row changes nothing.
    std::vector<std::size_t> slot(row.size());
    std::vector<bool> seen(data.columns.size(), false);
    bool ok = row.size() == data.columns.size();
    for (std::size_t i = 0; ok && i < row.size(); ++i) {
      // Rows usually repeat the first row's order: try the same position first.
      std::size_t j = i;
      if (data.columns[j] != row[i].first) {
        auto c = std::find(data.columns.begin(), data.columns.end(), row[i].first);
        j = static_cast<std::size_t>(c - data.columns.begin());
      }
      ok = j < data.columns.size() && !seen[j];
      if (ok) {
        seen[j] = true;
        slot[i] = j;
      }
    }
    if (!ok) {
      std::string got;
      for (const auto& [name, value] : row) got += (got.empty() ? "" : ", ") + name;
      ot::fail(path_, ": curve '", curve, "': row has columns (", got,
               ") but the curve's first row fixed them to (", columns_text(), ")");
    }
    const auto step_col = std::find(data.columns.begin(), data.columns.end(), "step");
    if (step_col != data.columns.end()) {
      const std::size_t sc = static_cast<std::size_t>(step_col - data.columns.begin());
      double step = 0;
      for (std::size_t i = 0; i < row.size(); ++i)
        if (slot[i] == sc) step = row[i].second;
      std::vector<double>& steps = data.values[sc];
      std::size_t keep = steps.size();
      while (keep > 0 && steps[keep - 1] >= step) --keep;  // rewound: forget the rows redone now
      if (keep < steps.size())
        for (auto& column : data.values) column.resize(keep);
    }
    for (std::size_t i = 0; i < row.size(); ++i) data.values[slot[i]].push_back(row[i].second);
  }
  dirty_ = true;
  maybe_flush();
}

void RunRecorder::add_eval(const EvalRow& row) {
  require_open("add an evaluation row");
  check_text(path_, "eval setting", row.setting);
  check_text(path_, "eval task", row.task);
  check_text(path_, "eval metric", row.metric);
  // A continued attempt evaluates again what its killed predecessor had recorded: one row
  // per (setting, task, metric), in the order first recorded, as an uninterrupted run has it.
  auto same = std::find_if(eval_.begin(), eval_.end(), [&](const EvalRow& e) {
    return e.setting == row.setting && e.task == row.task && e.metric == row.metric;
  });
  if (same != eval_.end()) *same = row;
  else eval_.push_back(row);
  dirty_ = true;
  flush();
}

void RunRecorder::set_efficiency(const std::string& name, double value, const std::string& unit) {
  require_open("set an efficiency number");
  OT_REQUIRE(!name.empty(), path_, ": efficiency name is empty");
  check_text(path_, "efficiency name", name);
  check_text(path_, "efficiency unit of '" + name + "'", unit);
  auto it = std::find_if(efficiency_.begin(), efficiency_.end(),
                         [&](const auto& e) { return e.name == name; });
  if (it == efficiency_.end()) {
    efficiency_.push_back({name, value, unit});
  } else {
    it->value = value;
    it->unit = unit;
  }
  dirty_ = true;
}

void RunRecorder::set_rank_throughput(std::int64_t rank, double tokens_per_s) {
  require_open("set a rank's throughput");
  OT_REQUIRE(rank >= 0, path_, ": rank must be >= 0, got ", rank);
  ranks_[rank] = tokens_per_s;
  dirty_ = true;
}

void RunRecorder::maybe_flush() {
  double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_flush_)
                     .count();
  if (flush_interval_s_ <= 0 || since >= flush_interval_s_) flush();
}

void RunRecorder::flush() {
  write_file_atomically(path_, [this](const std::string& tmp) { write_file(tmp); });
  dirty_ = false;
  ++flush_count_;
  last_flush_ = std::chrono::steady_clock::now();
}

void RunRecorder::complete() {
  require_open("mark the run completed");
  status_ = RunStatus::Completed;
  flush();
}

void RunRecorder::fail(const std::string& message) {
  require_open("mark the run failed");
  // The message may come from anywhere (an exception's what()): keep it storable.
  std::string clean = message;
  std::replace(clean.begin(), clean.end(), '\0', ' ');
  error_ = clean.empty() ? std::string("unknown error") : clean;
  status_ = RunStatus::Failed;
  flush();
}

void RunRecorder::write_file(const std::string& file) const {
  try {
    H5::H5File h5(file, H5F_ACC_TRUNC);
    {
      write_attr(h5, "schema_version", static_cast<std::int64_t>(kSchemaVersion));
      write_attr(h5, "run_id", info_.run_id);
      write_attr(h5, "experiment", info_.experiment);
      write_attr(h5, "status", to_string(status_));
      write_attr(h5, "error", error_);
      write_attr(h5, "created_utc", created_utc_);
      write_attr(h5, "updated_utc", ot::utc_now_iso8601());
      write_attr(h5, "config_toml", info_.config_toml);
      write_attr(h5, "command_line", info_.command_line);
      write_attr(h5, "git_commit", info_.git_commit);
      write_attr(h5, "host", info_.host);
      write_attr(h5, "offsite_version", info_.offsite_version);
      write_attr(h5, "libtorch_version", info_.libtorch_version);
      write_attr(h5, "hdf5_version", hdf5_library_version());
      write_attr(h5, "world_size", static_cast<std::int64_t>(info_.world_size));
      for (const auto& attr : attributes_) {
        std::visit([&](const auto& v) { write_attr(h5, attr.first, v); }, attr.second);
      }

      H5::Group curves = h5.createGroup("curves");
      for (const auto& [name, data] : curves_) {
        H5::Group g = curves.createGroup(name);
        write_string_list_attr(g, "columns", data.columns);
        for (std::size_t c = 0; c < data.columns.size(); ++c) {
          write_column(g, data.columns[c], data.values[c]);
        }
      }

      H5::Group eval = h5.createGroup("eval");
      write_string_list_attr(eval, "columns",
                             {"setting", "task", "metric", "value", "stderr", "n"});
      std::vector<std::string> setting, task, metric;
      std::vector<double> value, stderr_value;
      std::vector<std::int64_t> n;
      for (const auto& r : eval_) {
        setting.push_back(r.setting);
        task.push_back(r.task);
        metric.push_back(r.metric);
        value.push_back(r.value);
        stderr_value.push_back(r.stderr_value);
        n.push_back(r.n);
      }
      write_column(eval, "setting", setting);
      write_column(eval, "task", task);
      write_column(eval, "metric", metric);
      write_column(eval, "value", value);
      write_column(eval, "stderr", stderr_value);
      write_column(eval, "n", n);

      H5::Group eff = h5.createGroup("efficiency");
      write_string_list_attr(eff, "columns", {"name", "value", "unit"});
      std::vector<std::string> eff_name, eff_unit;
      std::vector<double> eff_value;
      for (const auto& e : efficiency_) {
        eff_name.push_back(e.name);
        eff_value.push_back(e.value);
        eff_unit.push_back(e.unit);
      }
      write_column(eff, "name", eff_name);
      write_column(eff, "value", eff_value);
      write_column(eff, "unit", eff_unit);

      if (!ranks_.empty()) {
        H5::Group ranks = h5.createGroup("ranks");
        write_string_list_attr(ranks, "columns", {"rank", "tokens_per_s"});
        std::vector<std::int64_t> rank;
        std::vector<double> tps;
        for (const auto& [r, t] : ranks_) {
          rank.push_back(r);
          tps.push_back(t);
        }
        write_column(ranks, "rank", rank);
        write_column(ranks, "tokens_per_s", tps);
      }
    }  // every group/dataset handle is closed here, so close() really closes the file
    h5.close();
  } catch (const H5::Exception& e) {
    // HDF5's messages do not carry the system's reason; a full disk is the common one.
    const int err = errno;
    std::string reason;
    struct statvfs fs_info {};
    const std::string parent = std::filesystem::path(file).parent_path().string();
    if (err == ENOSPC || err == EDQUOT) reason = std::string(" (") + std::strerror(err) + ")";
    else if (::statvfs(parent.empty() ? "." : parent.c_str(), &fs_info) == 0 && fs_info.f_bavail == 0)
      reason = std::string(" (") + std::strerror(ENOSPC) + ")";
    ot::fail(path_, ": cannot write run file: ", describe(e), reason);
  }
}

// ---------------------------------------------------------------------------- RunReader

RunReader RunReader::open(const std::string& path) {
  silence_hdf5();
  OT_REQUIRE(!dir_exists(path), path, ": is a directory, expected an HDF5 run file");
  OT_REQUIRE(file_exists(path), path, ": no such run file");
  bool is_hdf5 = false;
  try {
    is_hdf5 = H5::H5File::isHdf5(path);
  } catch (const H5::Exception&) {
    is_hdf5 = false;
  }
  OT_REQUIRE(is_hdf5, path,
             ": not an HDF5 file (corrupt, or another format); expected an offsite run file");

  RunReader r;
  r.path_ = path;
  try {
    H5::H5File h5(path, H5F_ACC_RDONLY);

    for (int i = 0; i < h5.getNumAttrs(); ++i) {
      H5::Attribute attr = h5.openAttribute(static_cast<unsigned>(i));
      if (attr.getSpace().getSimpleExtentType() != H5S_SCALAR) continue;
      std::string name = attr.getName();
      switch (attr.getTypeClass()) {
        case H5T_STRING: r.attributes_[name] = read_string_attr(attr); break;
        case H5T_INTEGER: {
          std::int64_t v = 0;
          attr.read(H5::PredType::NATIVE_INT64, &v);
          r.attributes_[name] = v;
          break;
        }
        case H5T_FLOAT: {
          double v = 0;
          attr.read(H5::PredType::NATIVE_DOUBLE, &v);
          r.attributes_[name] = v;
          break;
        }
        default: break;  // other types are not part of the schema
      }
    }

    // The version decides how to read the rest, so check it before anything else.
    OT_REQUIRE(r.has_attribute("schema_version"), path,
               ": not an offsite run file (root attribute 'schema_version' is missing)");
    std::int64_t version = r.int_attribute("schema_version");
    OT_REQUIRE(version == kSchemaVersion, path, ": result schema version ", version,
               " is not supported; this build of offsite reads schema version ", kSchemaVersion);
    r.schema_version_ = static_cast<int>(version);
    r.status_ = parse_status(r.string_attribute("status"), path);
    if (r.has_attribute("error")) r.error_ = r.string_attribute("error");

    if (h5.nameExists("curves")) {
      H5::Group curves = h5.openGroup("curves");
      for (hsize_t i = 0; i < curves.getNumObjs(); ++i) {
        std::string name = curves.getObjnameByIdx(i);
        OT_REQUIRE(curves.childObjType(name) == H5O_TYPE_GROUP, path, ": /curves/", name,
                   " should be a group of column datasets");
        r.curves_.emplace(name, read_curve(curves.openGroup(name), path, "/curves/" + name));
      }
    }

    if (h5.nameExists("eval")) {
      H5::Group g = h5.openGroup("eval");
      const std::string gp = "/eval";
      auto setting = read_strings(g, "setting", path, gp);
      auto task = read_strings(g, "task", path, gp);
      auto metric = read_strings(g, "metric", path, gp);
      auto value = read_doubles(g, "value", path, gp);
      auto err = read_doubles(g, "stderr", path, gp);
      auto n = read_ints(g, "n", path, gp);
      std::size_t rows = setting.size();
      check_rows(task.size(), rows, path, gp, "task", "setting");
      check_rows(metric.size(), rows, path, gp, "metric", "setting");
      check_rows(value.size(), rows, path, gp, "value", "setting");
      check_rows(err.size(), rows, path, gp, "stderr", "setting");
      check_rows(n.size(), rows, path, gp, "n", "setting");
      for (std::size_t i = 0; i < rows; ++i) {
        r.eval_.push_back({setting[i], task[i], metric[i], value[i], err[i], n[i]});
      }
    }

    if (h5.nameExists("efficiency")) {
      H5::Group g = h5.openGroup("efficiency");
      const std::string gp = "/efficiency";
      auto name = read_strings(g, "name", path, gp);
      auto value = read_doubles(g, "value", path, gp);
      auto unit = read_strings(g, "unit", path, gp);
      check_rows(value.size(), name.size(), path, gp, "value", "name");
      check_rows(unit.size(), name.size(), path, gp, "unit", "name");
      for (std::size_t i = 0; i < name.size(); ++i) {
        r.efficiency_.push_back({name[i], value[i], unit[i]});
      }
    }

    if (h5.nameExists("ranks")) {
      H5::Group g = h5.openGroup("ranks");
      const std::string gp = "/ranks";
      auto rank = read_ints(g, "rank", path, gp);
      auto tps = read_doubles(g, "tokens_per_s", path, gp);
      check_rows(tps.size(), rank.size(), path, gp, "tokens_per_s", "rank");
      for (std::size_t i = 0; i < rank.size(); ++i) r.ranks_.push_back({rank[i], tps[i]});
    }
  } catch (const H5::Exception& e) {
    ot::fail(path, ": cannot read run file (truncated or corrupt?): ", describe(e));
  }
  return r;
}

const std::string& RunReader::string_attribute(const std::string& name) const {
  auto it = attributes_.find(name);
  OT_REQUIRE(it != attributes_.end(), path_, ": root attribute '", name, "' is missing");
  const auto* s = std::get_if<std::string>(&it->second);
  OT_REQUIRE(s != nullptr, path_, ": root attribute '", name, "' should be a string");
  return *s;
}

double RunReader::double_attribute(const std::string& name) const {
  auto it = attributes_.find(name);
  OT_REQUIRE(it != attributes_.end(), path_, ": root attribute '", name, "' is missing");
  if (const auto* d = std::get_if<double>(&it->second)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&it->second)) return static_cast<double>(*i);
  ot::fail(path_, ": root attribute '", name, "' should be a number");
}

std::int64_t RunReader::int_attribute(const std::string& name) const {
  auto it = attributes_.find(name);
  OT_REQUIRE(it != attributes_.end(), path_, ": root attribute '", name, "' is missing");
  const auto* i = std::get_if<std::int64_t>(&it->second);
  OT_REQUIRE(i != nullptr, path_, ": root attribute '", name, "' should be an integer");
  return *i;
}

const Curve& RunReader::curve(const std::string& name) const {
  auto it = curves_.find(name);
  if (it == curves_.end()) {
    std::string have;
    for (const auto& [n, c] : curves_) have += (have.empty() ? "" : ", ") + n;
    ot::fail(path_, ": no curve '", name, "' (curves: ", have.empty() ? "none" : have, ")");
  }
  return it->second;
}

double RunReader::efficiency_value(const std::string& name) const {
  for (const auto& e : efficiency_) {
    if (e.name == name) return e.value;
  }
  ot::fail(path_, ": no efficiency entry '", name, "'");
}

bool run_is_complete(const std::string& path) noexcept {
  try {
    return RunReader::open(path).status() == RunStatus::Completed;
  } catch (...) {
    return false;
  }
}

}  // namespace ot::results
