// Must NOT compile (tests/CMakeLists.txt checks the message): a traced view refers to its
// parent's context, so a temporary context — gone at the end of the statement, before the
// operations started through the view have run — is refused.
#include <promptcache/cache/service.hpp>

using promptcache::cache::PromptCacheService;
namespace telemetry = promptcache::telemetry;

void dangling_parent(PromptCacheService& cache) {
  auto view = cache.traced(*telemetry::parse_traceparent(
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
  (void)view;
}
