// A fixture for the layer check (tests/CMakeLists.txt): a sans-IO file that reaches for a
// socket. The check must refuse it; nothing compiles it.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "promptcache/resp/parser.hpp"
