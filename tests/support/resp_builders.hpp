// Replies as the RESP parser hands them over, built by hand for unit tests (slot maps,
// redirects, routing).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "promptcache/resp/reply.hpp"

namespace promptcache::testing::resp_builders {

inline resp::Reply str(std::string v) {
  return resp::Reply{resp::Type::blob_string, std::move(v), {}};
}
inline resp::Reply num(std::int64_t v) {
  return resp::Reply{resp::Type::number, std::to_string(v), {}};
}
inline resp::Reply map(std::vector<resp::Reply> kv) {
  return resp::Reply{resp::Type::map, {}, std::move(kv)};
}
inline resp::Reply arr(std::vector<resp::Reply> e) {
  return resp::Reply{resp::Type::array, {}, std::move(e)};
}

}  // namespace promptcache::testing::resp_builders
