#pragma once
// Where paycore may send a merchant's events (issue 15 "Safety"; API.md "Events and webhooks").
//
// Two checks, at two moments:
// - at creation (POST /v1/webhook_endpoints), check_endpoint_url(): the text of the URL. Only
//   `https://`, or `http://` to a host named in `http_hosts_allowed` (tests and development use
//   127.0.0.1 / localhost); no userinfo (`user:pass@`), no fragment, a host of letters, digits,
//   '-' and '.', a dotted IPv4 or a bracketed IPv6 literal; a port 1..65535; a path and query of
//   printable ASCII; at most url_bytes_max bytes. The dispatcher checks again before every
//   attempt (the policy may have changed since the endpoint was created).
// - at every connection, check_connect_address(): the address the name resolved to, from
//   libcurl's open-socket callback (webhooks/sender.cpp), so that a DNS answer that changes
//   between the check and the connection (DNS rebinding) cannot reach an address the policy
//   forbids. With `addresses_allowed` set, only addresses inside those networks are reached;
//   without it, any address except the special ones a server must not be made to call
//   (loopback, private, link-local and cloud metadata, shared, unspecified, multicast).

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace paycore::webhooks {

inline constexpr std::size_t url_bytes_max_default = 2048;
inline constexpr std::size_t host_bytes_max = 253;  // RFC 1035's longest name
/// A policy names at most this many hosts and networks (each a linear search per check).
inline constexpr std::size_t policy_entries_max = 64;

/// An IPv4 or IPv6 network ("127.0.0.0/8", "::1/128"; a bare address is a /32 or /128).
struct IpNetwork {
  bool is_v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // IPv4 in the first 4 bytes
  int prefix_bits = 0;                   // 0..32 (IPv4), 0..128 (IPv6)
};

/// Parses "a.b.c.d[/n]" or "x:y::z[/n]". kInvalidArgument names the text.
StatusOr<IpNetwork> parse_ip_network(std::string_view text);

struct EndpointPolicy {
  /// Hosts (lowercase, as written in the URL: "localhost", "127.0.0.1", "::1") to which plain
  /// http:// is accepted. Empty (the production default): https only.
  std::vector<std::string> http_hosts_allowed;
  /// When not empty, the only networks the dispatcher connects to. Empty: any address but the
  /// special ranges listed at the top of this file.
  std::vector<IpNetwork> addresses_allowed;
  std::size_t url_bytes_max = url_bytes_max_default;
};

/// A URL that passed check_endpoint_url, split and normalised (scheme and host lowercase).
struct EndpointUrl {
  bool is_https = true;
  std::string host;            // without the IPv6 brackets
  std::uint16_t port = 0;      // the default port (443, 80) when the URL names none
  std::string path_and_query;  // "/" when the URL has none
  /// What is handed to libcurl: "scheme://host[:port]/path?query", brackets kept for IPv6.
  std::string normalized;
};

/// Checks `url` against `policy`. Errors are kInvalidArgument with a message that starts with
/// one stable token, then says why:
///   url_too_long, url_scheme (not http(s)), url_http_not_allowed (http to a host not allowed),
///   url_userinfo, url_fragment, url_host (empty, too long, bad characters), url_port
///   (not 1..65535), url_path (a byte outside printable ASCII, or a backslash).
StatusOr<EndpointUrl> check_endpoint_url(std::string_view url, const EndpointPolicy& policy);

/// The send-time guard: ok when `address` (an AF_INET or AF_INET6 sockaddr) may be connected
/// to under `policy`; otherwise kInvalidArgument "address_not_allowed: <address>". An IPv4
/// address mapped into IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address.
Status check_connect_address(const sockaddr* address, socklen_t address_bytes,
                             const EndpointPolicy& policy);

}  // namespace paycore::webhooks
