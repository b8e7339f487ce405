#include "net/credentials.hpp"

namespace paycore::net {
namespace {

// The header's value if it occurs exactly once; empty otherwise.
std::string_view single_header(const HttpRequest& request, std::string_view name) {
  if (request.header_occurrences(name) != 1) return {};
  return *request.header(name);
}

}  // namespace

auth::RequestCredentials request_credentials(const HttpRequest& request) {
  auth::RequestCredentials credentials;
  credentials.principal_id = single_header(request, "X-Merchant-Id");
  credentials.timestamp = single_header(request, "X-Timestamp");
  credentials.nonce = single_header(request, "X-Nonce");
  credentials.signature = single_header(request, "X-Signature");
  credentials.method = request.method;
  credentials.path_and_query = request.target;
  credentials.body = request.body;
  return credentials;
}

auth::NotificationCredentials notification_credentials(const HttpRequest& request) {
  auth::NotificationCredentials credentials;
  credentials.timestamp = single_header(request, "X-Channel-Timestamp");
  credentials.nonce = single_header(request, "X-Channel-Nonce");
  credentials.signature = single_header(request, "X-Channel-Signature");
  return credentials;
}

}  // namespace paycore::net
