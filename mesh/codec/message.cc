// TEMPORARY (branch h-router only): a minimal implementation of message.h so that the router
// tests link. The codec engineer's message.cc replaces it at merge.

#include "mesh/codec/message.h"

#include <algorithm>

namespace ottava::mesh {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) {
             return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
           };
           return lower(x) == lower(y);
         });
}

std::string LowerCopy(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c + 32);
    }
  }
  return out;
}

}  // namespace

void HeaderMap::Add(std::string_view name, std::string_view value) {
  entries_.emplace_back(LowerCopy(name), std::string(value));
}

const std::string* HeaderMap::Get(std::string_view name) const {
  for (const Entry& entry : entries_) {
    if (EqualsIgnoreCase(entry.first, name)) {
      return &entry.second;
    }
  }
  return nullptr;
}

void HeaderMap::Set(std::string_view name, std::string_view value) {
  Remove(name);
  Add(name, value);
}

size_t HeaderMap::Remove(std::string_view name) {
  const size_t before = entries_.size();
  std::erase_if(entries_,
                [name](const Entry& entry) { return EqualsIgnoreCase(entry.first, name); });
  return before - entries_.size();
}

void HeaderMap::Append(std::string_view name, std::string_view value) {
  for (Entry& entry : entries_) {
    if (EqualsIgnoreCase(entry.first, name)) {
      entry.second.append(", ").append(value);
      return;
    }
  }
  Add(name, value);
}

size_t HeaderMap::ByteSize() const {
  size_t size = 0;
  for (const Entry& entry : entries_) {
    size += entry.first.size() + entry.second.size();
  }
  return size;
}

std::string_view RequestHeaders::PathOnly() const {
  std::string_view view = path;
  return view.substr(0, view.find('?'));
}

std::string_view RequestHeaders::Query() const {
  const size_t mark = path.find('?');
  return mark == std::string::npos ? std::string_view() : std::string_view(path).substr(mark + 1);
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 404:
      return "Not Found";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

}  // namespace ottava::mesh
