// Unit tests of the server's pure parts: route matching, command building, rendering, metrics
// exposition and the engine token layout.
#include <gtest/gtest.h>

#include "net/answer_token.hpp"
#include "net/metrics.hpp"
#include "net/render.hpp"
#include "net/routes.hpp"
#include "net/server.hpp"

namespace paycore::net {
namespace {

TEST(Routes, EveryRouteOfTheApiMatches) {
  struct Case {
    HttpMethod method;
    std::string_view path;
    Route route;
    std::string_view param;
  } cases[] = {
      {HttpMethod::get, "/healthz", Route::healthz, ""},
      {HttpMethod::get, "/readyz", Route::readyz, ""},
      {HttpMethod::get, "/metrics", Route::metrics, ""},
      {HttpMethod::post, "/v1/accounts", Route::account_open, ""},
      {HttpMethod::get, "/v1/accounts/acc-1", Route::account_get, "acc-1"},
      {HttpMethod::post, "/v1/accounts/acc-1/deposits", Route::account_deposit, "acc-1"},
      {HttpMethod::post, "/v1/payments", Route::payment_create, ""},
      {HttpMethod::post, "/v1/payments/batch", Route::payment_batch, ""},
      {HttpMethod::get, "/v1/payments/o-1", Route::payment_get, "o-1"},
      {HttpMethod::post, "/v1/payments/o-1/cancel", Route::payment_cancel, "o-1"},
      {HttpMethod::post, "/v1/payments/o-1/ship", Route::payment_ship, "o-1"},
      {HttpMethod::post, "/v1/payments/o-1/complete", Route::payment_complete, "o-1"},
      {HttpMethod::post, "/v1/payments/o-1/refunds", Route::payment_refund, "o-1"},
      {HttpMethod::post, "/v1/notify/alipay", Route::channel_notification, "alipay"},
      {HttpMethod::post, "/v1/admin/snapshot", Route::admin_snapshot, ""},
      {HttpMethod::post, "/v1/mandates", Route::mandate_create, ""},
      {HttpMethod::get, "/v1/mandates/md-1", Route::mandate_get, "md-1"},
      {HttpMethod::post, "/v1/mandates/md-1/revoke", Route::mandate_revoke, "md-1"},
  };
  for (const Case& c : cases) {
    const RouteMatch match = match_route(c.method, c.path);
    EXPECT_EQ(match.status, MatchStatus::ok) << c.path;
    EXPECT_EQ(match.route, c.route) << c.path;
    EXPECT_EQ(match.param, c.param) << c.path;
  }
}

TEST(Routes, UnknownPathsAreNotFound) {
  for (std::string_view path : {"/", "/v1", "/v1/", "/v2/payments", "/v1/accounts/", "/v1/accounts/a/",
                                "/v1/accounts//deposits", "/v1/payments/o/refund", "/v1/notify/",
                                "/v1/notify/a/b", "/v1/admin", "/healthz/", "/v1/payments/o/cancel/x",
                                "/v1/mandates/", "/v1/mandates/md/cancel", "/v1/mandates/md/revoke/x"}) {
    EXPECT_EQ(match_route(HttpMethod::post, path).status, MatchStatus::not_found) << path;
    EXPECT_EQ(match_route(HttpMethod::get, path).status, MatchStatus::not_found) << path;
  }
}

TEST(Routes, WrongMethodIsMethodNotAllowedWithAllow) {
  RouteMatch match = match_route(HttpMethod::get, "/v1/accounts");
  EXPECT_EQ(match.status, MatchStatus::method_not_allowed);
  EXPECT_EQ(match.allow, "POST");
  match = match_route(HttpMethod::put, "/v1/payments");
  EXPECT_EQ(match.status, MatchStatus::method_not_allowed);
  EXPECT_EQ(match.allow, "GET, HEAD, POST");
  match = match_route(HttpMethod::delete_, "/v1/payments/o-1/refunds");
  EXPECT_EQ(match.allow, "GET, HEAD, POST");
  EXPECT_EQ(match_route(HttpMethod::get, "/v1/payments").route, Route::payment_list);
  EXPECT_EQ(match_route(HttpMethod::get, "/v1/payments/o-1/refunds").route, Route::payment_refunds);
  match = match_route(HttpMethod::post, "/healthz");
  EXPECT_EQ(match.status, MatchStatus::method_not_allowed);
  EXPECT_EQ(match.allow, "GET");
  match = match_route(HttpMethod::delete_, "/v1/payments/o-1");
  EXPECT_EQ(match.status, MatchStatus::method_not_allowed);
  EXPECT_EQ(match.allow, "GET");
}

auth::Principal make_principal(auth::PrincipalKind kind, std::string_view id) {
  auth::Principal p;
  p.kind = kind;
  p.id = Id::of(id);
  return p;
}

TEST(Routes, OperatorRoutesAreNotFoundForMerchants) {
  const auth::Principal merchant = make_principal(auth::PrincipalKind::merchant, "m_001");
  const auth::Principal op = make_principal(auth::PrincipalKind::operator_, "operator");
  EXPECT_FALSE(principal_may_call(merchant, Route::account_open));
  EXPECT_FALSE(principal_may_call(merchant, Route::account_deposit));
  EXPECT_FALSE(principal_may_call(merchant, Route::admin_snapshot));
  EXPECT_FALSE(principal_may_call(merchant, Route::mandate_create));
  EXPECT_FALSE(principal_may_call(merchant, Route::mandate_revoke));
  EXPECT_TRUE(principal_may_call(merchant, Route::mandate_get));  // its own only: the core checks
  EXPECT_TRUE(principal_may_call(op, Route::mandate_get));
  EXPECT_TRUE(principal_may_call(op, Route::mandate_create));
  EXPECT_TRUE(principal_may_call(merchant, Route::account_get));
  EXPECT_TRUE(principal_may_call(op, Route::account_get));
  EXPECT_FALSE(principal_may_call(op, Route::payment_create));
}

TEST(Routes, BuildsCommandsWithPrincipalAndOperatorFlag) {
  JsonDecoder decoder;
  const auth::Principal merchant = make_principal(auth::PrincipalKind::merchant, "m_001");
  const auth::Principal op = make_principal(auth::PrincipalKind::operator_, "operator");
  Command command;
  auto error = build_command(match_route(HttpMethod::get, "/v1/accounts/m_001"), merchant, "", decoder, &command);
  ASSERT_FALSE(error);
  EXPECT_EQ(command.kind, CommandKind::get_account);
  EXPECT_FALSE(command.is_operator());
  EXPECT_EQ(command.account.view(), "m_001");
  error = build_command(match_route(HttpMethod::get, "/v1/accounts/m_001"), op, "", decoder, &command);
  ASSERT_FALSE(error);
  EXPECT_TRUE(command.is_operator());

  error = build_command(match_route(HttpMethod::post, "/v1/payments"), merchant,
                        R"({"request_id":"r1","order_id":"o1","amount":100,"currency":"CNY","channel":"balance","payer_account_id":"c1"})",
                        decoder, &command);
  ASSERT_FALSE(error);
  EXPECT_EQ(command.kind, CommandKind::create_payment);
  EXPECT_EQ(command.principal.view(), "m_001");
  EXPECT_EQ(command.account.view(), "c1");
  EXPECT_EQ(command.amount, 100);

  error = build_command(match_route(HttpMethod::post, "/v1/payments/o1/refunds"), merchant,
                        R"({"request_id":"r2","amount":1.5})", decoder, &command);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->status, 400);
  EXPECT_EQ(error->code, "invalid_amount");
  EXPECT_EQ(error->field, "amount");

  error = build_command(match_route(HttpMethod::get, "/v1/payments/bad%20id"), merchant, "", decoder, &command);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, "invalid_field");
  EXPECT_EQ(error->field, "order_id");
}

TEST(Routes, MandateCommandsCarryTheBodyAndPath) {
  JsonDecoder decoder;
  const auth::Principal op = make_principal(auth::PrincipalKind::operator_, "operator");
  Command command;
  auto error = build_command(
      match_route(HttpMethod::post, "/v1/mandates"), op,
      R"({"request_id":"r1","mandate_id":"md-1","payer_account_id":"c1","merchant_id":"m_001","amount_max":500,"expires_at":"2026-12-31T00:00:00Z","single_use":true})",
      decoder, &command);
  ASSERT_FALSE(error);
  EXPECT_EQ(command.kind, CommandKind::create_mandate);
  EXPECT_TRUE(command.is_operator());
  EXPECT_EQ(command.mandate_id.view(), "md-1");
  EXPECT_EQ(command.account.view(), "c1");
  EXPECT_EQ(command.merchant_id.view(), "m_001");
  EXPECT_EQ(command.amount, 500);
  EXPECT_EQ(command.expires_at_us, 1'798'675'200'000'000);  // 2026-12-31T00:00:00Z
  EXPECT_TRUE(command.is_single_use());

  error = build_command(match_route(HttpMethod::post, "/v1/mandates"), op,
                        R"({"request_id":"r1","mandate_id":"md-1","payer_account_id":"c1","merchant_id":"m_001","amount_max":500,"expires_at":null})",
                        decoder, &command);
  ASSERT_FALSE(error);
  EXPECT_EQ(command.expires_at_us, 0);  // null: never expires
  EXPECT_FALSE(command.is_single_use());

  error = build_command(match_route(HttpMethod::post, "/v1/mandates"), op,
                        R"({"request_id":"r1","mandate_id":"md-1","payer_account_id":"c1","merchant_id":"m_001","amount_max":500,"expires_at":"tomorrow"})",
                        decoder, &command);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, "invalid_field");
  EXPECT_EQ(error->field, "expires_at");

  error = build_command(match_route(HttpMethod::post, "/v1/mandates/md-1/revoke"), op, R"({"request_id":"r2"})",
                        decoder, &command);
  ASSERT_FALSE(error);
  EXPECT_EQ(command.kind, CommandKind::revoke_mandate);
  EXPECT_EQ(command.mandate_id.view(), "md-1");
  EXPECT_EQ(command.request_id.view(), "r2");

  error = build_command(match_route(HttpMethod::get, "/v1/mandates/bad%20id"), op, "", decoder, &command);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, "invalid_field");
  EXPECT_EQ(error->field, "mandate_id");
}

TEST(Routes, NotificationCommandCarriesTheBody) {
  JsonDecoder decoder;
  Command command;
  auto error = build_channel_notification_command(
      "alipay",
      R"({"channel_txn_id":"t1","merchant_id":"m_001","order_id":"o1","amount":5,"currency":"CNY","status":"SUCCESS","paid_at":"2026-11-26T05:19:14Z"})",
      decoder, &command);
  ASSERT_FALSE(error);
  EXPECT_EQ(command.kind, CommandKind::channel_notification);
  EXPECT_EQ(command.channel.view(), "alipay");
  EXPECT_EQ(command.principal.view(), "m_001");
  EXPECT_EQ(command.notification_status, NotificationStatus::success);
  EXPECT_GT(command.paid_at_us, 0);
  error = build_channel_notification_command("alipay", "{not json", decoder, &command);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, "invalid_json");
}

TEST(Render, PaymentJsonHasEveryFieldAndNulls) {
  OutBuffer out(1 << 16);
  JsonWriter json(out);
  PaymentView p;
  p.merchant_id = Id::of("m_001");
  p.order_id = Id::of("o1");
  p.request_id = Id::of("r1");
  p.channel = Id::of("alipay");
  p.amount = 1234;
  p.currency = *currency_from_code("CNY");
  p.status = PaymentStatus::pending;
  p.created_at_us = 1'795'670'354'123'456;
  p.updated_at_us = p.created_at_us;
  write_payment_json(json, p);
  ASSERT_TRUE(json.complete());
  EXPECT_EQ(out.view(),
            R"({"merchant_id":"m_001","order_id":"o1","request_id":"r1","channel":"alipay","payer_account_id":null,)"
            R"("amount":1234,"currency":"CNY","status":"PENDING","refunded_amount":0,"channel_txn_id":null,"mandate_id":null,)"
            R"("created_at":"2026-11-26T05:19:14.123456Z","updated_at":"2026-11-26T05:19:14.123456Z"})");
}

TEST(Render, BalancePaymentJsonNamesItsMandate) {
  OutBuffer out(1 << 16);
  JsonWriter json(out);
  PaymentView p;
  p.merchant_id = Id::of("m_001");
  p.order_id = Id::of("o1");
  p.request_id = Id::of("r1");
  p.channel = Id::of("balance");
  p.payer_account_id = Id::of("c1");
  p.mandate_id = Id::of("md-1");
  p.amount = 1234;
  p.currency = *currency_from_code("CNY");
  p.status = PaymentStatus::paid;
  write_payment_json(json, p);
  ASSERT_TRUE(json.complete());
  EXPECT_NE(out.view().find(R"("payer_account_id":"c1")"), std::string_view::npos) << out.view();
  EXPECT_NE(out.view().find(R"("mandate_id":"md-1")"), std::string_view::npos) << out.view();
}

TEST(Render, MandateJsonHasEveryFieldAndNullExpiry) {
  OutBuffer out(1 << 16);
  JsonWriter json(out);
  MandateView m;
  m.mandate_id = Id::of("md-1");
  m.payer_account_id = Id::of("c1");
  m.merchant_id = Id::of("m_001");
  m.amount_max = 50'000;
  m.currency = *currency_from_code("CNY");
  m.status = MandateStatus::active;
  m.created_at_us = 1'795'670'354'123'456;
  m.updated_at_us = m.created_at_us;
  write_mandate_json(json, m);
  ASSERT_TRUE(json.complete());
  EXPECT_EQ(out.view(),
            R"({"mandate_id":"md-1","payer_account_id":"c1","merchant_id":"m_001","amount_max":50000,)"
            R"("currency":"CNY","expires_at":null,"single_use":false,"status":"ACTIVE",)"
            R"("created_at":"2026-11-26T05:19:14.123456Z","updated_at":"2026-11-26T05:19:14.123456Z"})");
  OutBuffer later(1 << 16);
  JsonWriter expiring(later);
  m.expires_at_us = m.created_at_us + 1'000'000;
  m.single_use = true;
  m.status = MandateStatus::expired;
  write_mandate_json(expiring, m);
  ASSERT_TRUE(expiring.complete());
  EXPECT_NE(later.view().find(R"("expires_at":"2026-11-26T05:19:15.123456Z","single_use":true,"status":"EXPIRED")"),
            std::string_view::npos)
      << later.view();
}

TEST(Render, ErrorResultsCarryCodeAndField) {
  OutBuffer out(1 << 16);
  Result r;
  r.code = ResultCode::insufficient_funds;
  r.kind = CommandKind::create_payment;
  r.field = Field::amount;
  ASSERT_TRUE(write_result_body(out, Route::payment_create, r));
  EXPECT_EQ(result_status(r), 402);
  EXPECT_NE(out.view().find(R"("code":"insufficient_funds")"), std::string_view::npos);
  EXPECT_NE(out.view().find(R"("field":"amount")"), std::string_view::npos);
}

TEST(Render, NotificationSuccessIsCodeSuccess) {
  OutBuffer out(1 << 16);
  Result r;
  r.kind = CommandKind::channel_notification;
  r.notification = NotificationOutcome::anomaly;
  ASSERT_TRUE(write_result_body(out, Route::channel_notification, r));
  EXPECT_EQ(out.view(), R"({"code":"SUCCESS"})");
}

TEST(Metrics, ExpositionCountsRequestsByRouteAndStatus) {
  ServerMetrics a;
  ServerMetrics b;
  a.record(Route::payment_create, 201, 120);
  b.record(Route::payment_create, 201, 3000);
  b.record(Route::unmatched, 404, 10);
  EngineMetrics engine;
  engine.fsync_latency_us_log2[10].store(3);
  const ServerMetrics* threads[] = {&a, &b};
  OutBuffer out(1 << 20);
  ASSERT_TRUE(write_metrics(out, threads, engine, ServerGauges{}, 0));
  const std::string_view text = out.view();
  EXPECT_NE(text.find("paycore_http_requests_total{route=\"payment_create\",status=\"201\"} 2\n"), std::string_view::npos);
  EXPECT_NE(text.find("paycore_http_requests_total{route=\"other\",status=\"404\"} 1\n"), std::string_view::npos);
  EXPECT_NE(text.find("paycore_http_request_duration_seconds_count 3\n"), std::string_view::npos);
  EXPECT_NE(text.find("paycore_http_request_duration_seconds_bucket{le=\"0.000250\"} 2\n"), std::string_view::npos);
  EXPECT_NE(text.find("paycore_wal_fsync_duration_microseconds_bucket{le=\"1024\"} 3\n"), std::string_view::npos);
  EXPECT_NE(text.find("paycore_snapshot_age_seconds -1\n"), std::string_view::npos);
}

TEST(AnswerToken, RoundTripsEveryField) {
  const AnswerToken t = AnswerToken::for_batch_item((1u << 20) - 1, (1u << 24) - 1, 255, 4095);
  const AnswerToken back = AnswerToken::unpack(t.pack());
  EXPECT_EQ(back.connection, t.connection);
  EXPECT_EQ(back.generation, t.generation);
  EXPECT_EQ(back.slot, t.slot);
  EXPECT_EQ(back.item, t.item);
  const AnswerToken u =
      AnswerToken::unpack(AnswerToken::for_batch_item(7, 1u << 24, 3, 9).pack());  // generation wraps
  EXPECT_EQ(u.generation, 0u);
  EXPECT_EQ(u.connection, 7u);
}

}  // namespace
}  // namespace paycore::net
