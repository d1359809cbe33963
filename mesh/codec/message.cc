#include "mesh/codec/message.h"

#include <algorithm>
#include <cstring>
#include <tuple>

namespace ottava::mesh {
namespace {

char Lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

// Case-insensitive (names added with AddCased keep their case).
bool NameEquals(const std::string& stored, std::string_view name) {
  if (stored.size() != name.size()) {
    return false;
  }
  if (std::memcmp(stored.data(), name.data(), name.size()) == 0) {
    return true;  // the usual case: asked in the case it was stored in
  }
  for (size_t i = 0; i < name.size(); ++i) {
    if (Lower(stored[i]) != Lower(name[i])) {
      return false;
    }
  }
  return true;
}

}  // namespace

void HeaderMap::Add(std::string_view name, std::string_view value) {
  std::string lower(name);
  for (char& c : lower) {
    c = Lower(c);
  }
  from_wire_ = false;
  entries_.emplace_back(std::move(lower), std::string(value));
}

void HeaderMap::AddCased(std::string_view name, std::string_view value) {
  from_wire_ = false;
  entries_.emplace_back(std::piecewise_construct, std::forward_as_tuple(name),
                        std::forward_as_tuple(value));
}

const std::string* HeaderMap::Get(std::string_view name) const {
  for (const Entry& entry : entries_) {
    if (NameEquals(entry.first, name)) {
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
  entries_.erase(
      std::remove_if(entries_.begin(), entries_.end(),
                     [name](const Entry& entry) { return NameEquals(entry.first, name); }),
      entries_.end());
  const size_t removed = before - entries_.size();
  if (removed > 0) {
    from_wire_ = false;
  }
  return removed;
}

void HeaderMap::Append(std::string_view name, std::string_view value) {
  for (Entry& entry : entries_) {
    if (NameEquals(entry.first, name)) {
      from_wire_ = false;
      entry.second.append(", ");
      entry.second.append(value);
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
  std::string_view p(path);
  const size_t end = p.find_first_of("?#");
  return end == std::string_view::npos ? p : p.substr(0, end);
}

std::string_view RequestHeaders::Query() const {
  std::string_view p(path);
  const size_t q = p.find('?');
  if (q == std::string_view::npos) {
    return {};
  }
  std::string_view query = p.substr(q + 1);
  const size_t hash = query.find('#');
  return hash == std::string_view::npos ? query : query.substr(0, hash);
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 102:
      return "Processing";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 207:
      return "Multi-Status";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Entity";
    case 425:
      return "Too Early";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 451:
      return "Unavailable For Legal Reasons";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    case 507:
      return "Insufficient Storage";
    case 511:
      return "Network Authentication Required";
    default:
      return "Unknown";
  }
}

}  // namespace ottava::mesh
