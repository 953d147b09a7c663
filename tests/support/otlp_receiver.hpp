// Test support: a real OTLP/HTTP receiver (@elastic/mockotlpserver from npm, through
// tests/otlp/receiver.mjs) as a child process on a free loopback port, always stopped. Or, for
// failure modes, the same script's plain endpoint that answers every export 503 (Retry-After:
// 1) or only after a delay. What it accepted is read back as the decoded export requests.
//
// The script and its node_modules are in PROMPTCACHE_OTLP_DIR (tests/otlp; scripts/test.sh
// installs the pinned package with `npm ci`).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace promptcache::testing {

class OtlpReceiver {
 public:
  enum class Mode { accept, unavailable, slow };

  explicit OtlpReceiver(Mode mode = Mode::accept,
                        std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  ~OtlpReceiver();  // SIGTERM, then SIGKILL; the temp dir removed. Never throws.
  OtlpReceiver(const OtlpReceiver&) = delete;
  OtlpReceiver& operator=(const OtlpReceiver&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  // The base URL for OTEL_EXPORTER_OTLP_ENDPOINT.
  [[nodiscard]] std::string endpoint() const;

  // Every export request accepted so far, decoded.
  [[nodiscard]] std::vector<boost::json::value> requests() const;
  // Every span of those requests.
  [[nodiscard]] std::vector<boost::json::object> spans() const;
  // Waits up to `timeout` until `done(spans())` holds; the spans then (or at the timeout).
  std::vector<boost::json::object> wait_for(
      const std::function<bool(const std::vector<boost::json::object>&)>& done,
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

 private:
  std::string dir_;
  std::string out_path_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

// An attribute's value from an OTLP attribute list (the AnyValue object), or null.
[[nodiscard]] boost::json::value otlp_attribute(const boost::json::object& span,
                                                std::string_view key);

}  // namespace promptcache::testing
