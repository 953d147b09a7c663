#include "net/stream.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace promptcache::net {

namespace asio = boost::asio;
using boost::system::error_code;

std::shared_ptr<asio::ssl::context> make_tls_context(const ClientConfig& cfg) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  error_code ec;
  if (cfg.tls.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(cfg.tls.ca_file, ec);
    if (ec) {
      throw ConfigError(
          fmt::format("REDIS_SSL_CA_CERTS: cannot load \"{}\": {}", cfg.tls.ca_file, ec.message()));
    }
  }
  if (!cfg.tls.cert_file.empty()) {
    ctx->use_certificate_chain_file(cfg.tls.cert_file, ec);
    if (ec) {
      throw ConfigError(fmt::format("REDIS_SSL_CERTFILE: cannot load \"{}\": {}", cfg.tls.cert_file,
                                    ec.message()));
    }
    ctx->use_private_key_file(cfg.tls.key_file, asio::ssl::context::pem, ec);
    if (ec) {
      throw ConfigError(
          fmt::format("REDIS_SSL_KEYFILE: cannot load \"{}\": {}", cfg.tls.key_file, ec.message()));
    }
  }
  ctx->set_verify_mode(cfg.tls.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none);
  return ctx;
}

namespace {

std::string describe_tls_error(const error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    const auto reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
      return "TLS handshake failed: the server's certificate is not trusted (check "
             "REDIS_SSL_CA_CERTS)";
    }
  }
  return "TLS handshake failed: " + ec.message();
}

}  // namespace

asio::awaitable<error_code> Stream::connect(const ClientConfig& cfg, asio::ssl::context* tls,
                                            std::string& detail) {
  close();
  error_code ec;
  if (cfg.transport == Transport::unix_socket) {
    auto& sock = socket_.emplace<Unix>(ex_);
    co_await sock.async_connect(asio::local::stream_protocol::endpoint(cfg.unix_path),
                                asio::redirect_error(asio::use_awaitable, ec));
    if (ec) detail = fmt::format("cannot connect to unix:{}: {}", cfg.unix_path, ec.message());
    co_return ec;
  }

  asio::ip::tcp::resolver resolver(ex_);
  auto endpoints = co_await resolver.async_resolve(cfg.host, std::to_string(cfg.port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    detail = fmt::format("cannot resolve {}: {}", cfg.host, ec.message());
    co_return ec;
  }
  Tcp* tcp = nullptr;
  if (cfg.transport == Transport::tls) {
    tcp = &socket_.emplace<std::unique_ptr<Tls>>(std::make_unique<Tls>(ex_, *tls))->next_layer();
  } else {
    tcp = &socket_.emplace<Tcp>(ex_);
  }
  co_await asio::async_connect(*tcp, endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    detail = fmt::format("cannot connect to {}:{}: {}", cfg.host, cfg.port, ec.message());
    co_return ec;
  }
  tcp->set_option(asio::ip::tcp::no_delay(true), ec);
  ec = {};
  if (cfg.transport == Transport::tls) {
    auto& tls_stream = *std::get<std::unique_ptr<Tls>>(socket_);
    error_code addr_ec;
    asio::ip::make_address(cfg.host, addr_ec);
    if (addr_ec) {  // SNI is for names, not addresses
      SSL_set_tlsext_host_name(tls_stream.native_handle(), cfg.host.c_str());
    }
    if (cfg.tls.verify_peer) {
      tls_stream.set_verify_callback(asio::ssl::host_name_verification(cfg.host));
    }
    co_await tls_stream.async_handshake(asio::ssl::stream_base::client,
                                        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) detail = describe_tls_error(ec);
  }
  co_return ec;
}

asio::awaitable<std::size_t> Stream::read_some(asio::mutable_buffer buf, error_code& ec) {
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  switch (socket_.index()) {
    case 1:
      co_return co_await std::get<Tcp>(socket_).async_read_some(buf, token);
    case 2:
      co_return co_await std::get<std::unique_ptr<Tls>>(socket_)->async_read_some(buf, token);
    case 3:
      co_return co_await std::get<Unix>(socket_).async_read_some(buf, token);
  }
  ec = asio::error::not_connected;
  co_return 0;
}

asio::awaitable<std::size_t> Stream::write(asio::const_buffer buf, error_code& ec) {
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  switch (socket_.index()) {
    case 1:
      co_return co_await asio::async_write(std::get<Tcp>(socket_), buf, token);
    case 2:
      co_return co_await asio::async_write(*std::get<std::unique_ptr<Tls>>(socket_), buf, token);
    case 3:
      co_return co_await asio::async_write(std::get<Unix>(socket_), buf, token);
  }
  ec = asio::error::not_connected;
  co_return 0;
}

void Stream::close() noexcept {
  error_code ignored;
  switch (socket_.index()) {
    case 1:
      std::get<Tcp>(socket_).close(ignored);
      break;
    case 2:
      std::get<std::unique_ptr<Tls>>(socket_)->next_layer().close(ignored);
      break;
    case 3:
      std::get<Unix>(socket_).close(ignored);
      break;
  }
}

}  // namespace promptcache::net
