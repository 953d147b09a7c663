// Links against the installed promptcache: parses a URL and encodes a command.
#include <promptcache/net/config.hpp>
#include <promptcache/resp/request.hpp>

#include <cstdio>

int main() {
  const auto cfg = promptcache::net::ClientConfig::from_url("redis://127.0.0.1:6380/2");
  promptcache::resp::Request req;
  req.push("GET", "k");
  const bool ok =
      cfg.port == 6380 && cfg.db == 2 && req.payload() == "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
  std::puts(ok ? "consumer: ok" : "consumer: wrong result");
  return ok ? 0 : 1;
}
