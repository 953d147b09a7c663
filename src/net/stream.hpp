// The byte stream under a connection: TCP, TLS over TCP, or a unix socket, behind one type.
#pragma once

#include <memory>
#include <string>
#include <variant>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "promptcache/net/config.hpp"

namespace promptcache::net {

// Builds the TLS context of a configuration (CA, client certificate, peer verification).
// Throws ConfigError when a file cannot be loaded.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const ClientConfig& cfg);

class Stream {
 public:
  explicit Stream(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}

  // Resolves, connects and (for TLS) handshakes. Not bounded in time: the caller closes the
  // stream from a timer to abort it. On failure `detail` says what failed, for the log.
  boost::asio::awaitable<boost::system::error_code> connect(const ClientConfig& cfg,
                                                            boost::asio::ssl::context* tls,
                                                            std::string& detail);

  boost::asio::awaitable<std::size_t> read_some(boost::asio::mutable_buffer buf,
                                                boost::system::error_code& ec);
  boost::asio::awaitable<std::size_t> write(boost::asio::const_buffer buf,
                                            boost::system::error_code& ec);

  // Aborts every operation in progress; safe to call at any time, any number of times.
  void close() noexcept;

 private:
  using Tcp = boost::asio::ip::tcp::socket;
  using Tls = boost::asio::ssl::stream<Tcp>;
  using Unix = boost::asio::local::stream_protocol::socket;

  boost::asio::any_io_executor ex_;
  std::variant<std::monostate, Tcp, std::unique_ptr<Tls>, Unix> socket_;
};

}  // namespace promptcache::net
