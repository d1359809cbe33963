#pragma once

// Fault injection (as Envoy's and MOSN's fault filters): delays a share of requests, or answers
// a share of them with an error status, optionally only requests carrying a header. Config:
//   {"delay": {"ms": 200, "percent": 10},
//    "abort": {"status": 503, "percent": 5},
//    "header": "x-fault"}          // only requests with this header (any value); absent: all

#include "mesh/filter/filter.h"

namespace ottava::mesh {

FilterFactoryPtr CreateFaultFilterFactory();

}  // namespace ottava::mesh
