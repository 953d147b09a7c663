#include "promptcache/store/redis_store.hpp"

#include <charconv>
#include <deque>
#include <memory>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "promptcache/error.hpp"
#include "store/scripts.hpp"

namespace promptcache::store {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// Collects an array of bulk strings / nulls (MGET).
class ValuesSink final : public resp::ReplySink {
 public:
  void on_node(const resp::Node& node) override {
    if (node.depth == 0) {
      if (resp::is_error(node.type)) {
        error = error::server_error;
      } else if (node.type != resp::Type::array) {
        error = error::unexpected_reply;
      }
      return;
    }
    if (node.depth != 1) return;
    if (node.type == resp::Type::null) {
      values.emplace_back();
    } else {
      values.emplace_back(std::string(node.value));
    }
  }
  void reset() noexcept override {
    values.clear();
    error = {};
  }
  std::vector<std::optional<std::string>> values;
  error_code error;
};

// A script command built by `push(request, by_sha)`: EVALSHA first, EVAL when the server does
// not have the script cached.
template <class Push>
asio::awaitable<Result<resp::Reply>> run_script(net::Client& client, const Push& push) {
  for (int attempt = 0;; ++attempt) {
    resp::Request req;
    push(req, attempt == 0);
    auto reply = co_await client.command(std::move(req));
    if (attempt == 0 && reply && reply->is_error() && scripts::is_noscript(reply->value)) continue;
    co_return reply;
  }
}

std::uint64_t to_u64(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

asio::awaitable<Result<std::optional<std::string>>> RedisStore::get(std::string_view key,
                                                                    Deadline deadline) {
  return client_->get(key, deadline);  // the same result type: no coroutine frame of its own
}

namespace {

// A GET's reply handed to a ValueVisitor while it is in the read buffer.
class VisitingSink final : public resp::ReplySink {
 public:
  explicit VisitingSink(ValueVisitor& visitor) : visitor_(visitor) {}
  void on_node(const resp::Node& node) override {
    if (node.depth != 0) return;
    const resp::ValueReply kind = resp::value_reply(node.type);
    if (kind == resp::ValueReply::value) visitor_.on_value(node.value);
    if (kind == resp::ValueReply::error) error = error::server_error;
    if (kind == resp::ValueReply::unexpected) error = error::unexpected_reply;
  }
  // Sent again (after a timeout): the visitor may be told again, and keeps the last.
  void reset() noexcept override { error = {}; }
  error_code error;

 private:
  ValueVisitor& visitor_;
};

}  // namespace

asio::awaitable<error_code> RedisStore::get_into(std::string_view key, Deadline deadline,
                                                 ValueVisitor& visitor) {
  const resp::Request req = net::Client::get_request(key, deadline);
  VisitingSink sink(visitor);
  if (error_code ec = co_await client_->execute(req, sink)) co_return ec;
  co_return sink.error;
}

asio::awaitable<Result<std::vector<std::optional<std::string>>>> RedisStore::get_multiple(
    const std::vector<std::string>& keys) {
  if (keys.empty()) co_return std::vector<std::optional<std::string>>{};
  resp::Request req;
  req.push_range("MGET", keys).set_idempotent(true);
  ValuesSink sink;
  if (error_code ec = co_await client_->execute(req, sink)) co_return ec;
  if (sink.error) co_return sink.error;
  if (sink.values.size() != keys.size()) co_return make_error_code(error::unexpected_reply);
  co_return std::move(sink.values);
}

asio::awaitable<Result<bool>> RedisStore::write(const Write& w, Deadline deadline) {
  Result<resp::Reply> reply = make_error_code(error::closed);
  if (scripts::needs_script(w)) {
    const auto push = [&](resp::Request& req, bool by_sha) {
      scripts::push_write(req, by_sha, w);
      req.set_deadline(deadline);
    };
    reply = co_await run_script(*client_, push);
  } else {
    resp::Request req;
    scripts::push_plain_set(req, w.key, w.value, w.ttl, w.mode);
    req.set_idempotent(w.mode == SetMode::always).set_deadline(deadline);
    reply = co_await client_->command(std::move(req));
  }
  if (!reply) co_return failure(reply.error());
  co_return scripts::write_outcome(reply->type, reply->value);
}

namespace {

// Entries from `first` on, as commands, until `req` holds about `bytes`: plain SETs, or the
// write script (loaded once per request) for indexed or versioned entries. Returns the index of
// the first entry left out.
std::size_t encode_chunk(resp::Request& req, const std::vector<Entry>& entries, std::size_t first,
                         std::size_t bytes) {
  bool loaded = false;
  std::size_t i = first;
  for (; i < entries.size() && req.payload().size() < bytes; ++i) {
    const Entry& e = entries[i];
    if (e.index.empty() && e.version == 0) {
      scripts::push_plain_set(req, e.key, e.value, e.ttl, SetMode::always);
      continue;
    }
    if (!std::exchange(loaded, true)) scripts::push_load_write(req);
    scripts::push_write(req, true, e);
  }
  return i;
}

}  // namespace

// A batch goes out as requests of about `chunk_bytes`, at most `window` of them in flight: the
// first is on the wire while the next is encoded, so Redis and we work at the same time, and a
// batch of any size holds a bounded amount of memory.
asio::awaitable<Result<std::size_t>> RedisStore::set_multiple(const std::vector<Entry>& entries) {
  constexpr std::size_t chunk_bytes = 128 * 1024;
  constexpr std::size_t window = 4;
  struct Chunk {
    resp::Request req;
    resp::StatusTally sink;
    std::size_t entries = 0;
    error_code ec;
    bool done = false;
  };
  // Shared with the chunks' completions, which may outlive this frame if it is destroyed.
  struct Batch {
    explicit Batch(const asio::any_io_executor& ex)
        : wake(ex, asio::steady_timer::time_point::max()) {}
    std::deque<Chunk> chunks;  // in flight, oldest first; a deque keeps their addresses
    asio::steady_timer wake;
  };
  if (entries.empty()) co_return std::size_t{0};
  const auto ex = co_await asio::this_coro::executor;
  auto batch = std::make_shared<Batch>(ex);
  std::size_t failed = 0;
  std::size_t sent = 0;
  error_code first_error;
  // Waits for the oldest chunk and counts what failed in it.
  auto retire = [&]() -> asio::awaitable<void> {
    while (!batch->chunks.front().done) {
      error_code ignored;
      co_await batch->wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    Chunk& c = batch->chunks.front();
    if (c.ec) {
      failed += c.entries;
      if (!first_error) first_error = c.ec;
    } else {
      failed += c.sink.errors;
    }
    batch->chunks.pop_front();
  };
  for (std::size_t i = 0; i < entries.size();) {
    if (batch->chunks.size() == window) co_await retire();
    Chunk& c = batch->chunks.emplace_back();
    c.req.reserve(chunk_bytes + 64 * 1024);
    const std::size_t next = encode_chunk(c.req, entries, i, chunk_bytes);
    c.entries = next - i;
    i = next;
    sent += c.entries;
    asio::co_spawn(ex, client_->execute(c.req, c.sink),
                   [batch, &c](std::exception_ptr e, error_code ec) {
                     c.ec = e ? make_error_code(error::closed) : ec;
                     c.done = true;
                     batch->wake.cancel();
                   });
    // Lets the chunk reach the writer before the next one is encoded.
    co_await asio::post(ex, asio::use_awaitable);
  }
  while (!batch->chunks.empty()) co_await retire();
  if (failed == sent && first_error) co_return first_error;  // nothing was written
  co_return failed;
}

asio::awaitable<Result<std::uint64_t>> RedisStore::del(const std::vector<std::string>& keys) {
  if (keys.empty()) co_return std::uint64_t{0};
  resp::Request req;
  req.push_range("UNLINK", keys);
  resp::StatusTally sink;
  if (error_code ec = co_await client_->execute(req, sink)) co_return ec;
  if (sink.errors > 0) co_return make_error_code(error::server_error);
  co_return sink.sum;
}

asio::awaitable<Result<std::uint64_t>> RedisStore::delete_matching(std::string_view pattern,
                                                                   const Progress& progress) {
  std::uint64_t deleted = 0;
  std::string cursor = "0";
  std::vector<std::string> page;
  do {
    resp::Request req;
    if (!page.empty()) req.push_range("UNLINK", page);
    req.push("SCAN", cursor, "MATCH", pattern, "COUNT", 1000);
    resp::ReplyCollector out;
    if (error_code ec = co_await client_->execute(req, out)) co_return ec;
    auto& replies = out.replies();
    if (!page.empty()) {
      if (replies.front().is_error()) co_return make_error_code(error::server_error);
      deleted += static_cast<std::uint64_t>(replies.front().as_int().value_or(0));
      if (progress) progress(deleted);
    }
    const resp::Reply& scan = replies.back();
    if (scan.is_error() || scan.elements.size() != 2) {
      co_return make_error_code(error::unexpected_reply);
    }
    cursor = scan.elements[0].value;
    page.clear();
    for (auto& k : scan.elements[1].elements) page.push_back(std::move(k.value));
  } while (cursor != "0");
  if (!page.empty()) {
    auto r = co_await del(page);
    if (!r) co_return r.error();
    deleted += *r;
    if (progress) progress(deleted);
  }
  co_return deleted;
}

asio::awaitable<Result<std::uint64_t>> RedisStore::delete_indexed(std::string_view index,
                                                                  const Progress& progress) {
  const auto push = [&](resp::Request& req, bool by_sha) {
    scripts::push_drain(req, by_sha, index);
  };
  const auto drain_once = [&]() -> asio::awaitable<Result<std::string>> {
    auto reply = co_await run_script(*client_, push);
    if (!reply) co_return reply.error();
    if (reply->is_error()) co_return make_error_code(error::server_error);
    co_return std::move(reply->value);
  };
  co_return co_await scripts::drain_all(drain_once, progress);
}

asio::awaitable<Result<bool>> RedisStore::acquire_lease(std::string_view key,
                                                        std::string_view token,
                                                        std::chrono::milliseconds ttl,
                                                        Deadline deadline) {
  resp::Request req;
  scripts::push_acquire(req, key, token, ttl);
  req.set_deadline(deadline);
  auto reply = co_await client_->command(std::move(req));
  if (!reply) co_return failure(reply.error());
  if (reply->is_error()) co_return failure(make_error_code(error::server_error));
  co_return answer(reply->type != resp::Type::null);  // OK: ours; null: somebody else's
}

asio::awaitable<Result<bool>> RedisStore::release_lease(std::string_view key,
                                                        std::string_view token, Deadline deadline) {
  const auto push = [&](resp::Request& req, bool by_sha) {
    scripts::push_release(req, by_sha, key, token);
    req.set_deadline(deadline);
  };
  auto reply = co_await run_script(*client_, push);
  if (!reply) co_return failure(reply.error());
  if (reply->is_error()) co_return failure(make_error_code(error::server_error));
  co_return answer(reply->value == "1");
}

ServerStats parse_info(std::string_view info) {
  ServerStats s;
  while (!info.empty()) {
    const auto eol = info.find('\n');
    std::string_view line = info.substr(0, eol);
    info = eol == std::string_view::npos ? std::string_view{} : info.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto colon = line.find(':');
    if (line.empty() || line.front() == '#' || colon == std::string_view::npos) continue;
    const std::string_view field = line.substr(0, colon);
    const std::string_view value = line.substr(colon + 1);
    if (field == "keyspace_hits") s.keyspace_hits = to_u64(value);
    if (field == "keyspace_misses") s.keyspace_misses = to_u64(value);
    if (field == "connected_clients") s.connected_clients = to_u64(value);
    if (field == "total_commands_processed") s.total_commands_processed = to_u64(value);
    if (field == "used_memory") s.used_memory = to_u64(value);
    if (field == "used_memory_human") s.used_memory_human = std::string(value);
    if (field.substr(0, 2) == "db") {  // db0:keys=12,expires=3,avg_ttl=0
      const auto keys = value.find("keys=");
      if (keys != std::string_view::npos) s.keys += to_u64(value.substr(keys + 5));
    }
  }
  return s;
}

asio::awaitable<Result<ServerStats>> RedisStore::server_stats() {
  resp::Request req;
  req.push("INFO").set_idempotent(true);
  resp::ReplyCollector out;
  if (error_code ec = co_await client_->execute(req, out)) co_return ec;
  const resp::Reply& info = out.replies().front();
  if (info.is_error()) co_return make_error_code(error::server_error);
  co_return parse_info(info.value);
}

asio::awaitable<error_code> RedisStore::connect() {
  co_return co_await client_->connect();
}

std::string RedisStore::last_error() const {
  return client_->last_error_message();
}

}  // namespace promptcache::store
