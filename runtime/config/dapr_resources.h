#pragma once

// Dapr resource files (`ottava --resources-path DIR`, reference/dapr-api.md §7.1): every YAML
// document of every `*.yaml` / `*.yml` file in the directory, as daprd reads them in standalone
// mode. `Component` documents become components of our bootstrap, with Dapr's type names and
// metadata mapped onto ours; `Subscription` documents (dapr.io/v1alpha1 and v2alpha1) become
// declarative subscriptions, exactly like the JSON config's `subscriptions`.
//
// Errors are INVALID_ARGUMENT "<file>: document <n>: <field path>: <reason>", the field path in
// YAML terms (`spec.metadata[2].value`), documents counted from 0. A `secretKeyRef` is refused:
// Ottava has no secret stores.
//
// Threading: main thread, at startup; no state is kept.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/config/bootstrap.h"

namespace ottava::runtime::config {

/// What the resource files declare, before it is merged with the JSON config.
struct DaprResources {
  /// `pointer` of each says where it came from: "<file>: document <n>".
  std::vector<ComponentConfig> components;
  std::vector<SubscriptionConfig> subscriptions;
  /// Where each subscription came from, parallel to `subscriptions`.
  std::vector<std::string> subscription_origins;
};

/// Parses the YAML documents of one file into `out`. `file` names the file in errors; `app_id`
/// selects documents by their `scopes` and replaces `{appID}` in metadata values. Documents of
/// other kinds (Configuration, Resiliency, ...) are skipped with a warning.
absl::Status ParseDaprResources(std::string_view yaml_text,
                                const std::string& file,
                                const std::string& app_id,
                                DaprResources* out);

/// Reads every `*.yaml` / `*.yml` file of each directory (in name order) into one set.
absl::Status LoadDaprResources(const std::vector<std::string>& dirs,
                               const std::string& app_id,
                               DaprResources* out);

/// Adds the resources to `bootstrap`. A component whose kind and name the JSON config (or an
/// earlier document) already has is an error naming both places; so is a second subscription to
/// the same pubsub and topic. Subscriptions need a component of that name and `app.callback`.
/// `config_path` names the JSON config in errors.
absl::Status MergeDaprResources(DaprResources resources,
                                const std::string& config_path,
                                Bootstrap* bootstrap);

/// LoadBootstrap(config_path), then the resource files of every directory merged in. Errors are
/// INVALID_ARGUMENT, naming the JSON file and pointer or the YAML file, document and field.
absl::StatusOr<Bootstrap> LoadWithResources(const std::string& config_path,
                                            const std::vector<std::string>& dirs);

}  // namespace ottava::runtime::config
