#include "recon/gen_state.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <queue>
#include <vector>

#include "recon/statement.hpp"
#include "recon/text.hpp"
#include "core/apply.hpp"
#include "base/assert.hpp"
#include "core/snapshot.hpp"

namespace paycore::recon {
namespace {

constexpr std::uint32_t ppm_total = 1'000'000;
constexpr std::int64_t us_per_second = 1'000'000;
constexpr std::int64_t notify_after_us = 5 * us_per_second;
constexpr std::int64_t cancel_after_us = 10 * us_per_second;
constexpr std::int64_t ship_after_us = 30 * 60 * us_per_second;
constexpr std::int64_t complete_after_us = 50 * 60 * us_per_second;
constexpr std::int64_t refund_after_us = 3600 * us_per_second;
constexpr Amount customer_deposit = 1'000'000'000'000;  // enough for every balance payment
static_assert(complete_after_us > ship_after_us && refund_after_us > complete_after_us);

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// How the local side of a local_not_paid / status_mismatch payment is left.
enum class Variant : std::uint8_t { plain, pending, cancelled, failed };

// Everything about payment `p`, from (seed, p) alone: the command pass, the statement pass
// (another order) and the expectation agree.
struct Plan {
  FindingClass finding_class = FindingClass::matched;
  Variant variant = Variant::plain;
  bool balance = false;
  bool late = false;  // in the last half-tolerance before the cut-off
  bool refund = false;
  bool refund_full = false;
  bool refund_missing_channel = false;
  bool refund_missing_local = false;
  bool ship = false;
  bool complete = false;
  std::uint32_t channel = 0;  // index into options.channels
  std::uint32_t merchant = 0;
  std::uint32_t customer = 0;
  Amount amount = 0;
  std::int64_t created_at_us = 0;

  bool repairable() const { return variant == Variant::pending; }
  bool has_local_payment() const {
    return finding_class != FindingClass::missing_local && finding_class != FindingClass::local_anomaly;
  }
  // Settled by a SUCCESS notification in the command pass.
  bool notified_paid() const {
    return has_local_payment() && !balance && variant == Variant::plain &&
           finding_class != FindingClass::local_not_paid;
  }
};

class Planner {
 public:
  explicit Planner(const StateGenOptions& options) : options_(options) {
    std::uint64_t sum = 0;
    for (std::size_t c = 1; c < finding_class_count; ++c) sum += options.class_ppm[c];
    PAYCORE_ASSERT(sum <= ppm_total);
    PAYCORE_ASSERT(!options.channels.empty());
    PAYCORE_ASSERT_GT(options.merchants_count, 0u);
    PAYCORE_ASSERT_GT(options.customers_count, 0u);
    const std::int64_t regular_span_us = options.cutoff_us() - options.tolerance_seconds * us_per_second -
                                         options.start_us - 2 * refund_after_us;
    PAYCORE_ASSERT_GT(regular_span_us, 0);
    PAYCORE_ASSERT_GE(options.tolerance_seconds, 60);
    step_us_ = regular_span_us / static_cast<std::int64_t>(options.payments_count + 1);
    PAYCORE_ASSERT(step_us_ >= 1);
  }

  Plan plan(std::uint64_t p) const {
    Plan plan;
    const std::uint64_t r1 = splitmix64(options_.seed * 0x632be59bd9b4e019ULL + p);
    const std::uint64_t r2 = splitmix64(r1);
    const std::uint64_t r3 = splitmix64(r2);
    plan.balance = r2 % ppm_total < options_.balance_ppm;
    if (!plan.balance) plan.finding_class = pick_class(static_cast<std::uint32_t>(r1 % ppm_total));
    const bool half = (r3 >> 40) % 2 == 0;
    if (plan.finding_class == FindingClass::local_not_paid) {
      plan.variant = half ? Variant::pending : ((r3 >> 41) % 2 == 0 ? Variant::cancelled : Variant::failed);
    } else if (plan.finding_class == FindingClass::status_mismatch && half) {
      plan.variant = Variant::pending;
    }
    plan.late = plan.finding_class == FindingClass::within_cutoff || plan.variant == Variant::pending;
    if (plan.finding_class == FindingClass::matched && !plan.balance) {
      const auto refund_pick = static_cast<std::uint32_t>(r3 % ppm_total);
      const std::uint32_t a = options_.refund_ppm;
      const std::uint32_t b = a + options_.refund_missing_channel_ppm;
      const std::uint32_t c = b + options_.refund_missing_local_ppm;
      plan.refund = refund_pick < a;
      plan.refund_full = plan.refund && (r3 >> 42) % 5 == 0;
      plan.refund_missing_channel = refund_pick >= a && refund_pick < b;
      plan.refund_missing_local = refund_pick >= b && refund_pick < c;
      plan.ship = (r3 >> 20) % ppm_total < options_.ship_ppm;
      plan.complete = plan.ship && (r3 >> 43) % 2 == 0;
    }
    if (plan.balance) plan.refund = (r3 % ppm_total) < options_.refund_ppm;
    plan.channel = static_cast<std::uint32_t>((r2 >> 20) % options_.channels.size());
    plan.merchant = static_cast<std::uint32_t>(p % options_.merchants_count);
    plan.customer = static_cast<std::uint32_t>((r2 >> 32) % options_.customers_count);
    plan.amount = static_cast<Amount>(100 + (r2 >> 8) % 100'000);
    const std::int64_t late_at_us = options_.cutoff_us() - options_.tolerance_seconds * us_per_second / 2;
    plan.created_at_us = plan.late ? late_at_us + static_cast<std::int64_t>(p)
                                   : options_.start_us + 60 * us_per_second +
                                         static_cast<std::int64_t>(p) * step_us_;
    return plan;
  }

 private:
  FindingClass pick_class(std::uint32_t pick) const {
    for (std::size_t c = 1; c < finding_class_count; ++c) {
      if (pick < options_.class_ppm[c]) return static_cast<FindingClass>(c);
      pick -= options_.class_ppm[c];
    }
    return FindingClass::matched;
  }

  const StateGenOptions& options_;
  std::int64_t step_us_ = 1;
};

// Ids: fixed formats, so the statement pass rebuilds them from p.
struct Ids {
  // Room for any uint64 (20 digits) in every format.
  char merchant[24], customer[24], order[40], request[40], refund[40], refund_unknown[40], txn[40],
      refund_txn[40];
  Ids(const Plan& plan, std::uint64_t p) {
    const auto n = static_cast<unsigned long long>(p);
    std::snprintf(merchant, sizeof merchant, "m_%03u", plan.merchant + 1);
    std::snprintf(customer, sizeof customer, "c_%04u", plan.customer + 1);
    std::snprintf(order, sizeof order, "o-%010llu", n);
    std::snprintf(request, sizeof request, "rq-%010llu", n);
    std::snprintf(refund, sizeof refund, "rq-%010llu-r", n);
    std::snprintf(refund_unknown, sizeof refund_unknown, "rq-%010llu-x", n);
    std::snprintf(txn, sizeof txn, "2026%012llu", n);
    std::snprintf(refund_txn, sizeof refund_txn, "2026%012llu-r", n);
  }
};

Amount refund_amount(const Plan& plan) { return plan.refund_full ? plan.amount : plan.amount / 3 + 1; }

// ---- The command pass ----------------------------------------------------------------------

enum class Step : std::uint8_t { notify_success, notify_failed, cancel, ship, complete, refund };

struct Deferred {
  std::int64_t at_us;
  std::uint64_t p;
  Step step;
  bool operator>(const Deferred& o) const {
    if (at_us != o.at_us) return at_us > o.at_us;
    if (p != o.p) return p > o.p;
    return static_cast<int>(step) > static_cast<int>(o.step);
  }
};

class Builder {
 public:
  Builder(const StateGenOptions& options, const Planner& planner, State* state)
      : options_(options), planner_(planner), state_(*state) {}

  void setup() {
    for (const std::string& channel : options_.channels) {
      Command c;
      c.kind = CommandKind::add_channel;
      c.channel = Id::of(channel);
      run(c, options_.start_us);
    }
    for (std::uint32_t i = 0; i < options_.customers_count; ++i) {
      char id[24];
      std::snprintf(id, sizeof id, "c_%04u", i + 1);
      Command open = operator_command(CommandKind::open_account, std::string("open-") + id);
      open.account = Id::of(id);
      open.account_kind = AccountKind::customer;
      open.currency = cny_;
      run(open, options_.start_us);
      Command deposit = operator_command(CommandKind::deposit, std::string("dep-") + id);
      deposit.account = Id::of(id);
      deposit.amount = customer_deposit;
      deposit.currency = cny_;
      run(deposit, options_.start_us);
      grant_mandates(id);
    }
  }

  // Payments of one part of the timeline (regular or late), in creation order.
  void pass(bool late) {
    for (std::uint64_t p = 0; p < options_.payments_count; ++p) {
      const Plan plan = planner_.plan(p);
      if (plan.late != late) continue;
      drain(plan.created_at_us);
      create(plan, p);
    }
    drain(INT64_MAX);
  }

  std::uint64_t commands_count() const { return commands_count_; }
  std::int64_t last_us() const { return last_us_; }

 private:
  Command operator_command(CommandKind kind, const std::string& request_id) const {
    Command c;
    c.kind = kind;
    c.flags = command_flag_operator;
    c.principal = Id::of("operator");
    c.request_id = Id::of(request_id);
    return c;
  }

  // A mandate of `customer` for every merchant: balance payments need one (docs/api.md "Mandates").
  void grant_mandates(const char* customer) {
    for (std::uint32_t m = 0; m < options_.merchants_count; ++m) {
      char merchant[24], mandate[48];
      std::snprintf(merchant, sizeof merchant, "m_%03u", m + 1);
      std::snprintf(mandate, sizeof mandate, "md-%s-%s", customer, merchant);
      Command c = operator_command(CommandKind::create_mandate, mandate);
      c.mandate_id = Id::of(mandate);
      c.account = Id::of(customer);
      c.merchant_id = Id::of(merchant);
      c.amount = customer_deposit;
      run(c, options_.start_us);
    }
  }

  void run(Command c, std::int64_t at_us) {
    c.timestamp_us = std::max(at_us, last_us_ + 1);
    last_us_ = c.timestamp_us;
    const Result r = apply(state_, c);
    PAYCORE_ASSERT(r.code == ResultCode::ok);  // every planned command is accepted
    if (r.mutated) ++commands_count_;
  }

  void create(const Plan& plan, std::uint64_t p) {
    const Ids ids(plan, p);
    const std::int64_t t = plan.created_at_us;
    if (plan.finding_class == FindingClass::missing_local) return;  // only the channel has it
    if (plan.finding_class == FindingClass::local_anomaly) {
      run(notification(plan, ids, NotificationStatus::success), t);  // an order we never had
      return;
    }
    Command c;
    c.kind = CommandKind::create_payment;
    c.principal = Id::of(ids.merchant);
    c.request_id = Id::of(ids.request);
    c.order_id = Id::of(ids.order);
    c.amount = plan.amount;
    c.currency = cny_;
    c.channel = Id::of(plan.balance ? std::string_view(channel_name_balance) : options_.channels[plan.channel]);
    if (plan.balance) c.account = Id::of(ids.customer);
    run(c, t);
    if (plan.notified_paid()) defer(t + notify_after_us, p, Step::notify_success);
    if (plan.variant == Variant::failed) defer(t + notify_after_us, p, Step::notify_failed);
    if (plan.variant == Variant::cancelled) defer(t + cancel_after_us, p, Step::cancel);
    if (plan.ship) defer(t + ship_after_us, p, Step::ship);
    if (plan.complete) defer(t + complete_after_us, p, Step::complete);
    if (plan.refund || plan.refund_missing_channel) defer(t + refund_after_us, p, Step::refund);
  }

  Command notification(const Plan& plan, const Ids& ids, NotificationStatus status) const {
    Command c;
    c.kind = CommandKind::channel_notification;
    c.channel = Id::of(options_.channels[plan.channel]);
    c.channel_txn_id = Id::of(ids.txn);
    c.principal = Id::of(ids.merchant);
    c.order_id = Id::of(ids.order);
    c.amount = plan.amount;
    c.currency = cny_;
    c.notification_status = status;
    c.paid_at_us = plan.created_at_us + notify_after_us;  // paid_at, as on the statement row
    return c;
  }

  void defer(std::int64_t at_us, std::uint64_t p, Step step) { deferred_.push({at_us, p, step}); }

  void drain(std::int64_t before_us) {
    while (!deferred_.empty() && deferred_.top().at_us < before_us) {
      const Deferred d = deferred_.top();
      deferred_.pop();
      run_step(d);
    }
  }

  void run_step(const Deferred& d) {
    const Plan plan = planner_.plan(d.p);
    const Ids ids(plan, d.p);
    if (d.step == Step::notify_success || d.step == Step::notify_failed) {
      run(notification(plan, ids, d.step == Step::notify_success ? NotificationStatus::success : NotificationStatus::failed),
          d.at_us);
      return;
    }
    Command c;
    c.principal = Id::of(ids.merchant);
    c.order_id = Id::of(ids.order);
    switch (d.step) {
      case Step::cancel:
        c.kind = CommandKind::cancel_payment;
        c.request_id = Id::of(std::string(ids.request) + "-c");
        break;
      case Step::ship:
        c.kind = CommandKind::ship_payment;
        c.request_id = Id::of(std::string(ids.request) + "-s");
        break;
      case Step::complete:
        c.kind = CommandKind::complete_payment;
        c.request_id = Id::of(std::string(ids.request) + "-d");
        break;
      default:
        c.kind = CommandKind::refund_payment;
        c.request_id = Id::of(ids.refund);
        c.amount = refund_amount(plan);
        break;
    }
    run(c, d.at_us);
  }

  const StateGenOptions& options_;
  const Planner& planner_;
  State& state_;
  const Currency cny_ = *currency_from_code("CNY");
  std::priority_queue<Deferred, std::vector<Deferred>, std::greater<>> deferred_;
  std::int64_t last_us_ = 0;
  std::uint64_t commands_count_ = 0;
};

// ---- The statement pass --------------------------------------------------------------------

void add_rows(const StateGenOptions& options, const Plan& plan, std::uint64_t p, StatementCsvWriter* w) {
  if (plan.balance) return;
  const Ids ids(plan, p);
  const std::int64_t paid_at_us = plan.created_at_us + notify_after_us;
  const auto payment = [&](Amount amount, std::string_view currency, std::string_view status) {
    w->row(options.channels[plan.channel], ids.txn, ids.merchant, ids.order, false, "", amount, currency, status,
           paid_at_us);
  };
  switch (plan.finding_class) {
    case FindingClass::missing_channel:
    case FindingClass::within_cutoff:
    case FindingClass::local_anomaly:
      return;
    case FindingClass::amount_mismatch: payment(plan.amount + 1, "CNY", "SUCCESS"); return;
    case FindingClass::currency_mismatch: payment(plan.amount, "USD", "SUCCESS"); return;
    case FindingClass::status_mismatch: payment(plan.amount, "CNY", "FAILED"); return;
    case FindingClass::duplicate_channel_row:
      payment(plan.amount, "CNY", "SUCCESS");
      payment(plan.amount, "CNY", "SUCCESS");
      return;
    case FindingClass::matched:
    case FindingClass::missing_local:
    case FindingClass::local_not_paid:
      payment(plan.amount, "CNY", "SUCCESS");
      break;
  }
  const std::int64_t refund_at_us = plan.created_at_us + refund_after_us;
  if (plan.refund) {
    w->row(options.channels[plan.channel], ids.refund_txn, ids.merchant, ids.order, true, ids.refund,
           refund_amount(plan), "CNY", "SUCCESS", refund_at_us);
  }
  if (plan.refund_missing_local) {
    w->row(options.channels[plan.channel], ids.refund_txn, ids.merchant, ids.order, true, ids.refund_unknown,
           refund_amount(plan), "CNY", "SUCCESS", refund_at_us);
  }
}

void expect(const Plan& plan, StateGenExpected* e) {
  const auto count = [&](FindingClass c) { ++e->counts[static_cast<std::size_t>(c)]; };
  if (plan.has_local_payment()) ++e->payments_count;
  if (plan.finding_class == FindingClass::local_anomaly) ++e->anomalies_count;
  if (plan.refund || plan.refund_missing_channel) ++e->refunds_count;
  if (plan.balance) return;
  count(plan.finding_class);
  if (plan.finding_class == FindingClass::duplicate_channel_row) count(FindingClass::matched);
  if (plan.repairable()) ++e->repairable_count;
  if (plan.refund) count(FindingClass::matched);
  if (plan.refund_missing_channel) count(FindingClass::missing_channel);
  if (plan.refund_missing_local) count(FindingClass::missing_local);
}

// A permutation of [0, n): statement rows come in another order than the local records.
std::uint64_t permuted(std::uint64_t q, std::uint64_t n) {
  constexpr std::uint64_t stride = 2'654'435'761ULL;  // prime, so coprime with any n below it
  return n % stride == 0 ? q : (q * stride) % n;
}

Status write_snapshot_file(const State& state, std::uint64_t lsn, std::int64_t created_at_us,
                           const std::filesystem::path& path) {
  const std::string temp = path.string() + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error(temp + ": " + std::strerror(errno));
  std::vector<std::byte> buffer(std::size_t{1} << 20);
  FdSink sink(fd, buffer);
  const bool written = write_snapshot(state, lsn, created_at_us, sink) && sink.flush() && ::fsync(fd) == 0;
  const int saved = sink.error() != 0 ? sink.error() : errno;
  ::close(fd);
  if (!written || ::rename(temp.c_str(), path.c_str()) != 0) {
    return Status::io_error(path.string() + ": " + std::strerror(written ? errno : saved));
  }
  return Status::ok();
}

// archive_generated into out_dir/archive, a new store (an old one would hold other payments).
Status make_tiered(const StateGenOptions& options, const std::filesystem::path& out_dir, State* state,
                   StateGenExpected* expected) {
  const std::filesystem::path archive_dir = out_dir / "archive";
  std::error_code ec;
  if (std::filesystem::exists(archive_dir, ec)) {
    return Status::invalid_argument(archive_dir.string() + " exists: gen writes a new archive (remove it first)");
  }
  const StatusOr<GenTierResult> tier = archive_generated(options, options.archive_percent, archive_dir.string(),
                                                         state, expected->commands_count,
                                                         expected->last_timestamp_us);
  if (!tier.is_ok()) return tier.status();
  expected->commands_count = tier->commands_count;
  expected->last_timestamp_us = tier->last_timestamp_us;
  expected->archived_count = tier->archived_count;
  expected->evicted_count = tier->evicted_count;
  return Status::ok();
}

}  // namespace

StateGenExpected generate_state(const StateGenOptions& options, State* state, std::ostream& statement_csv) {
  PAYCORE_ASSERT_GT(options.payments_count, 0u);
  PAYCORE_ASSERT_LT(options.payments_count, 100'000'000ULL);
  PAYCORE_ASSERT_EQ(state->payments.size(), 0u);
  PAYCORE_ASSERT_EQ(state->accounts.size(), 0u);
  const Planner planner(options);
  StateGenExpected expected;
  Builder builder(options, planner, state);
  builder.setup();
  builder.pass(false);
  builder.pass(true);
  expected.commands_count = builder.commands_count();
  expected.last_timestamp_us = builder.last_us();

  StatementCsvWriter writer(statement_csv);
  for (std::uint64_t q = 0; q < options.payments_count; ++q) {
    const std::uint64_t p = permuted(q, options.payments_count);
    const Plan plan = planner.plan(p);
    add_rows(options, plan, p, &writer);
    expect(plan, &expected);
  }
  writer.flush();
  expected.statement_rows_count = writer.rows_count();
  expected.counts_after_repairs = expected.counts;
  auto& after = expected.counts_after_repairs;
  after[static_cast<std::size_t>(FindingClass::matched)] += expected.repairable_count;
  for (std::uint64_t p = 0; p < options.payments_count; ++p) {
    const Plan plan = planner.plan(p);
    if (plan.repairable()) --after[static_cast<std::size_t>(plan.finding_class)];
  }
  PAYCORE_ASSERT(state->payments.size() == expected.payments_count);
  PAYCORE_ASSERT(state->refunds.size() == expected.refunds_count);
  PAYCORE_ASSERT(state->anomalies.size() == expected.anomalies_count);
  const bool balanced = state->balances_sum_to_zero_slow();
  PAYCORE_ASSERT(balanced);
  return expected;
}

std::string expected_json(const StateGenOptions& options, const StateGenExpected& e,
                          const std::filesystem::path& out_dir) {
  const auto counts = [](const std::array<std::uint64_t, finding_class_count>& c) {
    std::string json = "{";
    for (std::size_t i = 0; i < finding_class_count; ++i) {
      json += i == 0 ? "\"" : ", \"";
      json += finding_class_name(static_cast<FindingClass>(i));
      json += "\": " + std::to_string(c[i]);
    }
    return json + "}";
  };
  const std::string cutoff = format_rfc3339_us(options.cutoff_us());
  std::string json = "{\n  \"payments_requested\": " + std::to_string(options.payments_count);
  json += ",\n  \"seed\": " + std::to_string(options.seed);
  json += ",\n  \"start\": \"" + format_rfc3339_us(options.start_us) + "\"";
  json += ",\n  \"cutoff\": \"" + cutoff + "\"";
  json += ",\n  \"tolerance_seconds\": " + std::to_string(options.tolerance_seconds);
  json += ",\n  \"snapshot_lsn\": " + std::to_string(e.commands_count);
  json += ",\n  \"last_command_at\": \"" + format_rfc3339_us(e.last_timestamp_us) + "\"";
  json += ",\n  \"local_payments\": " + std::to_string(e.payments_count);
  json += ",\n  \"local_refunds\": " + std::to_string(e.refunds_count);
  json += ",\n  \"local_anomalies\": " + std::to_string(e.anomalies_count);
  if (options.archive_percent > 0) {
    json += ",\n  \"archived_payments\": " + std::to_string(e.archived_count);
    json += ",\n  \"archived_payments_not_in_snapshot\": " + std::to_string(e.evicted_count);
  }
  json += ",\n  \"statement_rows\": " + std::to_string(e.statement_rows_count);
  json += ",\n  \"repairable\": " + std::to_string(e.repairable_count);
  json += ",\n  \"counts\": " + counts(e.counts);
  json += ",\n  \"counts_after_repairs\": " + counts(e.counts_after_repairs);
  std::string command = "paycore recon --snapshot " + (out_dir / "snapshot.snap").string() + " --statement " +
                        (out_dir / "statement.csv").string() + " --out " + (out_dir / "report").string() +
                        " --cutoff " + cutoff + " --tolerance-seconds " + std::to_string(options.tolerance_seconds);
  if (options.archive_percent > 0) {
    command += " --archive " + (out_dir / "archive").string() + " --since " + format_rfc3339_us(options.start_us);
  }
  json += ",\n  \"command\": ";
  append_json_string(json, command);
  json += "\n}\n";
  return json;
}

Status generate_state_files(const StateGenOptions& options, const std::filesystem::path& out_dir,
                            StateGenExpected* expected) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return Status::io_error(out_dir.string() + ": " + ec.message());
  StateConfig config;
  config.payments_expected = options.payments_count;
  config.idempotency_expected = options.payments_count;
  config.accounts_expected = options.merchants_count + options.customers_count + 16;
  auto state = std::make_unique<State>(config);
  {
    std::ofstream csv(out_dir / "statement.csv", std::ios::binary | std::ios::trunc);
    if (!csv) return Status::io_error((out_dir / "statement.csv").string() + ": cannot create");
    *expected = generate_state(options, state.get(), csv);
    csv.flush();
    if (!csv) return Status::io_error((out_dir / "statement.csv").string() + ": write failed");
  }
  if (options.archive_percent > 0) PAYCORE_RETURN_IF_ERROR(make_tiered(options, out_dir, state.get(), expected));
  PAYCORE_RETURN_IF_ERROR(write_snapshot_file(*state, expected->commands_count,
                                              expected->last_timestamp_us, out_dir / "snapshot.snap"));
  std::ofstream json(out_dir / "expected.json", std::ios::binary | std::ios::trunc);
  json << expected_json(options, *expected, out_dir);
  json.flush();
  if (!json) return Status::io_error((out_dir / "expected.json").string() + ": write failed");
  return Status::ok();
}

}  // namespace paycore::recon
