#include "test/bench/bench_util.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ottava::bench {

absl::StatusOr<Flags> Flags::Parse(int argc, const char* const* argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      flags.positional_.assign(argv + i + 1, argv + argc);
      break;
    }
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      return absl::InvalidArgumentError("unexpected argument '" + arg +
                                        "' (flags are --name value)");
    }
    std::string name;
    std::string value;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      name = arg.substr(2, eq - 2);
      value = arg.substr(eq + 1);
    } else {
      name = arg.substr(2);
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError("flag --" + name + " needs a value");
      }
      value = argv[++i];
    }
    if (!flags.values_.emplace(name, value).second) {
      return absl::InvalidArgumentError("flag --" + name + " given twice");
    }
  }
  return flags;
}

std::string Flags::String(const std::string& name, const std::string& default_value) {
  read_.insert(name);
  const auto it = values_.find(name);
  return it == values_.end() ? default_value : it->second;
}

absl::StatusOr<int64_t> Flags::Int(const std::string& name,
                                   int64_t default_value,
                                   int64_t min,
                                   int64_t max) {
  read_.insert(name);
  const auto it = values_.find(name);
  if (it == values_.end()) {
    return default_value;
  }
  const std::string& text = it->second;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return absl::InvalidArgumentError("flag --" + name + ": '" + text + "' is not an integer");
  }
  if (value < min || value > max) {
    return absl::InvalidArgumentError("flag --" + name + ": " + text + " is outside [" +
                                      std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return value;
}

absl::StatusOr<double> Flags::Double(const std::string& name,
                                     double default_value,
                                     double min,
                                     double max) {
  read_.insert(name);
  const auto it = values_.find(name);
  if (it == values_.end()) {
    return default_value;
  }
  const std::string& text = it->second;
  // std::from_chars for double is in libstdc++ 11+, which Debian 12 ships.
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return absl::InvalidArgumentError("flag --" + name + ": '" + text + "' is not a number");
  }
  if (value < min || value > max) {
    return absl::InvalidArgumentError("flag --" + name + ": " + text + " is outside the range [" +
                                      std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return value;
}

absl::Status Flags::CheckAllRead() const {
  for (const auto& [name, value] : values_) {
    if (read_.count(name) == 0) {
      return absl::InvalidArgumentError("unknown flag --" + name);
    }
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
    out.close();
    if (!out) {
      return absl::InternalError("cannot write " + tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return absl::InternalError("cannot rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ReadVmRssKib(int pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/status";
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError("cannot open " + path);
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      int64_t kib = 0;
      if (fields >> kib) {
        return kib;
      }
      break;
    }
  }
  return absl::NotFoundError("no VmRSS line in " + path);
}

}  // namespace ottava::bench
