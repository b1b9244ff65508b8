// One HTTP/1.1 connection (Boost.Beast over Asio): reads requests one at a time
// (keep-alive), hands each to the router, and writes complete replies or streamed bodies
// from one queue of byte strings. All on the I/O thread; no thread per connection.
//
// While a response is in progress the session keeps reading, so a client that closes
// the connection is noticed at once (not only at the next failed write) and the
// exchange's abort callback cancels its generation. A client that leaves more than
// ServerLimits::max_pending bytes unread is dropped the same way.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "server/responder.h"
#include "server/server_context.h"

namespace flashlm::server {

class HttpSession;

// Starts serving an accepted connection; the session keeps itself alive while it has
// work in flight. The returned pointer lets the server close idle sessions on shutdown.
std::weak_ptr<HttpSession> start_session(boost::asio::ip::tcp::socket socket, ServerContext& ctx);

// Closes the connection if it is between requests; otherwise it closes after the
// response in progress (the server is draining).
void close_when_idle(const std::weak_ptr<HttpSession>& session);
// Closes the connection now.
void close_now(const std::weak_ptr<HttpSession>& session);

}  // namespace flashlm::server
