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
    : PromptCacheService(
          std::make_shared<ServiceCore>(std::move(store), options, std::move(tracer), near), near) {
}

PromptCacheService::PromptCacheService(std::shared_ptr<ServiceCore> core,
                                       std::shared_ptr<NearTier> near)
    : ServiceOperations(*core, near.get()), owner_(std::move(core)), near_owner_(std::move(near)) {}

TracedService PromptCacheService::traced(const telemetry::SpanContext& parent) const noexcept {
  return traced(&parent);
}

TracedService PromptCacheService::traced(const telemetry::SpanContext* parent) const noexcept {
  return TracedService(*core_, near_, parent != nullptr && parent->valid() ? parent : nullptr);
}

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

asio::awaitable<std::optional<ServiceOperations::Json>> ServiceOperations::get_analysis_result(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type) {
  return core_->get_analysis_result(prompt_hash, user_id, analysis_type, parent());
}

asio::awaitable<void> ServiceOperations::set_analysis_result(std::string_view prompt_hash,
                                                             std::string_view user_id,
                                                             std::string_view analysis_type,
                                                             const Json& value, Ttl ttl) {
  return core_->set_analysis_result(prompt_hash, user_id, analysis_type, value, ttl, parent());
}

asio::awaitable<void> ServiceOperations::add_analysis_result(std::string_view prompt_hash,
                                                             std::string_view user_id,
                                                             std::string_view analysis_type,
                                                             const Json& value, Ttl ttl) {
  return core_->add_analysis_result(prompt_hash, user_id, analysis_type, value, ttl, parent());
}

asio::awaitable<std::optional<std::string>> ServiceOperations::get_analysis_result_json(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type) {
  return core_->get_analysis_result_json(prompt_hash, user_id, analysis_type, parent());
}

asio::awaitable<NearValuePtr> ServiceOperations::get_analysis_result_shared(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type) {
  return core_->get_analysis_result_shared(prompt_hash, user_id, analysis_type, parent());
}

asio::awaitable<std::optional<ServiceOperations::Json>> ServiceOperations::get(
    std::string_view key) {
  return core_->get(key, parent());
}

NearValuePtr ServiceOperations::peek(std::string_view key) const {
  return core_->peek(key);
}

asio::awaitable<NearValuePtr> ServiceOperations::get_shared(std::string_view key) {
  return core_->get_shared(key, parent());
}

asio::awaitable<std::optional<std::string>> ServiceOperations::get_json(std::string_view key) {
  return core_->get_json(key, parent());
}

asio::awaitable<void> ServiceOperations::set(std::string_view key, const Json& value, Ttl ttl) {
  return core_->set(key, value, ttl, parent());
}

asio::awaitable<void> ServiceOperations::set_json(std::string_view key, std::string_view json_text,
                                                  Ttl ttl) {
  return core_->set_json(key, json_text, ttl, parent());
}

asio::awaitable<bool> ServiceOperations::delete_key(std::string_view key) {
  return core_->delete_key(key, parent());
}

asio::awaitable<std::vector<std::optional<ServiceOperations::Json>>>
ServiceOperations::get_multiple(const std::vector<std::string>& keys) {
  return core_->get_multiple(keys, parent());
}

asio::awaitable<void> ServiceOperations::set_multiple(
    const std::vector<std::pair<std::string, Json>>& entries, Ttl ttl) {
  return core_->set_multiple(entries, ttl, parent());
}

asio::awaitable<void> ServiceOperations::set_multiple_json(
    const std::vector<std::pair<std::string, std::string>>& entries, Ttl ttl) {
  return core_->set_multiple_json(entries, ttl, parent());
}

asio::awaitable<bool> ServiceOperations::set_versioned(std::string_view key,
                                                       std::string_view json_text,
                                                       std::uint64_t version, Ttl ttl,
                                                       std::chrono::milliseconds budget) {
  return core_->set_versioned(key, json_text, version, ttl, budget, parent());
}

asio::awaitable<bool> ServiceOperations::delete_versioned(std::string_view key,
                                                          std::uint64_t version,
                                                          std::chrono::milliseconds budget) {
  return core_->delete_versioned(key, version, budget, parent());
}

asio::awaitable<ServiceOperations::Lookup> ServiceOperations::get_or_load_versioned(
    std::string_view key, LoaderSource loader, Ttl ttl, std::chrono::milliseconds budget) {
  return core_->get_or_load_versioned(key, loader, ttl, budget, parent());
}

asio::awaitable<void> ServiceOperations::set_multiple_versioned(
    const std::vector<VersionedEntry>& entries, Ttl ttl) {
  return core_->set_multiple_versioned(entries, ttl, parent());
}

asio::awaitable<ServiceOperations::Json> ServiceOperations::get_with_fallback(
    std::string_view key, const Fallback& fallback, Ttl ttl) {
  return core_->get_with_fallback(key, fallback, ttl, parent());
}

asio::awaitable<std::optional<ServiceOperations::Json>> ServiceOperations::get_or_load(
    std::string_view key, const Loader& loader, Ttl ttl) {
  return core_->get_or_load(key, loader, ttl, parent());
}

asio::awaitable<ServiceOperations::Json> ServiceOperations::get_analysis_with_fallback(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type,
    const Fallback& fallback, Ttl ttl) {
  return core_->get_analysis_with_fallback(prompt_hash, user_id, analysis_type, fallback, ttl,
                                           parent());
}

asio::awaitable<std::optional<ServiceOperations::Json>> ServiceOperations::get_or_load_analysis(
    std::string_view prompt_hash, std::string_view user_id, std::string_view analysis_type,
    const Loader& loader, Ttl ttl) {
  return core_->get_or_load_analysis(prompt_hash, user_id, analysis_type, loader, ttl, parent());
}

asio::awaitable<std::uint64_t> ServiceOperations::invalidate_user_analysis_cache(
    std::string_view user_id, const store::Progress& progress) {
  return core_->invalidate_user_analysis_cache(user_id, progress, parent());
}

asio::awaitable<std::uint64_t> ServiceOperations::invalidate_pattern(
    std::string_view pattern, const store::Progress& progress) {
  return core_->invalidate_pattern(pattern, progress, parent());
}

asio::awaitable<json::object> ServiceOperations::get_cache_stats() {
  return core_->get_cache_stats();
}

asio::awaitable<bool> ServiceOperations::reachable(std::chrono::milliseconds budget) {
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
