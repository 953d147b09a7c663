// SHA-256 of bytes, as lower-case hex: how a prompt becomes its prompt_hash.
#pragma once

#include <string>
#include <string_view>

namespace promptcache::server {

[[nodiscard]] std::string sha256_hex(std::string_view bytes);

}  // namespace promptcache::server
