// Precompiled header of the library: the heavy, stable headers most files include.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <spdlog/spdlog.h>

#include <deque>
#include <string>
#include <string_view>
#include <vector>
