// PromptCacheService, the handle: each operation is its core's (src/cache/service_core.cpp),
// which background work shares; from_config builds one from a configuration.
#include "promptcache/cache/service.hpp"

#include "cache/service_core.hpp"
#include "promptcache/store/factory.hpp"
#include "promptcache/telemetry/otlp.hpp"

namespace promptcache::cache {

namespace asio = boost::asio;
namespace json = boost::json;

PromptCacheService::PromptCacheService(std::shared_ptr<store::Store> store, ServiceOptions options,
                                       std::shared_ptr<telemetry::Tracer> tracer,
                                       std::shared_ptr<NearTier> near)
    : core_(std::make_shared<ServiceCore>(std::move(store), options, std::move(tracer), near)),
      near_(std::move(near)) {}

PromptCacheService::~PromptCacheService() {
  core_->close();
}

void PromptCacheService::close() {
  core_->close();
}

PromptCacheService::CounterSnapshot PromptCacheService::counters() const noexcept {
  return core_->counters();
}

store::Store& PromptCacheService::store() noexcept {
  return core_->store();
}

std::string_view PromptCacheService::tier() const noexcept {
  return core_->store().tier();
}

const CircuitBreaker& PromptCacheService::breaker() const noexcept {
  return core_->breaker();
}

asio::awaitable<std::optional<PromptCacheService::Json>> PromptCacheService::get_analysis_result(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type) {
  return core_->get_analysis_result(prompt_hash, user_id, analysis_type);
}

asio::awaitable<void> PromptCacheService::set_analysis_result(std::string_view prompt_hash,
                                                              std::string_view user_id,
                                                              std::string_view analysis_type,
                                                              const Json& value, Ttl ttl) {
  return core_->set_analysis_result(prompt_hash, user_id, analysis_type, value, ttl);
}

asio::awaitable<void> PromptCacheService::add_analysis_result(std::string_view prompt_hash,
                                                              std::string_view user_id,
                                                              std::string_view analysis_type,
                                                              const Json& value, Ttl ttl) {
  return core_->add_analysis_result(prompt_hash, user_id, analysis_type, value, ttl);
}

asio::awaitable<std::optional<std::string>> PromptCacheService::get_analysis_result_json(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type) {
  return core_->get_analysis_result_json(prompt_hash, user_id, analysis_type);
}

asio::awaitable<NearValuePtr> PromptCacheService::get_analysis_result_shared(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type) {
  return core_->get_analysis_result_shared(prompt_hash, user_id, analysis_type);
}

asio::awaitable<std::optional<PromptCacheService::Json>> PromptCacheService::get(
    std::string_view key) {
  return core_->get(key);
}

NearValuePtr PromptCacheService::peek(std::string_view key) const {
  return core_->peek(key);
}

asio::awaitable<NearValuePtr> PromptCacheService::get_shared(std::string_view key) {
  return core_->get_shared(key);
}

asio::awaitable<std::optional<std::string>> PromptCacheService::get_json(std::string_view key) {
  return core_->get_json(key);
}

asio::awaitable<void> PromptCacheService::set(std::string_view key, const Json& value, Ttl ttl) {
  return core_->set(key, value, ttl);
}

asio::awaitable<void> PromptCacheService::set_json(std::string_view key, std::string_view json_text,
                                                   Ttl ttl) {
  return core_->set_json(key, json_text, ttl);
}

asio::awaitable<bool> PromptCacheService::delete_key(std::string_view key) {
  return core_->delete_key(key);
}

asio::awaitable<std::vector<std::optional<PromptCacheService::Json>>>
PromptCacheService::get_multiple(const std::vector<std::string>& keys) {
  return core_->get_multiple(keys);
}

asio::awaitable<void> PromptCacheService::set_multiple(
    const std::vector<std::pair<std::string, Json>>& entries, Ttl ttl) {
  return core_->set_multiple(entries, ttl);
}

asio::awaitable<void> PromptCacheService::set_multiple_json(
    const std::vector<std::pair<std::string, std::string>>& entries, Ttl ttl) {
  return core_->set_multiple_json(entries, ttl);
}

asio::awaitable<bool> PromptCacheService::set_versioned(std::string_view key,
                                                        std::string_view json_text,
                                                        std::uint64_t version, Ttl ttl,
                                                        std::chrono::milliseconds budget) {
  return core_->set_versioned(key, json_text, version, ttl, budget);
}

asio::awaitable<bool> PromptCacheService::delete_versioned(std::string_view key,
                                                           std::uint64_t version,
                                                           std::chrono::milliseconds budget) {
  return core_->delete_versioned(key, version, budget);
}

asio::awaitable<PromptCacheService::Lookup> PromptCacheService::get_or_load_versioned(
    std::string_view key, LoaderSource loader, Ttl ttl, std::chrono::milliseconds budget) {
  return core_->get_or_load_versioned(key, loader, ttl, budget);
}

asio::awaitable<void> PromptCacheService::set_multiple_versioned(
    const std::vector<VersionedEntry>& entries, Ttl ttl) {
  return core_->set_multiple_versioned(entries, ttl);
}

asio::awaitable<PromptCacheService::Json> PromptCacheService::get_with_fallback(
    std::string_view key, const Fallback& fallback, Ttl ttl) {
  return core_->get_with_fallback(key, fallback, ttl);
}

asio::awaitable<std::optional<PromptCacheService::Json>> PromptCacheService::get_or_load(
    std::string_view key, const Loader& loader, Ttl ttl) {
  return core_->get_or_load(key, loader, ttl);
}

asio::awaitable<PromptCacheService::Json> PromptCacheService::get_analysis_with_fallback(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type,
    const Fallback& fallback, Ttl ttl) {
  return core_->get_analysis_with_fallback(prompt_hash, user_id, analysis_type, fallback, ttl);
}

asio::awaitable<std::optional<PromptCacheService::Json>> PromptCacheService::get_or_load_analysis(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type,
    const Loader& loader, Ttl ttl) {
  return core_->get_or_load_analysis(prompt_hash, user_id, analysis_type, loader, ttl);
}

asio::awaitable<std::uint64_t> PromptCacheService::invalidate_user_analysis_cache(
    std::string_view user_id, const store::Progress& progress) {
  return core_->invalidate_user_analysis_cache(user_id, progress);
}

asio::awaitable<std::uint64_t> PromptCacheService::invalidate_pattern(
    std::string_view pattern, const store::Progress& progress) {
  return core_->invalidate_pattern(pattern, progress);
}

asio::awaitable<json::object> PromptCacheService::get_cache_stats() {
  return core_->get_cache_stats();
}

asio::awaitable<bool> PromptCacheService::reachable(std::chrono::milliseconds budget) {
  return core_->reachable(budget);
}

std::unique_ptr<PromptCacheService> PromptCacheService::from_config(
    const CacheConfig& config, const std::vector<asio::any_io_executor>& executors,
    std::shared_ptr<telemetry::Tracer> tracer) {
  std::shared_ptr<NearTier> near;
  if (config.near && config.redis) near = std::make_shared<NearTier>(*config.near);
  if (!tracer && config.tracing.enabled) tracer = telemetry::make_otlp_tracer(config.tracing);
  return std::make_unique<PromptCacheService>(store::make_store(config.store_spec(near), executors),
                                              config.service_options(), std::move(tracer), near);
}

}  // namespace promptcache::cache
