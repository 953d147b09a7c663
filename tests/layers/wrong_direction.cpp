// A fixture for the layer check (tests/CMakeLists.txt): a file of the resp layer that reaches up
// into the cache. The check must refuse it, naming this file and the include.
#include "promptcache/cache/service.hpp"
#include "promptcache/resp/parser.hpp"
