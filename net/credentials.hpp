#pragma once
// A request's credentials taken from its HTTP headers, for auth/ to check (docs/api.md
// "Authentication"). auth/ knows nothing of HTTP; this is where the headers meet it.
//
// The using-declarations below let net's code name auth's types and functions as it did when
// they lived in net/ (`Keys`, `AuthStatus`, `verify_signature`, ...): the server, the routes and
// the renderer are being rewritten in parallel, and can say `auth::` when they next change.

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

using auth::auth_status_code;
using auth::auth_status_http;
using auth::auth_window_s_default;
using auth::AuthResult;
using auth::AuthStatus;
using auth::balance_channel;
using auth::base64_decode;
using auth::channel_key_bits_min;
using auth::ChannelKey;
using auth::dev_channel_names;
using auth::dev_merchant_ids;
using auth::HexSignature;
using auth::Keys;
using auth::keys_init;
using auth::keys_load;
using auth::keys_parse;
using auth::KeysHolder;
using auth::KeysInit;
using auth::nonce_bytes_max;
using auth::nonce_bytes_min;
using auth::nonce_is_valid;
using auth::NonceCache;
using auth::NonceCacheConfig;
using auth::NotificationCredentials;
using auth::pem_private_key;
using auth::pem_public_key;
using auth::Principal;
using auth::PrincipalKind;
using auth::record_nonce;
using auth::RequestCredentials;
using auth::sign_notification;
using auth::sign_request;
using auth::signature_hex_bytes;
using auth::SignedFields;
using auth::verify_notification;
using auth::verify_request;
using auth::verify_signature;

}  // namespace paycore::net
