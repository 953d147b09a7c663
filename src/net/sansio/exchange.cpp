#include "promptcache/net/sansio/step.hpp"

namespace promptcache::net::sansio {

void push_auth(resp::Request& req, const std::string& username, const std::string& password) {
  if (password.empty()) return;
  if (username.empty()) {
    req.push("AUTH", password);
  } else {
    req.push("AUTH", username, password);
  }
}

void Exchange::start(const resp::Request& req) {
  parser_.reset();
  out_.clear();
  expected_ = req.commands();
  received_ = 0;
  root_ = resp::Type::null;
}

bool Exchange::feed(std::string_view data, std::size_t& used, boost::system::error_code& ec) {
  used = 0;
  while (received_ < expected_) {
    std::size_t n = 0;
    const auto node = parser_.next(data.substr(used), n, ec);
    if (!node) return false;
    used += n;
    if (node->depth == 0) root_ = node->type;
    if (root_ == resp::Type::push) continue;  // nothing is tracked before the handshake ends
    out_.on_node(*node);
    if (parser_.done() && root_ != resp::Type::attribute) ++received_;
  }
  return true;
}

}  // namespace promptcache::net::sansio
