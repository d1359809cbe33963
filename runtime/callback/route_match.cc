#include "runtime/callback/route_match.h"

#include <cctype>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

namespace ottava::runtime::callback {

using Json = nlohmann::json;

struct RouteMatcher::Node {
  enum class Kind { kLiteral, kPath, kNot, kAnd, kOr, kCompare, kMethod };
  Kind kind = Kind::kLiteral;
  Json literal;
  std::vector<std::string> path;  // kPath: the names after "event"
  std::string op;                 // kCompare: "==" ...; kMethod: "startsWith" ...
  std::shared_ptr<const Node> left;
  std::shared_ptr<const Node> right;
};

namespace {

using Node = RouteMatcher::Node;
using NodePtr = std::shared_ptr<const Node>;

struct Token {
  enum class Kind { kIdent, kString, kNumber, kOp, kEnd } kind = Kind::kEnd;
  std::string text;
  size_t at = 0;
};

absl::Status Error(std::string_view expression, size_t at, const std::string& what) {
  return absl::InvalidArgumentError("routing rule \"" + std::string(expression) + "\" at " +
                                    std::to_string(at) + ": " + what);
}

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    Token token;
    token.at = i;
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) {
        ++j;
      }
      token.kind = Token::Kind::kIdent;
      token.text = std::string(s.substr(i, j - i));
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '-' && i + 1 < s.size() &&
                std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      size_t j = i + 1;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) {
        ++j;
      }
      token.kind = Token::Kind::kNumber;
      token.text = std::string(s.substr(i, j - i));
      i = j;
    } else if (c == '"' || c == '\'') {
      size_t j = i + 1;
      std::string text;
      while (j < s.size() && s[j] != c) {
        if (s[j] == '\\' && j + 1 < s.size()) {
          ++j;
        }
        text.push_back(s[j]);
        ++j;
      }
      if (j >= s.size()) {
        return Error(s, i, "unterminated string");
      }
      token.kind = Token::Kind::kString;
      token.text = std::move(text);
      i = j + 1;
    } else {
      static constexpr std::string_view kOps[] = {"==", "!=", "<=", ">=", "&&", "||", "<",
                                                  ">",  "!",  "(",  ")",  ".",  ","};
      bool found = false;
      for (std::string_view op : kOps) {
        if (s.substr(i, op.size()) == op) {
          token.kind = Token::Kind::kOp;
          token.text = std::string(op);
          i += op.size();
          found = true;
          break;
        }
      }
      if (!found) {
        return Error(s, i, std::string("unexpected character '") + c + "'");
      }
    }
    out.push_back(std::move(token));
  }
  Token end;
  end.at = s.size();
  out.push_back(end);
  return out;
}

class Parser {
 public:
  Parser(std::string_view expression, std::vector<Token> tokens)
      : expression_(expression), tokens_(std::move(tokens)) {}

  absl::StatusOr<NodePtr> ParseAll() {
    absl::StatusOr<NodePtr> root = ParseOr();
    if (!root.ok()) {
      return root;
    }
    if (Peek().kind != Token::Kind::kEnd) {
      return Error(expression_, Peek().at, "unexpected '" + Peek().text + "'");
    }
    return root;
  }

 private:
  const Token& Peek() const { return tokens_[pos_]; }
  bool IsOp(const char* op) const { return Peek().kind == Token::Kind::kOp && Peek().text == op; }

  static NodePtr Binary(Node::Kind kind, std::string op, NodePtr left, NodePtr right) {
    auto node = std::make_shared<Node>();
    node->kind = kind;
    node->op = std::move(op);
    node->left = std::move(left);
    node->right = std::move(right);
    return node;
  }

  absl::StatusOr<NodePtr> ParseOr() {
    absl::StatusOr<NodePtr> left = ParseAnd();
    while (left.ok() && IsOp("||")) {
      ++pos_;
      absl::StatusOr<NodePtr> right = ParseAnd();
      if (!right.ok()) {
        return right;
      }
      left = Binary(Node::Kind::kOr, "||", *left, *right);
    }
    return left;
  }

  absl::StatusOr<NodePtr> ParseAnd() {
    absl::StatusOr<NodePtr> left = ParseUnary();
    while (left.ok() && IsOp("&&")) {
      ++pos_;
      absl::StatusOr<NodePtr> right = ParseUnary();
      if (!right.ok()) {
        return right;
      }
      left = Binary(Node::Kind::kAnd, "&&", *left, *right);
    }
    return left;
  }

  absl::StatusOr<NodePtr> ParseUnary() {
    if (IsOp("!")) {
      ++pos_;
      absl::StatusOr<NodePtr> inner = ParseUnary();
      if (!inner.ok()) {
        return inner;
      }
      return Binary(Node::Kind::kNot, "!", *inner, nullptr);
    }
    return ParseComparison();
  }

  absl::StatusOr<NodePtr> ParseComparison() {
    absl::StatusOr<NodePtr> left = ParseOperand();
    if (!left.ok()) {
      return left;
    }
    for (const char* op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (IsOp(op)) {
        ++pos_;
        absl::StatusOr<NodePtr> right = ParseOperand();
        if (!right.ok()) {
          return right;
        }
        return Binary(Node::Kind::kCompare, op, *left, *right);
      }
    }
    return left;
  }

  absl::StatusOr<NodePtr> ParseOperand() {
    const Token token = Peek();
    auto node = std::make_shared<Node>();
    switch (token.kind) {
      case Token::Kind::kString:
        ++pos_;
        node->literal = token.text;
        return node;
      case Token::Kind::kNumber: {
        ++pos_;
        Json number = Json::parse(token.text, nullptr, false);
        if (number.is_discarded()) {
          return Error(expression_, token.at, "bad number '" + token.text + "'");
        }
        node->literal = std::move(number);
        return node;
      }
      case Token::Kind::kOp:
        if (token.text == "(") {
          ++pos_;
          absl::StatusOr<NodePtr> inner = ParseOr();
          if (!inner.ok()) {
            return inner;
          }
          if (!IsOp(")")) {
            return Error(expression_, Peek().at, "expected ')'");
          }
          ++pos_;
          return inner;
        }
        return Error(expression_, token.at, "unexpected '" + token.text + "'");
      case Token::Kind::kEnd:
        return Error(expression_, token.at, "unexpected end of expression");
      case Token::Kind::kIdent:
        break;
    }
    ++pos_;
    if (token.text == "true" || token.text == "false") {
      node->literal = token.text == "true";
      return node;
    }
    if (token.text == "null") {
      node->literal = nullptr;
      return node;
    }
    if (token.text != "event") {
      return Error(expression_, token.at,
                   "unknown name '" + token.text + "' (only event.<attribute> is supported)");
    }
    node->kind = Node::Kind::kPath;
    while (IsOp(".")) {
      ++pos_;
      if (Peek().kind != Token::Kind::kIdent) {
        return Error(expression_, Peek().at, "expected a field name after '.'");
      }
      std::string name = Peek().text;
      ++pos_;
      if (IsOp("(")) {
        // A method call on what came before.
        if (name != "startsWith" && name != "endsWith" && name != "contains") {
          return Error(expression_, tokens_[pos_ - 1].at,
                       "unsupported function '" + name + "' (startsWith, endsWith, contains)");
        }
        ++pos_;
        absl::StatusOr<NodePtr> argument = ParseOperand();
        if (!argument.ok()) {
          return argument;
        }
        if (!IsOp(")")) {
          return Error(expression_, Peek().at, "expected ')' after the argument of " + name);
        }
        ++pos_;
        return Binary(Node::Kind::kMethod, name, node, *argument);
      }
      node->path.push_back(std::move(name));
    }
    if (node->path.empty()) {
      return Error(expression_, token.at, "expected event.<attribute>");
    }
    return node;
  }

  std::string_view expression_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

// The event as CEL sees it, built once per evaluation.
struct Scope {
  const api::CloudEvent& event;
  mutable std::optional<Json> data;  // parsed on first use

  std::optional<Json> Lookup(const std::vector<std::string>& path) const {
    const std::string& first = path[0];
    if (first == "data") {
      if (!data) {
        Json parsed = Json::parse(event.data, nullptr, false);
        data = parsed.is_discarded() ? Json(event.data) : std::move(parsed);
      }
      const Json* at = &*data;
      for (size_t i = 1; i < path.size(); ++i) {
        if (!at->is_object()) {
          return std::nullopt;
        }
        auto it = at->find(path[i]);
        if (it == at->end()) {
          return std::nullopt;
        }
        at = &*it;
      }
      return *at;
    }
    if (path.size() != 1) {
      return std::nullopt;
    }
    const std::string* value = nullptr;
    if (first == "id") {
      value = &event.id;
    } else if (first == "source") {
      value = &event.source;
    } else if (first == "type") {
      value = &event.type;
    } else if (first == "specversion") {
      value = &event.spec_version;
    } else if (first == "datacontenttype") {
      value = &event.data_content_type;
    } else if (first == "topic") {
      value = &event.topic;
    } else if (first == "pubsubname") {
      value = &event.pubsub_name;
    } else if (auto it = event.extensions.find(first); it != event.extensions.end()) {
      value = &it->second;
    }
    if (value == nullptr) {
      return std::nullopt;
    }
    return Json(*value);
  }
};

std::optional<Json> Eval(const Node& node, const Scope& scope);

std::optional<bool> Compare(const std::string& op, const Json& a, const Json& b) {
  if (op == "==") {
    return a == b;
  }
  if (op == "!=") {
    return a != b;
  }
  const bool comparable = (a.is_number() && b.is_number()) || (a.is_string() && b.is_string());
  if (!comparable) {
    return std::nullopt;
  }
  if (op == "<") {
    return a < b;
  }
  if (op == "<=") {
    return a <= b;
  }
  if (op == ">") {
    return a > b;
  }
  return a >= b;
}

std::optional<Json> Eval(const Node& node, const Scope& scope) {
  switch (node.kind) {
    case Node::Kind::kLiteral:
      return node.literal;
    case Node::Kind::kPath:
      return scope.Lookup(node.path);
    case Node::Kind::kNot: {
      std::optional<Json> inner = Eval(*node.left, scope);
      if (!inner || !inner->is_boolean()) {
        return std::nullopt;
      }
      return !inner->get<bool>();
    }
    case Node::Kind::kAnd:
    case Node::Kind::kOr: {
      // CEL's && and || are commutative over errors: false && error is false, true || error is
      // true.
      const bool is_and = node.kind == Node::Kind::kAnd;
      std::optional<Json> left = Eval(*node.left, scope);
      std::optional<Json> right = Eval(*node.right, scope);
      const bool left_bool = left && left->is_boolean();
      const bool right_bool = right && right->is_boolean();
      if (left_bool && left->get<bool>() != is_and) {
        return !is_and;
      }
      if (right_bool && right->get<bool>() != is_and) {
        return !is_and;
      }
      if (!left_bool || !right_bool) {
        return std::nullopt;
      }
      return is_and;
    }
    case Node::Kind::kCompare: {
      std::optional<Json> left = Eval(*node.left, scope);
      std::optional<Json> right = Eval(*node.right, scope);
      if (!left || !right) {
        return std::nullopt;
      }
      std::optional<bool> result = Compare(node.op, *left, *right);
      if (!result) {
        return std::nullopt;
      }
      return *result;
    }
    case Node::Kind::kMethod: {
      std::optional<Json> target = Eval(*node.left, scope);
      std::optional<Json> argument = Eval(*node.right, scope);
      if (!target || !argument || !target->is_string() || !argument->is_string()) {
        return std::nullopt;
      }
      const std::string& s = target->get_ref<const std::string&>();
      const std::string& a = argument->get_ref<const std::string&>();
      if (node.op == "startsWith") {
        return s.rfind(a, 0) == 0;
      }
      if (node.op == "endsWith") {
        return s.size() >= a.size() && s.compare(s.size() - a.size(), a.size(), a) == 0;
      }
      return s.find(a) != std::string::npos;
    }
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<RouteMatcher> RouteMatcher::Parse(std::string_view expression) {
  absl::StatusOr<std::vector<Token>> tokens = Tokenize(expression);
  if (!tokens.ok()) {
    return tokens.status();
  }
  Parser parser(expression, std::move(*tokens));
  absl::StatusOr<NodePtr> root = parser.ParseAll();
  if (!root.ok()) {
    return root.status();
  }
  return RouteMatcher(std::move(*root));
}

bool RouteMatcher::Matches(const api::CloudEvent& event) const {
  Scope scope{event, std::nullopt};
  std::optional<Json> result = Eval(*root_, scope);
  return result && result->is_boolean() && result->get<bool>();
}

}  // namespace ottava::runtime::callback
