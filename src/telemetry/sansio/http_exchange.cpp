#include "telemetry/sansio/http_exchange.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace promptcache::telemetry {
namespace {

std::string without_line_breaks(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c != '\r' && c != '\n') out += c;
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether the comma-separated list `value` holds `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    if (lower(trim(value.substr(0, comma))) == token) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::string post_head(std::string_view host, std::string_view path,
                      const std::vector<std::pair<std::string, std::string>>& headers,
                      std::string_view content_type, std::size_t body_size,
                      std::string_view user_agent) {
  std::string out;
  out.reserve(256);
  out += "POST ";
  out += path.empty() ? std::string("/") : without_line_breaks(path);
  out += " HTTP/1.1\r\nHost: ";
  out += without_line_breaks(host);
  out += "\r\nContent-Type: ";
  out += without_line_breaks(content_type);
  out += "\r\nContent-Length: ";
  out += std::to_string(body_size);
  out += "\r\nUser-Agent: ";
  out += without_line_breaks(user_agent);
  out += "\r\n";
  for (const auto& [name, value] : headers) {
    out += without_line_breaks(name);
    out += ": ";
    out += without_line_breaks(value);
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

void ResponseParser::fail(std::string why) {
  state_ = State::failed;
  error_ = std::move(why);
}

std::size_t ResponseParser::take_body(std::string_view data, std::size_t n) {
  body_seen_ += n;
  if (body_seen_ > max_body) {
    fail("the response body is larger than 1 MiB");
    return n;
  }
  const std::size_t room = kept_body - std::min(kept_body, response_.body.size());
  response_.body.append(data.substr(0, std::min(n, room)));
  return n;
}

// Appends bytes up to and including a line feed to line_ (the line break itself dropped).
std::size_t ResponseParser::feed_line(std::string_view data, bool& complete) {
  const std::size_t lf = data.find('\n');
  complete = lf != std::string_view::npos;
  const std::size_t used = complete ? lf + 1 : data.size();
  line_.append(data.substr(0, complete ? lf : used));
  if (complete && !line_.empty() && line_.back() == '\r') line_.pop_back();
  if (line_.size() > max_head) fail("a line of the response is longer than 16 KiB");
  return used;
}

std::size_t ResponseParser::feed_head(std::string_view data) {
  const std::size_t before = line_.size();
  line_.append(data);
  const std::size_t end = line_.find("\r\n\r\n", before >= 3 ? before - 3 : 0);
  if (end == std::string::npos) {
    if (line_.size() > max_head) fail("the response head is larger than 16 KiB");
    return data.size();
  }
  const std::size_t used = end + 4 - before;
  line_.resize(end + 2);  // the last field's CRLF kept: every line ends with one
  if (take_head()) line_.clear();
  return used;
}

bool ResponseParser::take_head() {
  std::string_view head = line_;
  const std::size_t eol = head.find("\r\n");
  const std::string_view status_line = head.substr(0, eol);
  head.remove_prefix(eol + 2);
  // HTTP/1.x SP 3DIGIT [SP reason]
  if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.") || status_line[8] != ' ') {
    fail("not an HTTP/1.x response");
    return false;
  }
  int status = 0;
  const auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, status);
  if (ec != std::errc{} || p != status_line.data() + 12 || status < 100 || status > 599 ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    fail("the response's status code is not three digits");
    return false;
  }
  HttpResponse r;
  r.status = status;
  r.close = status_line[7] == '0';  // HTTP/1.0
  bool chunked = false;
  bool other_coding = false;
  std::optional<std::uint64_t> length;
  while (!head.empty()) {
    const std::size_t end = head.find("\r\n");
    const std::string_view field = head.substr(0, end);
    head.remove_prefix(end + 2);
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      fail("a response header field has no name");
      return false;
    }
    const std::string name = lower(field.substr(0, colon));
    const std::string_view value = trim(field.substr(colon + 1));
    if (name == "content-length") {
      std::uint64_t n = 0;
      const auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || e != std::errc{} || q != value.data() + value.size() ||
          (length && *length != n)) {
        fail("the response's Content-Length is not one number");
        return false;
      }
      length = n;
    } else if (name == "transfer-encoding") {
      chunked = has_token(value, "chunked");
      other_coding = !chunked;
    } else if (name == "retry-after") {
      r.retry_after = std::string(value);
    } else if (name == "connection" && has_token(value, "close")) {
      r.close = true;
    }
  }
  if (status < 200) {  // an interim response (100 Continue and kin): the real one follows
    return true;
  }
  response_ = std::move(r);
  if (status == 204 || status == 304) {
    state_ = State::done;
  } else if (chunked) {
    state_ = State::chunk_size;
  } else if (other_coding || !length) {
    state_ = State::to_close;
    response_.close = true;
  } else {
    remaining_ = *length;
    state_ = remaining_ == 0 ? State::done : State::sized_body;
  }
  return true;
}

std::size_t ResponseParser::feed(std::string_view data) {
  std::size_t used = 0;
  while (used < data.size() && state_ != State::done && state_ != State::failed) {
    const std::string_view rest = data.substr(used);
    bool complete = false;
    switch (state_) {
      case State::head:
        used += feed_head(rest);
        break;
      case State::sized_body: {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(rest.size(), remaining_));
        used += take_body(rest, n);
        remaining_ -= n;
        if (remaining_ == 0 && state_ != State::failed) state_ = State::done;
        break;
      }
      case State::chunk_size:
        used += feed_line(rest, complete);
        if (complete && state_ != State::failed) {
          const std::string_view size = trim(std::string_view(line_).substr(0, line_.find(';')));
          std::uint64_t n = 0;
          const auto [p, ec] = std::from_chars(size.data(), size.data() + size.size(), n, 16);
          if (size.empty() || ec != std::errc{} || p != size.data() + size.size()) {
            fail("a chunk size of the response is not hexadecimal");
            break;
          }
          line_.clear();
          remaining_ = n;
          state_ = n == 0 ? State::trailer : State::chunk_data;
        }
        break;
      case State::chunk_data:
        if (remaining_ > 0) {
          const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(rest.size(), remaining_));
          used += take_body(rest, n);
          remaining_ -= n;
          break;
        }
        used += feed_line(rest, complete);
        if (complete && state_ != State::failed) {
          if (!line_.empty()) {
            fail("a chunk of the response does not end where its size says");
            break;
          }
          state_ = State::chunk_size;
        }
        break;
      case State::trailer:
        used += feed_line(rest, complete);
        if (complete && state_ != State::failed) {
          if (line_.empty()) state_ = State::done;
          line_.clear();
        }
        break;
      case State::to_close:
        used += take_body(rest, rest.size());
        break;
      case State::done:
      case State::failed:
        break;
    }
  }
  return used;
}

void ResponseParser::end_of_stream() {
  if (state_ == State::to_close) {
    state_ = State::done;
  } else if (state_ != State::done && state_ != State::failed) {
    fail("the connection closed before the response was complete");
  }
}

}  // namespace promptcache::telemetry
