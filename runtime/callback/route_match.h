#pragma once

// Dapr's routing rules (subscription `routes.rules[].match`): a CEL expression over the event
// picks the path the event is delivered to. We evaluate the subset that routing rules use in
// practice, and refuse anything else when the subscription is made (never at delivery):
//
//   operands  event.<attribute> (id, source, type, specversion, datacontenttype, subject, time,
//             topic, pubsubname, or an extension), event.data.<field>[.<field>...] (JSON data),
//             string literals ("..." or '...'), numbers, true, false, null
//   operators == != < <= > >=, &&, ||, !, ( ), and the methods .startsWith(s), .endsWith(s),
//             .contains(s) on strings
//
// An expression that reads an absent field is an error in CEL, so the rule does not match.
//
// Threading: a parsed matcher is immutable; Matches() may run on any thread.

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/api/cloud_event.h"

namespace ottava::runtime::callback {

class RouteMatcher {
 public:
  /// Parses `expression`; INVALID_ARGUMENT names what is not understood and where.
  static absl::StatusOr<RouteMatcher> Parse(std::string_view expression);

  /// Whether the event satisfies the expression (false when it reads an absent field or
  /// compares values of different kinds).
  bool Matches(const api::CloudEvent& event) const;

  struct Node;

 private:
  explicit RouteMatcher(std::shared_ptr<const Node> root) : root_(std::move(root)) {}
  std::shared_ptr<const Node> root_;
};

/// One rule of a subscription: deliver to `path` when `match` holds.
struct RouteRule {
  std::string match;
  std::string path;
};

}  // namespace ottava::runtime::callback
