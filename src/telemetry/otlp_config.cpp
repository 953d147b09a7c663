// OtlpConfig::from_env: the OTEL_* variables of the OpenTelemetry SDK configuration spec that
// concern a trace exporter, read strictly.
#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

#include "promptcache/error.hpp"
#include "promptcache/redact.hpp"
#include "promptcache/telemetry/otlp.hpp"
#include "telemetry/otlp_http.hpp"

namespace promptcache::telemetry {
namespace {

std::string trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoded; false on a broken escape.
bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex_value(in[i + 1]);
    const int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

// "k1=v1,k2=v2" (the W3C Baggage form both OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_RESOURCE_ATTRIBUTES use), values percent-decoded. `secret`: the message names the
// entry's position, never its text.
OtlpConfig::Pairs parse_pairs(const char* name, std::string_view text, bool secret) {
  OtlpConfig::Pairs out;
  std::size_t position = 0;
  while (!text.empty()) {
    ++position;
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (trimmed(item).empty()) continue;
    const std::size_t eq = item.find('=');
    std::string key = eq == std::string_view::npos ? std::string{} : trimmed(item.substr(0, eq));
    std::string value;
    if (key.empty() || !percent_decode(trimmed(item.substr(eq + 1)), value)) {
      throw ConfigError(
          secret ? fmt::format("{}: entry {} is not name=value (percent-encoded)", name, position)
                 : fmt::format("{}: expected name=value pairs separated by commas, got \"{}\"",
                               name, trimmed(item)));
    }
    std::string decoded_key;
    if (!percent_decode(key, decoded_key)) {
      throw ConfigError(fmt::format("{}: entry {} has a broken percent escape", name, position));
    }
    out.emplace_back(std::move(decoded_key), std::move(value));
  }
  return out;
}

void merge(OtlpConfig::Pairs& into, const OtlpConfig::Pairs& over) {
  for (const auto& [k, v] : over) {
    auto same = [&k](const auto& p) { return p.first == k; };
    into.erase(std::remove_if(into.begin(), into.end(), same), into.end());
    into.emplace_back(k, v);
  }
}

long long whole(const char* name, std::string_view text, long long min, long long max) {
  long long v = 0;
  const std::string t = trimmed(text);
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc{} || end != t.data() + t.size() || v < min || v > max) {
    throw ConfigError(
        fmt::format("{}: expected an integer from {} to {}, got \"{}\"", name, min, max, t));
  }
  return v;
}

bool truth(const char* name, std::string_view text) {
  std::string t = trimmed(text);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "true") return true;
  if (t == "false" || t.empty()) return false;
  throw ConfigError(fmt::format("{}: expected true or false, got \"{}\"", name, t));
}

// Taken apart as the exporter will; the URL is not repeated in the error: it may hold a password.
std::string checked_url(const char* name, std::string url) {
  if (!parse_http_target(url).valid) {
    throw ConfigError(fmt::format(
        "{}: expected an http:// or https:// URL with a host (and a port from 1 to 65535)", name));
  }
  return url;
}

// The first of the two variables that is set (the signal-specific one first).
std::optional<std::string> either(const OtlpConfig::Getenv& getenv, const char* specific,
                                  const char* general, const char*& which) {
  if (auto v = getenv(specific)) {
    which = specific;
    return v;
  }
  which = general;
  return getenv(general);
}

void read_endpoint(const OtlpConfig::Getenv& getenv, OtlpConfig& c) {
  if (auto v = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v && !trimmed(*v).empty()) {
    c.endpoint = checked_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", trimmed(*v));
  } else if (auto base = getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); base && !trimmed(*base).empty()) {
    std::string url = checked_url("OTEL_EXPORTER_OTLP_ENDPOINT", trimmed(*base));
    if (url.back() != '/') url += '/';
    c.endpoint = url + "v1/traces";
  }
  register_url_secrets(c.endpoint);
  const char* which = nullptr;
  if (auto p = either(getenv, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL",
                      which)) {
    const std::string protocol = trimmed(*p);
    if (protocol == "http/protobuf") {
      c.protocol = OtlpProtocol::http_protobuf;
    } else if (protocol == "http/json") {
      c.protocol = OtlpProtocol::http_json;
    } else {
      throw ConfigError(fmt::format(
          "{}: http/protobuf or http/json, not \"{}\" (grpc is not supported)", which, protocol));
    }
  }
}

void read_export(const OtlpConfig::Getenv& getenv, OtlpConfig& c) {
  if (auto h = getenv("OTEL_EXPORTER_OTLP_HEADERS")) {
    c.headers = parse_pairs("OTEL_EXPORTER_OTLP_HEADERS", *h, true);
  }
  if (auto h = getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS")) {
    merge(c.headers, parse_pairs("OTEL_EXPORTER_OTLP_TRACES_HEADERS", *h, true));
  }
  // Header values are credentials (an API key, a bearer token): no log line may show them.
  for (const auto& h : c.headers) register_secret(h.second);
  const char* which = nullptr;
  if (auto t = either(getenv, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT",
                      which)) {
    c.timeout = std::chrono::milliseconds(whole(which, *t, 1, 3600000));
  }
}

void read_sampler(const OtlpConfig::Getenv& getenv, OtlpConfig& c) {
  const auto name = getenv("OTEL_TRACES_SAMPLER");
  if (!name) return;
  const auto arg = getenv("OTEL_TRACES_SAMPLER_ARG");
  std::string error;
  const std::string n = trimmed(*name);
  const std::optional<std::string> a =
      arg ? std::optional<std::string>(trimmed(*arg)) : std::nullopt;
  auto sampler = Sampler::parse(n, a, error);
  if (!sampler) throw ConfigError(error);
  c.sampler = *sampler;
}

void read_batch(const OtlpConfig::Getenv& getenv, OtlpConfig& c) {
  if (auto v = getenv("OTEL_BSP_SCHEDULE_DELAY")) {
    c.schedule_delay = std::chrono::milliseconds(whole("OTEL_BSP_SCHEDULE_DELAY", *v, 1, 3600000));
  }
  if (auto v = getenv("OTEL_BSP_EXPORT_TIMEOUT")) {
    c.export_timeout = std::chrono::milliseconds(whole("OTEL_BSP_EXPORT_TIMEOUT", *v, 1, 3600000));
  }
  if (auto v = getenv("OTEL_BSP_MAX_QUEUE_SIZE")) {
    c.max_queue_size = static_cast<std::size_t>(whole("OTEL_BSP_MAX_QUEUE_SIZE", *v, 1, 1 << 24));
  }
  if (auto v = getenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")) {
    c.max_export_batch_size =
        static_cast<std::size_t>(whole("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", *v, 1, 1 << 24));
  }
  if (c.max_export_batch_size > c.max_queue_size) {
    throw ConfigError(fmt::format(
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must not exceed OTEL_BSP_MAX_QUEUE_SIZE ({} > {})",
        c.max_export_batch_size, c.max_queue_size));
  }
}

void read_resource(const OtlpConfig::Getenv& getenv, OtlpConfig& c) {
  if (auto v = getenv("OTEL_RESOURCE_ATTRIBUTES")) {
    c.resource_attributes = parse_pairs("OTEL_RESOURCE_ATTRIBUTES", *v, false);
    for (const auto& [k, value] : c.resource_attributes) {
      if (k == "service.name") c.service_name = value;
    }
  }
  if (auto v = getenv("OTEL_SERVICE_NAME"); v && !trimmed(*v).empty()) c.service_name = trimmed(*v);
}

}  // namespace

OtlpConfig OtlpConfig::from_env(const Getenv& getenv) {
  OtlpConfig c;
  // Every variable is checked, whether or not export ends up on: a typo is found at once.
  read_endpoint(getenv, c);
  read_export(getenv, c);
  read_sampler(getenv, c);
  read_batch(getenv, c);
  read_resource(getenv, c);
  bool disabled = false;
  if (auto v = getenv("OTEL_SDK_DISABLED")) disabled = truth("OTEL_SDK_DISABLED", *v);
  if (auto v = getenv("OTEL_TRACES_EXPORTER")) {
    const std::string e = trimmed(*v);
    if (e == "none") {
      disabled = true;
    } else if (e != "otlp" && !e.empty()) {
      throw ConfigError(fmt::format("OTEL_TRACES_EXPORTER: expected otlp or none, got \"{}\"", e));
    }
  }
  c.enabled = !disabled && !c.endpoint.empty();
  return c;
}

std::string OtlpConfig::describe() const {
  if (!enabled) return "tracing off (no OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, or disabled)";
  std::string names;
  for (const auto& h : headers) names += (names.empty() ? "" : ",") + h.first;
  return fmt::format(
      "tracing to {} (OTLP/HTTP {}) service.name={} sampler={} batch={} queue={} "
      "delay_ms={} timeout_ms={} headers=[{}]",
      redact_url(endpoint), protocol == OtlpProtocol::http_json ? "JSON" : "protobuf", service_name,
      sampler.describe(), max_export_batch_size, max_queue_size, schedule_delay.count(),
      timeout.count(), names);
}

}  // namespace promptcache::telemetry
