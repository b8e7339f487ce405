// The endpoint URL policy: a small parser of exactly the URLs we accept (never a general URL
// parser: what it cannot read is refused), and the address check libcurl's open-socket callback
// calls before every connection.
#include "webhooks/endpoint_url.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "base/assert.hpp"

namespace paycore::webhooks {
namespace {

Status refuse(std::string_view token, std::string_view why) {
  std::string message(token);
  message += ": ";
  message += why;
  return Status::invalid_argument(std::move(message));
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

// Splits "host[:port]" or "[v6][:port]"; host comes back lowercase without brackets.
Status split_authority(std::string_view authority, bool is_https, EndpointUrl* url) {
  std::string_view host;
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return refuse("url_host", "unclosed '[' in the host");
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return refuse("url_host", "bytes after ']'");
    has_port = !after.empty();
    if (has_port) port = after.substr(1);
    in6_addr v6{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &v6) != 1) {
      return refuse("url_host", "not an IPv6 address inside '[...]'");
    }
  } else {
    const std::size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    has_port = colon != std::string_view::npos;
    if (has_port) port = authority.substr(colon + 1);
  }
  url->host = lowercase(host);
  if (url->host.empty()) return refuse("url_host", "no host");
  if (url->host.size() > host_bytes_max) return refuse("url_host", "host over 253 bytes");
  const bool bracketed = !authority.empty() && authority.front() == '[';
  if (!bracketed && !std::all_of(url->host.begin(), url->host.end(), is_name_char)) {
    return refuse("url_host", "a host is letters, digits, '-' and '.' (or an IP literal)");
  }
  url->port = is_https ? 443 : 80;
  if (!has_port) return Status::ok();
  if (port.empty() || port.size() > 5) return refuse("url_port", "the port is 1..65535");
  std::uint32_t value = 0;
  for (const char c : port) {
    if (c < '0' || c > '9') return refuse("url_port", "the port is 1..65535");
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (value == 0 || value > 65535) return refuse("url_port", "the port is 1..65535");
  url->port = static_cast<std::uint16_t>(value);
  return Status::ok();
}

Status check_path(std::string_view tail, EndpointUrl* url) {
  for (const char c : tail) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f || c == '\\') {
      return refuse("url_path", "the path and query are printable ASCII without '\\' or spaces");
    }
  }
  url->path_and_query = tail.empty() || tail.front() == '?' ? "/" : "";
  url->path_and_query += tail;
  return Status::ok();
}

// Scheme, then the pieces; the policy's http rule last (it needs the host).
Status parse_url(std::string_view text, const EndpointPolicy& policy, EndpointUrl* url) {
  if (text.size() > policy.url_bytes_max) {
    return refuse("url_too_long", "over " + std::to_string(policy.url_bytes_max) + " bytes");
  }
  const std::size_t separator = text.find("://");
  if (separator == std::string_view::npos) return refuse("url_scheme", "no scheme");
  const std::string scheme = lowercase(text.substr(0, separator));
  if (scheme != "https" && scheme != "http") return refuse("url_scheme", "only https (or http)");
  url->is_https = scheme == "https";
  const std::string_view rest = text.substr(separator + 3);
  if (rest.find('#') != std::string_view::npos) return refuse("url_fragment", "no '#fragment'");
  const std::size_t authority_end = std::min(rest.find_first_of("/?"), rest.size());
  const std::string_view authority = rest.substr(0, authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return refuse("url_userinfo", "no user or password in the URL");
  }
  if (authority.find('\\') != std::string_view::npos) return refuse("url_host", "'\\' in host");
  PAYCORE_RETURN_IF_ERROR(split_authority(authority, url->is_https, url));
  PAYCORE_RETURN_IF_ERROR(check_path(rest.substr(authority_end), url));
  if (!url->is_https) {
    const auto& hosts = policy.http_hosts_allowed;
    if (std::find(hosts.begin(), hosts.end(), url->host) == hosts.end()) {
      return refuse("url_http_not_allowed", "http:// is allowed only to configured hosts (" +
                                                url->host + " is not one); use https://");
    }
  }
  return Status::ok();
}

// ---- Addresses -----------------------------------------------------------------------------

struct Address {
  bool is_v6 = false;
  std::array<std::uint8_t, 16> bytes{};
};

bool network_contains(const IpNetwork& network, const Address& address) {
  if (network.is_v6 != address.is_v6) return false;
  const int whole_bytes = network.prefix_bits / 8;
  const int rest_bits = network.prefix_bits % 8;
  const auto whole = static_cast<std::size_t>(whole_bytes);
  if (std::memcmp(network.bytes.data(), address.bytes.data(), whole) != 0) return false;
  if (rest_bits == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest_bits));
  return (network.bytes[whole] & mask) == (address.bytes[whole] & mask);
}

// The addresses a server must not be made to call when no allow-list says otherwise.
const std::vector<IpNetwork>& special_networks() {
  static const std::vector<IpNetwork> networks = [] {
    std::vector<IpNetwork> out;
    for (const char* text :
         {"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
          "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/3",
          "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8"}) {
      StatusOr<IpNetwork> network = parse_ip_network(text);
      PAYCORE_ASSERT(network.is_ok());
      out.push_back(*network);
    }
    return out;
  }();
  return networks;
}

StatusOr<Address> address_of(const sockaddr* address, socklen_t address_bytes) {
  Address out;
  if (address->sa_family == AF_INET && address_bytes >= sizeof(sockaddr_in)) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    std::memcpy(out.bytes.data(), &v4->sin_addr, 4);
    return out;
  }
  if (address->sa_family != AF_INET6 || address_bytes < sizeof(sockaddr_in6)) {
    return refuse("address_not_allowed", "not an IPv4 or IPv6 address");
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
  if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {  // ::ffff:a.b.c.d is a.b.c.d
    std::memcpy(out.bytes.data(), reinterpret_cast<const std::uint8_t*>(&v6->sin6_addr) + 12, 4);
    return out;
  }
  out.is_v6 = true;
  std::memcpy(out.bytes.data(), &v6->sin6_addr, 16);
  return out;
}

std::string address_text(const Address& address) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(address.is_v6 ? AF_INET6 : AF_INET, address.bytes.data(), text, sizeof text);
  return text;
}

}  // namespace

StatusOr<IpNetwork> parse_ip_network(std::string_view text) {
  const std::size_t slash = text.find('/');
  const std::string address(text.substr(0, slash));
  IpNetwork network;
  if (inet_pton(AF_INET, address.c_str(), network.bytes.data()) == 1) {
    network.prefix_bits = 32;
  } else if (inet_pton(AF_INET6, address.c_str(), network.bytes.data()) == 1) {
    network.is_v6 = true;
    network.prefix_bits = 128;
  } else {
    return Status::invalid_argument("not an IP network: " + std::string(text));
  }
  if (slash == std::string_view::npos) return network;
  const std::string_view bits = text.substr(slash + 1);
  int value = 0;
  if (bits.empty() || bits.size() > 3) return Status::invalid_argument("bad prefix: " + address);
  for (const char c : bits) {
    if (c < '0' || c > '9') return Status::invalid_argument("bad prefix in " + std::string(text));
    value = value * 10 + (c - '0');
  }
  if (value > network.prefix_bits) {
    return Status::invalid_argument("prefix too long in " + std::string(text));
  }
  network.prefix_bits = value;
  return network;
}

StatusOr<EndpointUrl> check_endpoint_url(std::string_view url, const EndpointPolicy& policy) {
  PAYCORE_ASSERT_LE(policy.http_hosts_allowed.size(), policy_entries_max);
  EndpointUrl out;
  PAYCORE_RETURN_IF_ERROR(parse_url(url, policy, &out));
  const bool is_v6 = out.host.find(':') != std::string::npos;
  out.normalized = out.is_https ? "https://" : "http://";
  out.normalized += is_v6 ? "[" + out.host + "]" : out.host;
  out.normalized += ":" + std::to_string(out.port);
  out.normalized += out.path_and_query;
  PAYCORE_ASSERT(!out.path_and_query.empty());
  return out;
}

Status check_connect_address(const sockaddr* address, socklen_t address_bytes,
                             const EndpointPolicy& policy) {
  PAYCORE_ASSERT(address != nullptr);
  PAYCORE_ASSERT_LE(policy.addresses_allowed.size(), policy_entries_max);
  StatusOr<Address> parsed = address_of(address, address_bytes);
  if (!parsed.is_ok()) return parsed.status();
  const auto inside = [&](const IpNetwork& network) { return network_contains(network, *parsed); };
  if (!policy.addresses_allowed.empty()) {
    if (std::any_of(policy.addresses_allowed.begin(), policy.addresses_allowed.end(), inside)) {
      return Status::ok();
    }
    return refuse("address_not_allowed", address_text(*parsed) + " is outside addresses_allowed");
  }
  const std::vector<IpNetwork>& special = special_networks();
  if (std::any_of(special.begin(), special.end(), inside)) {
    return refuse("address_not_allowed",
                  address_text(*parsed) + " is a loopback, private or special address");
  }
  return Status::ok();
}

}  // namespace paycore::webhooks
