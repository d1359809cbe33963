#include "sdk/cli.h"

#include <httplib.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <exception>
#include <filesystem>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sdk/cli_format.h"
#include "sdk/client.h"

#ifndef OTTAVA_VERSION
#define OTTAVA_VERSION "unknown"
#endif

namespace ottava::sdk::cli {
namespace {

constexpr const char* kMainFooter = R"txt(
Output: readable text by default. With --json every command prints exactly one JSON object on one
line (subscribe and config watch: one line per event or update); notes go to stderr.
Exit codes: 0 success, also for "not found", "not acquired" and lock statuses other than SUCCESS
(see the output); 1 a gRPC or HTTP error, printed on stderr as "error: <CODE>: <message>", an
unhealthy sidecar, or a stream that ended before --max results; 2 a usage error.
Global options may be given before or after the command. A value argument "-" reads stdin; put
"--" before values that start with '-'.

Examples:
  ottavactl state set user:1 alice
  ottavactl --json state get user:1
  ottavactl lock try --resource order-42 --owner worker-1 --expire 10
  ottavactl subscribe orders --max 1 --timeout 30
  ottavactl health --actuator 127.0.0.1:34999)txt";

// CLI11 reports validation failures as usage errors (exit 2) with the option's name, so arguments
// are checked at parse time with the same functions the commands use afterwards.
CLI::Validator KeyValueValidator() {
  return {[](std::string& text) {
            auto parsed = ParseKeyValue(text);
            return parsed.ok() ? std::string() : std::string(parsed.status().message());
          },
          "", "KEY=VALUE"};
}

CLI::Validator TxOperationValidator() {
  return {[](std::string& text) {
            auto parsed = ParseTxOperation(text);
            return parsed.ok() ? std::string() : std::string(parsed.status().message());
          },
          "", "OP"};
}

Consistency ToConsistency(const std::string& text) {
  if (text == "eventual") {
    return Consistency::kEventual;
  }
  if (text == "strong") {
    return Consistency::kStrong;
  }
  return Consistency::kUnspecified;
}

struct StateGetArgs {
  std::string store{kDefaultStateStore};
  std::string key;
  std::string consistency;
  std::vector<std::string> meta;
};

struct StateSetArgs {
  std::string store{kDefaultStateStore};
  std::string key;
  std::string value;
  std::string etag;
  bool first_write = false;
  bool last_write = false;
  int32_t ttl = 0;
  std::vector<std::string> meta;
};

struct StateDelArgs {
  std::string store{kDefaultStateStore};
  std::string key;
  std::string etag;
  bool first_write = false;
  std::vector<std::string> meta;
};

struct StateBulkArgs {
  std::string store{kDefaultStateStore};
  std::vector<std::string> keys;
  int32_t parallelism = 0;
  std::vector<std::string> meta;
};

struct StateTxArgs {
  std::string store{kDefaultStateStore};
  std::vector<std::string> operations;
  std::vector<std::string> meta;
};

struct LockArgs {
  std::string store{kDefaultLockStore};
  std::string resource;
  std::string owner;
  int32_t expire = 0;
};

struct SeqArgs {
  std::string store{kDefaultSequencer};
  std::string key;
  bool strong = false;
  std::vector<std::string> meta;
};

struct ConfigArgs {
  std::string store{kDefaultConfigStore};
  std::vector<std::string> keys;
  std::string key;
  std::string value;
  std::string group;
  std::string label;
  std::vector<std::string> tags;
  std::vector<std::string> meta;
  int64_t max = 0;
};

struct PublishArgs {
  std::string pubsub{kDefaultPubSub};
  std::string topic;
  std::string data;
  std::string content_type;
  std::vector<std::string> meta;
};

struct SubscribeArgs {
  std::string pubsub{kDefaultPubSub};
  std::string topic;
  std::string dead_letter_topic;
  std::string ack = "success";
  int64_t max = 0;
  std::vector<std::string> meta;
};

struct HelloArgs {
  std::string service;
  std::string name = "world";
};

struct HealthArgs {
  std::string actuator{kDefaultActuator};
};

class Cli {
 public:
  Cli(std::istream& in, std::ostream& out, std::ostream& err)
      : in_(in),
        out_(out),
        err_(err),
        app_(
            "ottavactl: command-line client of the Ottava sidecar "
            "(Layotto gRPC API and actuator)",
            "ottavactl") {
    Build();
  }

  int Run(int argc, const char* const* argv) {
    try {
      app_.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      // Help and --version are "errors" with exit code 0 that print to `out_`.
      return app_.exit(e, out_, err_) == 0 ? kExitOk : kExitUsage;
    }
    for (const auto& [command, action] : actions_) {
      if (command->parsed()) {
        return action();
      }
    }
    err_ << "error: no command given\nRun with --help for more information." << std::endl;
    return kExitUsage;
  }

 private:
  using Action = std::function<int()>;

  void Build() {
    app_.fallthrough();  // inherited by every subcommand: global options go anywhere
    app_.require_subcommand(1);
    app_.footer(kMainFooter);
    app_.set_version_flag("--version", OTTAVA_VERSION);
    app_.add_option("-a,--address", address_, "Sidecar gRPC address (host:port)")
        ->capture_default_str();
    app_.add_flag("--json", json_, "Print one JSON object per line instead of text");
    timeout_option_ = app_.add_option("-t,--timeout", timeout_seconds_,
                                      "Per-call deadline in seconds (default 5); for subscribe "
                                      "and config watch: how long to stream (default: no limit)")
                          ->check(CLI::PositiveNumber);
    app_.add_flag("--wait-for-ready", wait_for_ready_,
                  "Wait (up to the deadline) for the sidecar to accept connections instead of "
                  "failing at once with UNAVAILABLE");
    AddHello();
    AddState();
    AddLock();
    AddSequencer();
    AddConfig();
    AddPublish();
    AddSubscribe();
    AddHealth();
    AddInvoke();
    AddMesh();
    AddFlow();
    AddUpgrade();
  }

  // --- Option helpers -----------------------------------------------------------------------

  static void AddStore(CLI::App* command, std::string& store, const char* what) {
    command->add_option("-s,--store", store, std::string(what) + " name")->capture_default_str();
  }

  static void AddMeta(CLI::App* command, std::vector<std::string>& meta) {
    command->add_option("-m,--meta", meta, "Request metadata, repeatable")
        ->type_name("KEY=VALUE")
        ->allow_extra_args(false)
        ->check(KeyValueValidator());
  }

  void Register(CLI::App* command, Action action) {
    actions_.emplace_back(command, std::move(action));
  }

  // --- Execution helpers --------------------------------------------------------------------

  bool HasTimeout() const { return timeout_option_->count() > 0; }

  std::chrono::milliseconds Timeout() const {
    const double seconds = HasTimeout() ? timeout_seconds_ : kDefaultTimeoutSeconds;
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::milliseconds(std::llround(seconds * 1000.0)));
  }

  StreamOptions Streaming() const {
    StreamOptions options;
    if (HasTimeout()) {
      options.max_duration = Timeout();
    }
    return options;
  }

  // Runs `call` with a connected client, or fails the command.
  int WithClient(const std::function<int(Client&)>& call) {
    ClientOptions options;
    options.timeout = Timeout();
    options.wait_for_ready = wait_for_ready_;
    auto client = Client::Connect(address_, options);
    if (!client.ok()) {
      return Fail(client.status());
    }
    return call(**client);
  }

  // "-" stands for stdin, so binary or multi-line values need no shell quoting.
  std::string ValueArgument(const std::string& argument) {
    if (argument != "-") {
      return argument;
    }
    return {std::istreambuf_iterator<char>(in_), std::istreambuf_iterator<char>()};
  }

  int Emit(const Rendered& rendered) {
    Print(rendered, json_, out_, err_);
    return kExitOk;
  }

  int Fail(const absl::Status& status) {
    err_ << FormatError(status) << std::endl;
    return kExitError;
  }

  // Arguments were validated by CLI11; this only guards against the two checks drifting apart.
  int UsageFailure(const absl::Status& status) {
    err_ << "error: " << status.message() << "\nRun with --help for more information." << std::endl;
    return kExitUsage;
  }

  // How a stream that stopped before --max results ends the command: its end by --timeout or by
  // the sidecar is clean unless --max asked for more.
  int StreamEnded(const absl::Status& status, int64_t count, int64_t max, const char* noun) {
    const bool by_timeout = status.code() == absl::StatusCode::kDeadlineExceeded && HasTimeout();
    if (!status.ok() && !by_timeout) {
      return Fail(status);
    }
    if (max > 0 && count < max) {
      const std::string got = std::to_string(count) + " of " + std::to_string(max) + " " + noun;
      if (by_timeout) {
        return Fail(absl::DeadlineExceededError("received " + got + " before the timeout"));
      }
      return Fail(absl::UnavailableError("the sidecar ended the stream after " + got));
    }
    if (!by_timeout) {
      err_ << "stream ended by the sidecar" << std::endl;
    }
    return kExitOk;
  }

  // --- hello --------------------------------------------------------------------------------

  void AddHello() {
    auto args = std::make_shared<HelloArgs>();
    auto* cmd = app_.add_subcommand("hello", "Call SayHello (a connectivity check)");
    cmd->add_option("NAME", args->name, "Name to greet")->capture_default_str();
    cmd->add_option("--service", args->service,
                    "Hello service name (empty: the sidecar's default)");
    cmd->footer("\nExample:\n  ottavactl hello alice");
    Register(cmd, [this, args] {
      return WithClient([&](Client& client) {
        auto greeting = client.SayHello(args->service, args->name);
        return greeting.ok() ? Emit(RenderHello(*greeting)) : Fail(greeting.status());
      });
    });
  }

  // --- state --------------------------------------------------------------------------------

  void AddState() {
    auto* state = app_.add_subcommand("state", "State API: get, set, del, bulk, tx");
    state->require_subcommand(1);
    AddStateGet(state);
    AddStateSet(state);
    AddStateDel(state);
    AddStateBulk(state);
    AddStateTx(state);
  }

  void AddStateGet(CLI::App* state) {
    auto args = std::make_shared<StateGetArgs>();
    auto* cmd = state->add_subcommand("get", "Print a key's value and etag");
    AddStore(cmd, args->store, "State store");
    cmd->add_option("KEY", args->key, "The key")->required();
    cmd->add_option("--consistency", args->consistency, "eventual or strong")
        ->check(CLI::IsMember({"eventual", "strong"}));
    AddMeta(cmd, args->meta);
    cmd->footer(R"txt(
Prints the value, then "etag: <etag>" and one "<name>: <value>" line per metadata entry (e.g.
ttlExpireTime). An absent key prints nothing, notes "not found: KEY" on stderr and exits 0;
with --json: {"key":"KEY","found":false}.

Examples:
  ottavactl state get user:1
  ottavactl --json state get user:1 --store cache)txt");
    Register(cmd, [this, args] {
      auto metadata = ParseMetadata(args->meta);
      if (!metadata.ok()) {
        return UsageFailure(metadata.status());
      }
      return WithClient([&](Client& client) {
        auto entry =
            client.GetState(args->store, args->key, ToConsistency(args->consistency), *metadata);
        return entry.ok() ? Emit(RenderState(args->key, *entry)) : Fail(entry.status());
      });
    });
  }

  void AddStateSet(CLI::App* state) {
    auto args = std::make_shared<StateSetArgs>();
    auto* cmd = state->add_subcommand("set", "Save a value");
    AddStore(cmd, args->store, "State store");
    cmd->add_option("KEY", args->key, "The key")->required();
    cmd->add_option("VALUE", args->value, "The value (\"-\" reads stdin)")->required();
    cmd->add_option("--etag", args->etag, "Save only if the stored etag matches");
    auto* first = cmd->add_flag("--first-write", args->first_write,
                                "First-write concurrency: without --etag, create only if absent");
    cmd->add_flag("--last-write", args->last_write, "Last-write concurrency")->excludes(first);
    cmd->add_option("--ttl", args->ttl, "Expire after this many seconds (metadata ttlInSeconds)")
        ->check(CLI::PositiveNumber);
    AddMeta(cmd, args->meta);
    cmd->footer(R"txt(
Prints "OK". An etag mismatch or a first-write conflict fails with ABORTED.

Examples:
  ottavactl state set user:1 alice
  ottavactl state set user:1 bob --etag 3
  ottavactl state set session:9 token --ttl 60
  ottavactl state set counter --first-write -- -1
  cat photo.png | ottavactl state set photo -)txt");
    Register(cmd, [this, args] {
      auto metadata = ParseMetadata(args->meta);
      if (!metadata.ok()) {
        return UsageFailure(metadata.status());
      }
      StateWrite item;
      item.key = args->key;
      item.value = ValueArgument(args->value);
      if (!args->etag.empty()) {
        item.etag = args->etag;
      }
      if (args->first_write) {
        item.concurrency = Concurrency::kFirstWrite;
      } else if (args->last_write) {
        item.concurrency = Concurrency::kLastWrite;
      }
      if (args->ttl > 0) {
        item.ttl_seconds = args->ttl;
      }
      item.metadata = *std::move(metadata);
      return WithClient([&](Client& client) {
        auto status = client.SaveState(args->store, item);
        return status.ok() ? Emit(RenderOk({{"key", args->key}})) : Fail(status);
      });
    });
  }

  void AddStateDel(CLI::App* state) {
    auto args = std::make_shared<StateDelArgs>();
    auto* cmd = state->add_subcommand("del", "Delete a key");
    AddStore(cmd, args->store, "State store");
    cmd->add_option("KEY", args->key, "The key")->required();
    cmd->add_option("--etag", args->etag, "Delete only if the stored etag matches");
    cmd->add_flag("--first-write", args->first_write, "First-write concurrency");
    AddMeta(cmd, args->meta);
    cmd->footer(R"txt(
Prints "OK", also when the key was absent. An etag mismatch fails with ABORTED.

Examples:
  ottavactl state del user:1
  ottavactl state del user:1 --etag 4)txt");
    Register(cmd, [this, args] {
      auto metadata = ParseMetadata(args->meta);
      if (!metadata.ok()) {
        return UsageFailure(metadata.status());
      }
      StateDelete item;
      item.key = args->key;
      if (!args->etag.empty()) {
        item.etag = args->etag;
      }
      if (args->first_write) {
        item.concurrency = Concurrency::kFirstWrite;
      }
      item.metadata = *std::move(metadata);
      return WithClient([&](Client& client) {
        auto status = client.DeleteState(args->store, item);
        return status.ok() ? Emit(RenderOk({{"key", args->key}})) : Fail(status);
      });
    });
  }

  void AddStateBulk(CLI::App* state) {
    auto args = std::make_shared<StateBulkArgs>();
    auto* cmd = state->add_subcommand("bulk", "Get several keys at once");
    AddStore(cmd, args->store, "State store");
    cmd->add_option("KEY", args->keys, "The keys")->required();
    cmd->add_option("--parallelism", args->parallelism, "Parallel reads in the sidecar")
        ->check(CLI::NonNegativeNumber);
    AddMeta(cmd, args->meta);
    cmd->footer(R"txt(
Prints one line per key: "KEY: VALUE (etag: ETAG)", "KEY: (not found)" or "KEY: (error: ...)".
With --json: {"items":[{"key":..,"found":..,"value":..,"etag":..,"metadata":{..}}, ...]}.

Example:
  ottavactl state bulk user:1 user:2 user:3)txt");
    Register(cmd, [this, args] {
      auto metadata = ParseMetadata(args->meta);
      if (!metadata.ok()) {
        return UsageFailure(metadata.status());
      }
      return WithClient([&](Client& client) {
        auto entries = client.GetBulkState(args->store, args->keys, args->parallelism, *metadata);
        return entries.ok() ? Emit(RenderBulkState(*entries)) : Fail(entries.status());
      });
    });
  }

  void AddStateTx(CLI::App* state) {
    auto args = std::make_shared<StateTxArgs>();
    auto* cmd = state->add_subcommand("tx", "Apply several writes and deletes atomically");
    AddStore(cmd, args->store, "State store");
    cmd->add_option("OP", args->operations,
                    "upsert[@ETAG]:KEY=VALUE or delete[@ETAG]:KEY, in order")
        ->required()
        ->check(TxOperationValidator());
    AddMeta(cmd, args->meta);
    cmd->footer(R"txt(
All operations apply or none does (ABORTED on any etag mismatch). An upsert's key ends at the
first '='; a delete's key is everything after the ':'. Etags must not contain ':'. Prints "OK".

Examples:
  ottavactl state tx upsert:a=1 upsert:b=2 delete:c
  ottavactl state tx upsert@3:a=10 delete@7:b)txt");
    Register(cmd, [this, args] {
      auto metadata = ParseMetadata(args->meta);
      if (!metadata.ok()) {
        return UsageFailure(metadata.status());
      }
      std::vector<StateOperation> operations;
      for (const auto& text : args->operations) {
        auto operation = ParseTxOperation(text);
        if (!operation.ok()) {
          return UsageFailure(operation.status());
        }
        operations.push_back(*std::move(operation));
      }
      return WithClient([&](Client& client) {
        auto status = client.ExecuteStateTransaction(args->store, operations, *metadata);
        return status.ok() ? Emit(RenderOk({{"operations", operations.size()}})) : Fail(status);
      });
    });
  }

  // --- lock ---------------------------------------------------------------------------------

  void AddLock() {
    auto* lock = app_.add_subcommand("lock", "Distributed lock API: try, unlock, renew");
    lock->require_subcommand(1);

    auto add = [this, lock](const char* name, const char* description, bool with_expire) {
      auto args = std::make_shared<LockArgs>();
      auto* cmd = lock->add_subcommand(name, description);
      AddStore(cmd, args->store, "Lock store");
      cmd->add_option("-r,--resource", args->resource, "The lock's resource id")->required();
      cmd->add_option("-o,--owner", args->owner, "The owner (unique per holder)")->required();
      if (with_expire) {
        cmd->add_option("-e,--expire", args->expire, "Time to live in seconds")
            ->required()
            ->check(CLI::PositiveNumber);
      }
      return std::make_pair(cmd, args);
    };

    auto [try_cmd, try_args] = add("try", "Try to acquire a lock (not re-entrant)", true);
    try_cmd->footer(R"txt(
Prints "acquired" or "not acquired" (exit 0 either way); --json: {"resource","owner","acquired"}.

Example:
  ottavactl lock try --resource order-42 --owner worker-1 --expire 10)txt");
    Register(try_cmd, [this, args = try_args] {
      return WithClient([&](Client& client) {
        auto acquired = client.TryLock(args->store, args->resource, args->owner, args->expire);
        return acquired.ok() ? Emit(RenderTryLock(args->resource, args->owner, *acquired))
                             : Fail(acquired.status());
      });
    });

    auto [unlock_cmd, unlock_args] = add("unlock", "Release a lock the owner holds", false);
    unlock_cmd->footer(R"txt(
Prints "unlocked", "lock does not exist" or "lock belongs to another owner" (exit 0);
--json: {"resource","owner","status"} with status SUCCESS, LOCK_UNEXIST, LOCK_BELONG_TO_OTHERS or
INTERNAL_ERROR.

Example:
  ottavactl lock unlock --resource order-42 --owner worker-1)txt");
    Register(unlock_cmd, [this, args = unlock_args] {
      return WithClient([&](Client& client) {
        auto status = client.Unlock(args->store, args->resource, args->owner);
        return status.ok() ? Emit(RenderLockStatus(args->resource, args->owner, *status, false))
                           : Fail(status.status());
      });
    });

    auto [renew_cmd, renew_args] = add("renew", "Extend a lock the owner holds", true);
    renew_cmd->footer(R"txt(
Calls LockKeepAlive. Prints "renewed", "lock does not exist" or "lock belongs to another owner"
(exit 0); --json as for unlock.

Example:
  ottavactl lock renew --resource order-42 --owner worker-1 --expire 10)txt");
    Register(renew_cmd, [this, args = renew_args] {
      return WithClient([&](Client& client) {
        auto status = client.LockKeepAlive(args->store, args->resource, args->owner, args->expire);
        return status.ok() ? Emit(RenderLockStatus(args->resource, args->owner, *status, true))
                           : Fail(status.status());
      });
    });
  }

  // --- seq ----------------------------------------------------------------------------------

  void AddSequencer() {
    auto* seq = app_.add_subcommand("seq", "Sequencer API: next");
    seq->require_subcommand(1);
    auto args = std::make_shared<SeqArgs>();
    auto* cmd = seq->add_subcommand("next", "Print the next id of a sequence");
    AddStore(cmd, args->store, "Sequencer");
    cmd->add_option("KEY", args->key, "The sequence (id namespace)")->required();
    cmd->add_flag("--strong", args->strong, "Strictly increasing (default: weak)");
    AddMeta(cmd, args->meta);
    cmd->footer(R"txt(
Prints the id; --json: {"key","id"}.

Example:
  ottavactl seq next orders --strong)txt");
    Register(cmd, [this, args] {
      auto metadata = ParseMetadata(args->meta);
      if (!metadata.ok()) {
        return UsageFailure(metadata.status());
      }
      return WithClient([&](Client& client) {
        auto id =
            client.GetNextId(args->store, args->key,
                             args->strong ? IdIncrement::kStrong : IdIncrement::kWeak, *metadata);
        return id.ok() ? Emit(RenderNextId(args->key, *id)) : Fail(id.status());
      });
    });
  }

  // --- config -------------------------------------------------------------------------------

  static void AddGroupLabel(CLI::App* command, ConfigArgs& args) {
    command->add_option("-g,--group", args.group, "Configuration group");
    command->add_option("-l,--label", args.label, "Configuration label");
  }

  static absl::StatusOr<ConfigurationQuery> Query(const ConfigArgs& args) {
    ConfigurationQuery query;
    query.keys = args.keys;
    query.group = args.group;
    query.label = args.label;
    auto metadata = ParseMetadata(args.meta);
    if (!metadata.ok()) {
      return metadata.status();
    }
    query.metadata = *std::move(metadata);
    return query;
  }

  void AddConfig() {
    auto* config = app_.add_subcommand("config", "Configuration API: get, set, del, watch");
    config->require_subcommand(1);

    {
      auto args = std::make_shared<ConfigArgs>();
      auto* cmd = config->add_subcommand("get", "Print configuration items");
      AddStore(cmd, args->store, "Configuration store");
      cmd->add_option("KEY", args->keys, "The keys (none: all, if the store supports it)");
      AddGroupLabel(cmd, *args);
      AddMeta(cmd, args->meta);
      cmd->footer(R"txt(
Prints "KEY: CONTENT" per item (plus "(group: G, label: L)" when set); keys not returned are
noted on stderr (exit 0). --json: {"items":[{"key","content","group","label","tags","metadata"}]}.

Example:
  ottavactl config get feature.x feature.y --group web)txt");
      Register(cmd, [this, args] {
        auto query = Query(*args);
        if (!query.ok()) {
          return UsageFailure(query.status());
        }
        return WithClient([&](Client& client) {
          auto items = client.GetConfiguration(args->store, *query);
          return items.ok() ? Emit(RenderConfiguration(*items, args->keys)) : Fail(items.status());
        });
      });
    }
    {
      auto args = std::make_shared<ConfigArgs>();
      auto* cmd = config->add_subcommand("set", "Save a configuration item");
      AddStore(cmd, args->store, "Configuration store");
      cmd->add_option("KEY", args->key, "The key")->required();
      cmd->add_option("VALUE", args->value, "The content (\"-\" reads stdin)")->required();
      AddGroupLabel(cmd, *args);
      cmd->add_option("--tag", args->tags, "Item tag, repeatable")
          ->type_name("KEY=VALUE")
          ->allow_extra_args(false)
          ->check(KeyValueValidator());
      AddMeta(cmd, args->meta);
      cmd->footer(R"txt(
Prints "OK".

Example:
  ottavactl config set feature.x on --group web --tag owner=alice)txt");
      Register(cmd, [this, args] {
        auto metadata = ParseMetadata(args->meta);
        auto tags = ParseMetadata(args->tags);
        if (!metadata.ok() || !tags.ok()) {
          return UsageFailure(metadata.ok() ? tags.status() : metadata.status());
        }
        ConfigurationItem item;
        item.key = args->key;
        item.content = ValueArgument(args->value);
        item.group = args->group;
        item.label = args->label;
        item.tags = *std::move(tags);
        return WithClient([&](Client& client) {
          auto status = client.SaveConfiguration(args->store, {item}, *metadata);
          return status.ok() ? Emit(RenderOk({{"key", args->key}})) : Fail(status);
        });
      });
    }
    {
      auto args = std::make_shared<ConfigArgs>();
      auto* cmd = config->add_subcommand("del", "Delete configuration items");
      AddStore(cmd, args->store, "Configuration store");
      cmd->add_option("KEY", args->keys, "The keys")->required();
      AddGroupLabel(cmd, *args);
      AddMeta(cmd, args->meta);
      cmd->footer(R"txt(
Prints "OK".

Example:
  ottavactl config del feature.x --group web)txt");
      Register(cmd, [this, args] {
        auto query = Query(*args);
        if (!query.ok()) {
          return UsageFailure(query.status());
        }
        return WithClient([&](Client& client) {
          auto status = client.DeleteConfiguration(args->store, *query);
          return status.ok() ? Emit(RenderOk({{"keys", args->keys}})) : Fail(status);
        });
      });
    }
    {
      auto args = std::make_shared<ConfigArgs>();
      auto* cmd = config->add_subcommand("watch", "Stream later changes of configuration items");
      AddStore(cmd, args->store, "Configuration store");
      cmd->add_option("KEY", args->keys, "The keys (none: all, if the store supports it)");
      AddGroupLabel(cmd, *args);
      AddMeta(cmd, args->meta);
      cmd->add_option("--max", args->max, "Exit after this many updates")
          ->check(CLI::PositiveNumber);
      cmd->footer(R"txt(
Prints "KEY: CONTENT" (or "KEY: (deleted)") per changed item as updates arrive; --json: one
{"store","items":[...]} line per update. "watching ..." is noted on stderr once the request is
sent. Runs until --max updates, --timeout seconds (exit 0 unless fewer than --max updates
arrived) or the sidecar ends the stream.

Example:
  ottavactl config watch feature.x --max 1 --timeout 30)txt");
      Register(cmd, [this, args] {
        auto query = Query(*args);
        if (!query.ok()) {
          return UsageFailure(query.status());
        }
        return WithClient([&](Client& client) { return Watch(client, *args, *query); });
      });
    }
  }

  int Watch(Client& client, const ConfigArgs& args, const ConfigurationQuery& query) {
    auto watch = client.SubscribeConfiguration(args.store, query, Streaming());
    if (!watch.ok()) {
      return Fail(watch.status());
    }
    err_ << "watching " << args.store << std::endl;
    int64_t count = 0;
    while (args.max == 0 || count < args.max) {
      auto update = (*watch)->Read();
      if (!update.ok() || !update->has_value()) {
        return StreamEnded(update.status(), count, args.max, "updates");
      }
      Emit(RenderConfigurationUpdate(**update));
      ++count;
    }
    (*watch)->Cancel();
    return kExitOk;
  }

  // --- publish / subscribe ------------------------------------------------------------------

  void AddPublish() {
    auto args = std::make_shared<PublishArgs>();
    auto* cmd = app_.add_subcommand("publish", "Publish an event to a topic");
    cmd->add_option("-p,--pubsub,--store", args->pubsub, "Pub/sub component name")
        ->capture_default_str();
    cmd->add_option("TOPIC", args->topic, "The topic")->required();
    cmd->add_option("DATA", args->data, "The payload (\"-\" reads stdin)")->required();
    cmd->add_option("-c,--content-type", args->content_type,
                    "Payload content type (default: the sidecar's choice)");
    AddMeta(cmd, args->meta);
    cmd->footer(R"txt(
Returns once the broker acknowledged the event; prints "OK". Metadata rawPayload=true skips the
CloudEvents envelope.

Examples:
  ottavactl publish orders '{"id":1}' --content-type application/json
  ottavactl publish orders hello --meta key=customer-7)txt");
    Register(cmd, [this, args] {
      auto metadata = ParseMetadata(args->meta);
      if (!metadata.ok()) {
        return UsageFailure(metadata.status());
      }
      const std::string data = ValueArgument(args->data);
      return WithClient([&](Client& client) {
        auto status =
            client.PublishEvent(args->pubsub, args->topic, data, args->content_type, *metadata);
        return status.ok() ? Emit(RenderOk({{"topic", args->topic}})) : Fail(status);
      });
    });
  }

  void AddSubscribe() {
    auto args = std::make_shared<SubscribeArgs>();
    auto* cmd = app_.add_subcommand("subscribe", "Stream a topic's events to stdout");
    cmd->add_option("-p,--pubsub,--store", args->pubsub, "Pub/sub component name")
        ->capture_default_str();
    cmd->add_option("TOPIC", args->topic, "The topic")->required();
    cmd->add_option("--dead-letter-topic", args->dead_letter_topic,
                    "Where the sidecar sends events it gives up on");
    cmd->add_option("--ack", args->ack, "How to acknowledge every event")
        ->check(CLI::IsMember({"success", "retry", "drop"}))
        ->capture_default_str();
    cmd->add_option("--max", args->max, "Exit after this many events")->check(CLI::PositiveNumber);
    AddMeta(cmd, args->meta);
    cmd->footer(R"txt(
Prints "[TOPIC] ID: DATA" per event (--json: one {"id","source","type","spec_version",
"data_content_type","topic","pubsub_name","data" or "data_base64","metadata"} line per event) and
acknowledges it with --ack. "subscribed to PUBSUB/TOPIC" is noted on stderr once the sidecar has
confirmed the subscription, so events published after that line are received. Runs until --max
events, --timeout seconds (exit 0 unless fewer than --max events arrived) or the sidecar ends the
stream.

Examples:
  ottavactl subscribe orders
  ottavactl --json subscribe orders --max 3 --timeout 30
  ottavactl subscribe orders --ack retry --max 1)txt");
    Register(cmd, [this, args] {
      auto metadata = ParseMetadata(args->meta);
      auto ack = ParseEventStatus(args->ack);
      if (!metadata.ok() || !ack.ok()) {
        return UsageFailure(metadata.ok() ? ack.status() : metadata.status());
      }
      TopicSubscriptionRequest request;
      request.pubsub_name = args->pubsub;
      request.topic = args->topic;
      if (!args->dead_letter_topic.empty()) {
        request.dead_letter_topic = args->dead_letter_topic;
      }
      request.metadata = *std::move(metadata);
      return WithClient(
          [&](Client& client) { return Subscribe(client, request, *ack, args->max); });
    });
  }

  int Subscribe(Client& client,
                const TopicSubscriptionRequest& request,
                EventStatus ack,
                int64_t max) {
    auto subscription = client.SubscribeTopicEvents(request, Streaming());
    if (!subscription.ok()) {
      return Fail(subscription.status());
    }
    err_ << "subscribed to " << request.pubsub_name << "/" << request.topic << std::endl;
    int64_t count = 0;
    while (max == 0 || count < max) {
      auto event = (*subscription)->Read();
      if (!event.ok() || !event->has_value()) {
        return StreamEnded(event.status(), count, max, "events");
      }
      Emit(RenderTopicEvent(**event));
      if (auto status = (*subscription)->Ack((*event)->id, ack); !status.ok()) {
        return Fail(status);
      }
      ++count;
    }
    // Closing gracefully makes sure the last acks reach the sidecar; every event wanted was
    // received and acknowledged, so a failure here is only worth a warning.
    if (auto status = (*subscription)->Close(); !status.ok()) {
      err_ << "warning: closing the subscription: " << FormatError(status) << std::endl;
    }
    return kExitOk;
  }

  // --- health -------------------------------------------------------------------------------

  void AddHealth() {
    auto args = std::make_shared<HealthArgs>();
    auto* cmd = app_.add_subcommand("health", "Check the sidecar's liveness and readiness");
    cmd->add_option("--actuator", args->actuator, "Actuator HTTP address (host:port)")
        ->capture_default_str();
    cmd->footer(R"txt(
GETs /actuator/health/liveness and /actuator/health/readiness. Prints "liveness: STATUS",
"readiness: STATUS" and one "  COMPONENT: STATUS" line per readiness component; --json:
{"up":..,"liveness":{"http_status",..,"status",..},"readiness":{..}}. Exit 0 only if both are UP
(HTTP 200), 1 otherwise or when the actuator cannot be reached.

Example:
  ottavactl health --actuator 127.0.0.1:34999)txt");
    Register(cmd, [this, args] { return Health(args->actuator); });
  }

  int Health(const std::string& actuator) {
    httplib::Client http(actuator);
    http.set_connection_timeout(Timeout());
    http.set_read_timeout(Timeout());
    http.set_write_timeout(Timeout());
    auto probe = [&](const char* path) -> absl::StatusOr<HttpProbe> {
      auto result = http.Get(path);
      if (!result) {
        return absl::UnavailableError("actuator " + actuator + path +
                                      ": request failed: " + httplib::to_string(result.error()));
      }
      return HttpProbe{result->status, result->body};
    };
    auto liveness = probe("/actuator/health/liveness");
    if (!liveness.ok()) {
      return Fail(liveness.status());
    }
    auto readiness = probe("/actuator/health/readiness");
    if (!readiness.ok()) {
      return Fail(readiness.status());
    }
    Emit(RenderHealth(*liveness, *readiness));
    return ProbeIsUp(*liveness) && ProbeIsUp(*readiness) ? kExitOk : kExitError;
  }

  // --- invoke -------------------------------------------------------------------------------

  void AddInvoke() {
    struct InvokeArgs {
      std::string id;
      std::string method;
      std::string data;
      std::string verb = "POST";
      std::string content_type = "text/plain";
      std::string query;
      std::vector<std::string> headers;
    };
    auto args = std::make_shared<InvokeArgs>();
    auto* cmd = app_.add_subcommand("invoke", "Call a method of another app through the mesh");
    cmd->add_option("ID", args->id, "Target app id (the mesh routing key)")->required();
    cmd->add_option("METHOD", args->method, "Method; the upstream sees the path /METHOD")
        ->required();
    cmd->add_option("DATA", args->data, "Request body");
    cmd->add_option("--verb", args->verb, "HTTP verb")->capture_default_str();
    cmd->add_option("--content-type", args->content_type, "Content type of DATA")
        ->capture_default_str();
    cmd->add_option("--query", args->query, "Query string, without '?'");
    cmd->add_option("--header", args->headers, "Header k=v (repeatable), sent as metadata");
    cmd->footer(R"txt(
Prints the response body (--json: {"data":..,"content_type":..}). Exit 1 with the gRPC status
on failure: NOT_FOUND (no route), UNAVAILABLE, DEADLINE_EXCEEDED, or the mapping of the upstream's
HTTP status.

Example:
  ottavactl invoke orders list --verb GET --query page=2 --header x-trace=1)txt");
    Register(cmd, [this, args] {
      std::vector<std::pair<std::string, std::string>> headers;
      for (const std::string& header : args->headers) {
        size_t eq = header.find('=');
        if (eq == std::string::npos || eq == 0) {
          return Fail(absl::InvalidArgumentError("--header wants k=v, got '" + header + "'"));
        }
        headers.emplace_back(header.substr(0, eq), header.substr(eq + 1));
      }
      return WithClient([&](Client& client) {
        auto result = client.InvokeService(args->id, args->method, args->data, args->verb,
                                           args->content_type, args->query, headers);
        if (!result.ok()) {
          return Fail(result.status());
        }
        if (json_) {
          out_ << nlohmann::json{{"data", result->data}, {"content_type", result->content_type}}
                      .dump()
               << std::endl;
        } else {
          out_ << result->data << std::endl;
        }
        return kExitOk;
      });
    });
  }

  // --- mesh ---------------------------------------------------------------------------------

  void AddMesh() {
    auto args = std::make_shared<HealthArgs>();
    auto* cmd = app_.add_subcommand("mesh", "Show the mesh: listeners, clusters, host health");
    cmd->add_option("--actuator", args->actuator, "Actuator HTTP address (host:port)")
        ->capture_default_str();
    cmd->footer("\nGETs /actuator/mesh. Example:\n  ottavactl mesh --actuator 127.0.0.1:34999");
    Register(cmd, [this, args] {
      httplib::Client http(args->actuator);
      http.set_connection_timeout(Timeout());
      http.set_read_timeout(Timeout());
      auto result = http.Get("/actuator/mesh");
      if (!result) {
        return Fail(absl::UnavailableError(
            "actuator " + args->actuator +
            "/actuator/mesh: request failed: " + httplib::to_string(result.error())));
      }
      if (result->status != 200) {
        return Fail(absl::FailedPreconditionError("actuator answered HTTP " +
                                                  std::to_string(result->status) +
                                                  " (is a mesh configured?)"));
      }
      nlohmann::json mesh = nlohmann::json::parse(result->body, nullptr, false);
      if (json_ || mesh.is_discarded()) {
        out_ << result->body << std::endl;
        return kExitOk;
      }
      for (const auto& [name, address] : mesh["listeners"].items()) {
        out_ << "listener " << name << " " << address.get<std::string>() << "\n";
      }
      for (const auto& cluster : mesh["clusters"]) {
        out_ << "cluster " << cluster["name"].get<std::string>() << " ("
             << cluster["lb"].get<std::string>() << ")\n";
        for (const auto& host : cluster["hosts"]) {
          out_ << "  " << host["address"].get<std::string>() << " "
               << host["health"].get<std::string>()
               << (host["ejected"].get<bool>() ? " ejected" : "")
               << (host["failed_health_check"].get<bool>() ? " failed-health-check" : "")
               << " active=" << host["active_requests"].get<int64_t>() << "\n";
        }
      }
      out_ << std::flush;
      return kExitOk;
    });
  }

  // --- flow ---------------------------------------------------------------------------------

  void AddFlow() {
    auto args = std::make_shared<HealthArgs>();
    auto* cmd = app_.add_subcommand("flow", "Show the flow-control rules and their live counters");
    cmd->add_option("--actuator", args->actuator, "Actuator HTTP address (host:port)")
        ->capture_default_str();
    cmd->footer(R"txt(
GETs /actuator/flow-control. Prints "rules version N" and one line per rule:
"ID KIND RESOURCE[*] passes=N blocks=N" plus the kind's live counters (window_passes,
in_flight, state of a breaker...); --json prints the endpoint's JSON.

Example:
  ottavactl flow --actuator 127.0.0.1:34999)txt");
    Register(cmd, [this, args] {
      httplib::Client http(args->actuator);
      http.set_connection_timeout(Timeout());
      http.set_read_timeout(Timeout());
      auto result = http.Get("/actuator/flow-control");
      if (!result) {
        return Fail(absl::UnavailableError(
            "actuator " + args->actuator +
            "/actuator/flow-control: request failed: " + httplib::to_string(result.error())));
      }
      if (result->status != 200) {
        return Fail(absl::FailedPreconditionError("actuator answered HTTP " +
                                                  std::to_string(result->status)));
      }
      nlohmann::json flow = nlohmann::json::parse(result->body, nullptr, false);
      if (json_ || flow.is_discarded()) {
        out_ << result->body << std::endl;
        return kExitOk;
      }
      out_ << "rules version " << flow.value("version", 0) << "\n";
      for (const auto& entry : flow["rules"]) {
        const nlohmann::json& rule = entry["rule"];
        const nlohmann::json& live = entry["live"];
        out_ << rule.value("id", "") << " " << rule.value("kind", "") << " "
             << rule.value("resource", "") << (rule.value("match", "") == "prefix" ? "*" : "");
        for (const auto& [key, value] : live.items()) {
          out_ << " " << key << "="
               << (value.is_string() ? value.get<std::string>() : value.dump());
        }
        out_ << "\n";
      }
      out_ << std::flush;
      return kExitOk;
    });
  }

  // --- upgrade ------------------------------------------------------------------------------

  void AddUpgrade() {
    struct UpgradeArgs {
      std::string actuator{kDefaultActuator};
      std::string config;
    };
    auto args = std::make_shared<UpgradeArgs>();
    auto* cmd = app_.add_subcommand(
        "upgrade", "Hot-upgrade the sidecar: a new process takes over (rolled back if it fails)");
    cmd->add_option("--actuator", args->actuator, "Actuator HTTP address (host:port)")
        ->capture_default_str();
    cmd->add_option("-c,--config", args->config,
                    "Config file for the new process (default: the running one's)");
    cmd->footer(R"txt(
POSTs /actuator/upgrade (the actuator answers on loopback only) and waits for the new process to
take over: it starts the sidecar's binary, which takes the listening sockets and the in-memory
state, then the old process drains and exits. Prints the new generation, its pid, the switch
times and the state carried over (--json: the new process's report). Waits up to --timeout
seconds (default 60). Exit 0 when the new process serves; exit 1 with the new process's error
when it failed and the running process kept serving (rolled back), or when an upgrade is already
in progress.

Example:
  ottavactl upgrade --actuator 127.0.0.1:34999 --config /etc/ottava/next.json)txt");
    Register(cmd, [this, args] { return Upgrade(args->actuator, args->config); });
  }

  int Upgrade(const std::string& actuator, const std::string& config) {
    httplib::Client http(actuator);
    const auto timeout = HasTimeout() ? Timeout() : std::chrono::milliseconds(60000);
    http.set_connection_timeout(std::min(timeout, std::chrono::milliseconds(5000)));
    http.set_read_timeout(timeout);
    http.set_write_timeout(timeout);
    nlohmann::json body = nlohmann::json::object();
    if (!config.empty()) {
      // The sidecar resolves the path in its own working directory: send an absolute one.
      std::error_code error;
      const std::filesystem::path absolute = std::filesystem::absolute(config, error);
      body["config"] = error ? config : absolute.string();
    }
    auto result = http.Post("/actuator/upgrade", body.dump(), "application/json");
    if (!result) {
      return Fail(absl::UnavailableError(
          "actuator " + actuator +
          "/actuator/upgrade: request failed: " + httplib::to_string(result.error())));
    }
    nlohmann::json report = nlohmann::json::parse(result->body, nullptr, false);
    const std::string error =
        report.is_object() && report.contains("error") && report["error"].is_string()
            ? report["error"].get<std::string>()
            : result->body;
    switch (result->status) {
      case 200:
        break;
      case 409:
        return Fail(absl::AlreadyExistsError(error));
      case 403:
        return Fail(absl::PermissionDeniedError("the actuator takes upgrades from loopback only: " +
                                                error));
      case 404:
        return Fail(absl::UnimplementedError("this sidecar has no /actuator/upgrade"));
      default:
        return Fail(
            absl::AbortedError("upgrade rolled back, the running process keeps serving: " + error));
    }
    if (json_ || !report.is_object()) {
      out_ << result->body << std::endl;
      return kExitOk;
    }
    auto ms = [&](const char* key) {
      return std::to_string(report.value(key, int64_t{0}) / 1000) + "." +
             std::to_string(report.value(key, int64_t{0}) % 1000 / 100) + " ms";
    };
    out_ << "upgraded: generation " << report.value("generation", int64_t{0}) << ", pid "
         << report.value("pid", int64_t{0}) << " (previous pid "
         << report.value("previous_pid", int64_t{0}) << ")\n";
    if (report.contains("stop_us")) {
      out_ << "old process stopped accepting in " << ms("stop_us") << "; API paused "
           << ms("api_pause_us") << "; state carried over: " << report.value("state_chunks", 0)
           << " chunks, " << report.value("state_bytes", int64_t{0}) << " bytes\n";
    }
    out_ << std::flush;
    return kExitOk;
  }

  std::istream& in_;
  std::ostream& out_;
  std::ostream& err_;
  CLI::App app_;
  std::string address_{kDefaultAddress};
  bool json_ = false;
  double timeout_seconds_ = kDefaultTimeoutSeconds;
  CLI::Option* timeout_option_ = nullptr;
  bool wait_for_ready_ = false;
  std::vector<std::pair<CLI::App*, Action>> actions_;
};

}  // namespace

int RunCli(
    int argc, const char* const* argv, std::istream& in, std::ostream& out, std::ostream& err) {
  // Our code does not throw; this catches what third-party code (CLI11 beyond parsing, nlohmann,
  // the standard library) might, so that the process still exits with a status line.
  try {
    Cli cli(in, out, err);
    return cli.Run(argc, argv);
  } catch (const std::exception& e) {
    err << "error: INTERNAL: " << e.what() << std::endl;
    return kExitError;
  }
}

}  // namespace ottava::sdk::cli
