// The endpoint URL policy and the send-time address check (issue 15 "Safety").
#include "webhooks/endpoint_url.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

namespace paycore::webhooks {
namespace {

EndpointPolicy loopback_http() {
  EndpointPolicy policy;
  policy.http_hosts_allowed = {"127.0.0.1", "localhost"};
  return policy;
}

// The stable token the refusal starts with ("" when accepted).
std::string refusal(std::string_view url, const EndpointPolicy& policy = EndpointPolicy()) {
  StatusOr<EndpointUrl> checked = check_endpoint_url(url, policy);
  if (checked.is_ok()) return "";
  const std::string message = checked.status().message();
  return message.substr(0, message.find(':'));
}

TEST(EndpointUrl, HttpsIsAcceptedAndNormalized) {
  StatusOr<EndpointUrl> url = check_endpoint_url("HTTPS://Shop.Example.com/hooks?x=1", {});
  ASSERT_TRUE(url.is_ok()) << url.status().to_string();
  EXPECT_TRUE(url->is_https);
  EXPECT_EQ(url->host, "shop.example.com");
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->normalized, "https://shop.example.com:443/hooks?x=1");
  StatusOr<EndpointUrl> bare = check_endpoint_url("https://[2001:db8::1]:8443", {});
  ASSERT_TRUE(bare.is_ok());
  EXPECT_EQ(bare->normalized, "https://[2001:db8::1]:8443/");
}

TEST(EndpointUrl, HttpIsOnlyForAllowedHosts) {
  EXPECT_EQ(refusal("http://shop.example.com/hook"), "url_http_not_allowed");
  EXPECT_EQ(refusal("http://127.0.0.1:8080/hook"), "url_http_not_allowed");  // none allowed
  EXPECT_EQ(refusal("http://127.0.0.1:8080/hook", loopback_http()), "");
  EXPECT_EQ(refusal("http://LOCALHOST:8080/hook", loopback_http()), "");
  EXPECT_EQ(refusal("http://10.0.0.1/hook", loopback_http()), "url_http_not_allowed");
}

TEST(EndpointUrl, OtherSchemesAreRefused) {
  EXPECT_EQ(refusal("ftp://shop.example.com/"), "url_scheme");
  EXPECT_EQ(refusal("file:///etc/passwd"), "url_scheme");
  EXPECT_EQ(refusal("shop.example.com/hook"), "url_scheme");
}

TEST(EndpointUrl, UserinfoIsRefused) {
  EXPECT_EQ(refusal("https://user:pass@shop.example.com/"), "url_userinfo");
  EXPECT_EQ(refusal("https://shop.example.com@evil.example/"), "url_userinfo");
}

TEST(EndpointUrl, FragmentIsRefused) {
  EXPECT_EQ(refusal("https://shop.example.com/hook#part"), "url_fragment");
}

TEST(EndpointUrl, TooLongIsRefused) {
  const std::string url = "https://shop.example.com/" + std::string(url_bytes_max_default, 'a');
  EXPECT_EQ(refusal(url), "url_too_long");
}

TEST(EndpointUrl, PortOutOfRangeIsRefused) {
  EXPECT_EQ(refusal("https://shop.example.com:0/"), "url_port");
  EXPECT_EQ(refusal("https://shop.example.com:65536/"), "url_port");
  EXPECT_EQ(refusal("https://shop.example.com:/"), "url_port");
  EXPECT_EQ(refusal("https://shop.example.com:8a/"), "url_port");
  EXPECT_EQ(refusal("https://shop.example.com:65535/"), "");
}

TEST(EndpointUrl, BadHostIsRefused) {
  EXPECT_EQ(refusal("https:///hook"), "url_host");
  EXPECT_EQ(refusal("https://shop_example.com/"), "url_host");
  EXPECT_EQ(refusal("https://sh%6fp.example.com/"), "url_host");
  EXPECT_EQ(refusal("https://[::1/"), "url_host");
  EXPECT_EQ(refusal("https://[not-v6]/"), "url_host");
  EXPECT_EQ(refusal("https://" + std::string(254, 'a') + "/"), "url_host");
}

TEST(EndpointUrl, BadPathIsRefused) {
  EXPECT_EQ(refusal("https://shop.example.com/a b"), "url_path");
  EXPECT_EQ(refusal("https://shop.example.com/a\\b"), "url_path");
  EXPECT_EQ(refusal("https://shop.example.com/a\r\nX: y"), "url_path");
}

sockaddr_in v4(const char* text) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  inet_pton(AF_INET, text, &address.sin_addr);
  return address;
}

sockaddr_in6 v6(const char* text) {
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  inet_pton(AF_INET6, text, &address.sin6_addr);
  return address;
}

template <typename A>
bool allowed(const A& address, const EndpointPolicy& policy) {
  return check_connect_address(reinterpret_cast<const sockaddr*>(&address), sizeof address, policy)
      .is_ok();
}

TEST(ConnectAddress, AllowListAdmitsOnlyItsNetworks) {
  EndpointPolicy policy;
  policy.addresses_allowed = {*parse_ip_network("127.0.0.0/8"), *parse_ip_network("::1")};
  EXPECT_TRUE(allowed(v4("127.0.0.1"), policy));
  EXPECT_TRUE(allowed(v4("127.200.0.9"), policy));
  EXPECT_TRUE(allowed(v6("::1"), policy));
  EXPECT_FALSE(allowed(v4("10.0.0.1"), policy));
  EXPECT_FALSE(allowed(v4("93.184.216.34"), policy));  // public, but not listed
  EXPECT_FALSE(allowed(v6("2001:db8::1"), policy));
}

TEST(ConnectAddress, WithoutAllowListSpecialAddressesAreRefused) {
  const EndpointPolicy policy;
  for (const char* text : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                           "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
                           "255.255.255.255"}) {
    EXPECT_FALSE(allowed(v4(text), policy)) << text;
  }
  for (const char* text : {"::1", "::", "fe80::1", "fd00::1", "ff02::1"}) {
    EXPECT_FALSE(allowed(v6(text), policy)) << text;
  }
  EXPECT_TRUE(allowed(v4("93.184.216.34"), policy));
  EXPECT_TRUE(allowed(v4("172.32.0.1"), policy));
  EXPECT_TRUE(allowed(v6("2606:4700::1"), policy));
}

TEST(ConnectAddress, MappedIpv4IsJudgedAsIpv4) {
  EXPECT_FALSE(allowed(v6("::ffff:127.0.0.1"), EndpointPolicy()));
  EndpointPolicy policy;
  policy.addresses_allowed = {*parse_ip_network("127.0.0.0/8")};
  EXPECT_TRUE(allowed(v6("::ffff:127.0.0.1"), policy));
}

TEST(ConnectAddress, NetworksParse) {
  EXPECT_TRUE(parse_ip_network("10.0.0.0/8").is_ok());
  EXPECT_TRUE(parse_ip_network("fe80::/10").is_ok());
  EXPECT_FALSE(parse_ip_network("10.0.0.0/33").is_ok());
  EXPECT_FALSE(parse_ip_network("10.0.0/8").is_ok());
  EXPECT_FALSE(parse_ip_network("10.0.0.0/").is_ok());
  EXPECT_FALSE(parse_ip_network("localhost").is_ok());
}

}  // namespace
}  // namespace paycore::webhooks
