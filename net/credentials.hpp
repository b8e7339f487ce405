#pragma once
// A request's credentials taken from its HTTP headers, for auth/ to check (docs/api.md
// "Authentication"). auth/ knows nothing of HTTP; this is where the headers meet it.

#include "auth/keys.hpp"
#include "auth/signing.hpp"
#include "net/http_parser.hpp"

namespace paycore::net {

// X-Merchant-Id, X-Timestamp, X-Nonce and X-Signature of a parsed request, with the method,
// target and body they sign; a header sent twice counts as absent (empty view). Views point
// into `request`.
auth::RequestCredentials request_credentials(const HttpRequest& request);

// X-Channel-Timestamp, X-Channel-Nonce and X-Channel-Signature of a channel's notification;
// a header sent twice counts as absent. Views point into `request`.
auth::NotificationCredentials notification_credentials(const HttpRequest& request);

}  // namespace paycore::net
