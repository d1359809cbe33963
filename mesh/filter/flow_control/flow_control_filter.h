#pragma once

// The mesh adapter of unified flow control: a stream filter that names each request's resource,
// asks the process' flow::Controller, and answers a blocked request with the rule's reply (HTTP
// 429 by default; the Bolt codec turns 429 into status 0x04 "server busy"). Throttled requests
// wait on a worker timer, never blocking the loop. A request matching a sync cluster rule is held
// (kStop) while the central counter is asked; the verdict comes back through the worker's queue
// and the filter then continues or answers it (nothing happens if the stream ended meanwhile).
// The response status feeds circuit breakers
// (5xx, resets, timeouts and the mesh's own 5xx local replies are errors).
//
// Router config: {"name": "flow_control", "config": {"resource": "auto"}}
//   resource: "auto" (default): Bolt → "<service>#<method>" (method from the
//             sofa_head_method_name header, else "<service>"); InvokeService → "<id>#<method>";
//             HTTP listeners → the path without its query;
//             "path": always the path; "service": always the routing key.

#include "mesh/filter/filter.h"
#include "mesh/filter/flow_control/controller.h"

namespace ottava::mesh::flow {

/// A factory whose filters use `controller` (not owned; it must outlive every filter).
FilterFactoryPtr CreateFlowControlFilterFactory(Controller& controller);

/// The resource name the filter derives for a request (exposed for tests and docs).
std::string ResourceOf(const RequestHeaders& headers, bool in_process, std::string_view mode);

}  // namespace ottava::mesh::flow
