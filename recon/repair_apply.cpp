#include "recon/repair_apply.hpp"

#include <simdjson.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <vector>

#include "auth/keys.hpp"
#include "auth/signing.hpp"
#include "recon/http_client.hpp"
#include "base/assert.hpp"
#include "core/id.hpp"

namespace paycore::recon {
namespace {

constexpr std::size_t repairs_count_max = 10'000'000;  // a file is checked whole before acting
constexpr std::size_t line_bytes_max = 64 * 1024;

// One line of repairs.jsonl, checked.
struct Repair {
  std::uint64_t line = 0;
  std::string repair_id, finding, reason, channel, merchant_id, order_id;
  bool needs_person = true;
  // A notification (needs_person false):
  std::string path, nonce, body, status;  // status: SUCCESS | FAILED
};

Status get_string(simdjson::dom::element doc, const char* key, std::string* out) {
  std::string_view value;
  if (doc[key].get_string().get(value) != simdjson::SUCCESS) return Status::invalid_argument(std::string("no string \"") + key + "\"");
  *out = std::string(value);
  return Status::ok();
}

// Checks one line; an error names what is wrong (the caller adds file and line).
Status parse_repair(simdjson::dom::parser& parser, const std::string& line, Repair* r) {
  simdjson::dom::element doc;
  const simdjson::padded_string padded(line);
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS || !doc.is_object()) return Status::invalid_argument("not a JSON object");
  for (auto [key, field] : {std::pair{"repair_id", &r->repair_id}, std::pair{"finding", &r->finding},
                            std::pair{"reason", &r->reason}, std::pair{"channel", &r->channel},
                            std::pair{"merchant_id", &r->merchant_id}, std::pair{"order_id", &r->order_id}}) {
    PAYCORE_RETURN_IF_ERROR(get_string(doc, key, field));
  }
  if (doc["needs_person"].get_bool().get(r->needs_person) != simdjson::SUCCESS) return Status::invalid_argument("no boolean \"needs_person\"");
  if (r->needs_person) return Status::ok();

  std::string method;
  PAYCORE_RETURN_IF_ERROR(get_string(doc, "method", &method));
  PAYCORE_RETURN_IF_ERROR(get_string(doc, "path", &r->path));
  if (method != "POST" || r->path != "/v1/notify/" + r->channel || !id_is_valid(r->channel)) {
    return Status::invalid_argument("a repair that is not POST /v1/notify/{its channel}: " + method + " " + r->path);
  }
  std::string_view nonce;
  if (doc["headers"]["X-Channel-Nonce"].get_string().get(nonce) != simdjson::SUCCESS ||
      !auth::nonce_is_valid(nonce)) {
    return Status::invalid_argument("no valid headers.X-Channel-Nonce");
  }
  r->nonce = std::string(nonce);
  simdjson::dom::object body;
  if (doc["body"].get_object().get(body) != simdjson::SUCCESS) return Status::invalid_argument("no \"body\" object");
  std::string_view status;
  if (body["status"].get_string().get(status) != simdjson::SUCCESS || (status != "SUCCESS" && status != "FAILED")) {
    return Status::invalid_argument("body.status is not SUCCESS or FAILED");
  }
  r->status = std::string(status);
  // Sent exactly as written in the file (compact): the signature covers these bytes.
  r->body = simdjson::minify(body);
  return Status::ok();
}

bool read_repairs(const std::string& path, std::vector<Repair>* repairs, std::ostream& err) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err << "paycore recon apply: cannot read " << path << "\n";
    return false;
  }
  simdjson::dom::parser parser;
  std::string line;
  std::uint64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty()) continue;
    Repair repair;
    repair.line = line_number;
    Status parsed;
    if (line.size() > line_bytes_max) parsed = Status::invalid_argument("line longer than 64 KiB");
    else if (repairs->size() >= repairs_count_max) parsed = Status::invalid_argument("more than 10M repairs");
    else parsed = parse_repair(parser, line, &repair);
    if (!parsed.is_ok()) {
      err << "paycore recon apply: " << path << ":" << line_number << ": " << parsed.message() << "\n";
      return false;
    }
    repairs->push_back(std::move(repair));
  }
  if (in.bad()) {
    err << "paycore recon apply: " << path << ": read error\n";
    return false;
  }
  return true;
}

using PrivateKeys = std::map<std::string, std::shared_ptr<EVP_PKEY>, std::less<>>;

bool load_channel_keys(const std::vector<Repair>& repairs, const std::string& dir, PrivateKeys* keys,
                       std::ostream& err) {
  for (const Repair& r : repairs) {
    if (r.needs_person || keys->contains(r.channel)) continue;
    const std::string path = dir + "/" + r.channel + ".private.pem";
    std::ifstream in(path, std::ios::binary);
    std::stringstream pem;
    pem << in.rdbuf();
    std::shared_ptr<EVP_PKEY> key = in ? auth::pem_private_key(pem.str()) : nullptr;
    if (!key) {
      err << "paycore recon apply: no private key for channel " << r.channel << " (" << path
          << ": missing or not a PEM private key)\n";
      return false;
    }
    keys->emplace(r.channel, std::move(key));
  }
  return true;
}

enum class Outcome : std::uint8_t { applied, already, not_applied, sent, failed };

struct Totals {
  std::uint64_t by_outcome[5] = {};
  std::uint64_t needs_person = 0;
};

class Applier {
 public:
  Applier(HttpClient& client, const auth::Keys& keys, const PrivateKeys& channel_keys)
      : client_(client), keys_(keys), channel_keys_(channel_keys), random_(std::random_device{}()) {}

  // Makes one repair; an error on an I/O failure (the server is gone: stop).
  Status apply(const Repair& r, Outcome* outcome, std::string* detail) {
    const auth::Principal* merchant = keys_.find_principal(r.merchant_id);
    if (merchant != nullptr && merchant->kind != auth::PrincipalKind::merchant) merchant = nullptr;
    std::string before, after;
    if (merchant != nullptr) PAYCORE_RETURN_IF_ERROR(read_status(*merchant, r.order_id, &before));
    const StatusOr<HttpResult> answer = notify(r);
    if (!answer.is_ok()) return answer.status();
    if (answer->status != 200 || answer->body.find("SUCCESS") == std::string::npos) {
      *outcome = Outcome::failed;
      *detail = "answered " + std::to_string(answer->status) + " " + answer->body;
      return Status::ok();
    }
    if (merchant == nullptr) {
      *outcome = Outcome::sent;
      *detail = "200 (merchant " + r.merchant_id + " is not in the keys file: not read back)";
      return Status::ok();
    }
    PAYCORE_RETURN_IF_ERROR(read_status(*merchant, r.order_id, &after));
    classify(r, before, after, outcome, detail);
    return Status::ok();
  }

 private:
  static bool settled_as_wanted(const Repair& r, const std::string& status) {
    if (r.status == "FAILED") return status == "FAILED";
    return status == "PAID" || status == "SHIPPED" || status == "COMPLETED" || status == "REFUNDED";
  }

  static void classify(const Repair& r, const std::string& before, const std::string& after, Outcome* outcome,
                       std::string* detail) {
    if (before == "PENDING" && settled_as_wanted(r, after)) {
      *outcome = Outcome::applied;
      *detail = "PENDING -> " + after;
    } else if (settled_as_wanted(r, before) && after == before) {
      *outcome = Outcome::already;
      *detail = after + " already (the notification was a repeat)";
    } else {
      *outcome = Outcome::not_applied;
      *detail = (before.empty() ? std::string("no such payment") : "payment " + before + " -> " + after) +
                ": the server kept the notification as an anomaly; needs a person";
    }
  }

  StatusOr<HttpResult> notify(const Repair& r) {
    const std::string timestamp = std::to_string(std::time(nullptr));
    const std::string signature =
        auth::sign_notification(channel_keys_.find(r.channel)->second.get(), timestamp, r.nonce, r.body);
    if (signature.empty()) {
      return Status::invalid_argument("signing with the " + r.channel + " key failed");
    }
    return client_.request("POST", r.path,
                           {{"Content-Type", "application/json"},
                            {"X-Channel-Timestamp", timestamp},
                            {"X-Channel-Nonce", r.nonce},
                            {"X-Channel-Signature", signature}},
                           r.body);
  }

  // The payment's status as its merchant reads it; "" when it does not exist (404).
  Status read_status(const auth::Principal& merchant, const std::string& order_id, std::string* status) {
    const std::string target = "/v1/payments/" + order_id;
    const std::string timestamp = std::to_string(std::time(nullptr));
    char nonce[40];
    std::snprintf(nonce, sizeof nonce, "ra%016llx%llu", static_cast<unsigned long long>(random_()),
                  static_cast<unsigned long long>(++nonces_));
    const auth::HexSignature signature =
        auth::sign_request(merchant.secret, auth::SignedFields{"GET", target, timestamp, nonce, ""});
    const StatusOr<HttpResult> answered = client_.request("GET", target,
                                                          {{"X-Merchant-Id", std::string(merchant.id.view())},
                                                           {"X-Timestamp", timestamp},
                                                           {"X-Nonce", nonce},
                                                           {"X-Signature", std::string(signature.view())}},
                                                          "");
    if (!answered.is_ok()) return answered.status();
    const HttpResult& answer = *answered;
    status->clear();
    if (answer.status == 404) return Status::ok();
    simdjson::dom::element doc;
    std::string_view value;
    const simdjson::padded_string padded(answer.body);
    if (answer.status != 200 || parser_.parse(padded).get(doc) != simdjson::SUCCESS ||
        doc["status"].get_string().get(value) != simdjson::SUCCESS) {
      return Status::io_error("GET " + target + " answered " + std::to_string(answer.status) + " " + answer.body);
    }
    *status = std::string(value);
    return Status::ok();
  }

  HttpClient& client_;
  const auth::Keys& keys_;
  const PrivateKeys& channel_keys_;
  std::mt19937_64 random_;
  std::uint64_t nonces_ = 0;
  simdjson::dom::parser parser_;
};

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::applied: return "applied     ";
    case Outcome::already: return "in place    ";
    case Outcome::not_applied: return "not applied ";
    case Outcome::sent: return "sent        ";
    case Outcome::failed: return "failed      ";
  }
  return "?";
}

void print_repair(std::ostream& out, const char* what, const Repair& r, const std::string& detail) {
  out << what << r.repair_id << " " << r.finding << "/" << r.reason << " " << r.channel << " " << r.merchant_id
      << "/" << r.order_id;
  if (!r.needs_person) out << " " << r.status;
  if (!detail.empty()) out << ": " << detail;
  out << "\n";
}

void print_totals(std::ostream& out, std::size_t repairs_count, const Totals& t) {
  const auto n = [&](Outcome o) { return t.by_outcome[static_cast<int>(o)]; };
  out << "repairs: " << repairs_count << "; notifications: applied " << n(Outcome::applied)
      << ", already in place " << n(Outcome::already) << ", not applied " << n(Outcome::not_applied)
      << ", sent (not read back) " << n(Outcome::sent) << ", failed " << n(Outcome::failed)
      << "; skipped, needs a person: " << t.needs_person << "\n";
}

}  // namespace

int apply_repairs(const ApplyOptions& options, std::ostream& out, std::ostream& err) {
  const StatusOr<HttpEndpoint> endpoint = parse_http_url(options.server_url);
  if (!endpoint.is_ok()) {
    err << "paycore recon apply: --server " << options.server_url << ": " << endpoint.status().message() << "\n";
    return 2;
  }
  const StatusOr<std::shared_ptr<const auth::Keys>> keys = auth::keys_load(options.keys_path);
  if (!keys.is_ok()) {
    err << "paycore recon apply: " << keys.status().message() << "\n";
    return 2;
  }
  std::vector<Repair> repairs;
  if (!read_repairs(options.repairs_path, &repairs, err)) return 2;
  const std::filesystem::path keys_file(options.keys_path);
  const std::string key_dir = !options.channel_keys_dir.empty() ? options.channel_keys_dir
                              : keys_file.has_parent_path() ? (keys_file.parent_path() / "private").string()
                                                            : std::string("private");
  PrivateKeys channel_keys;
  if (!load_channel_keys(repairs, key_dir, &channel_keys, err)) return 2;

  HttpClient client(*endpoint, options.timeout_ms);
  Applier applier(client, **keys, channel_keys);
  Totals totals;
  for (const Repair& r : repairs) {
    if (r.needs_person) {
      ++totals.needs_person;
      print_repair(out, "needs person ", r, "");
      continue;
    }
    if (options.dry_run) {
      print_repair(out, "would send  ", r, "POST " + r.path + " " + r.body);
      continue;
    }
    Outcome outcome = Outcome::failed;
    std::string detail;
    const Status applied = applier.apply(r, &outcome, &detail);
    if (!applied.is_ok()) {
      print_totals(out, repairs.size(), totals);
      err << "paycore recon apply: " << options.server_url << ": " << applied.message() << " (at " << options.repairs_path
          << ":" << r.line << "; the repairs before it were made, running the file again is safe)\n";
      return 2;
    }
    ++totals.by_outcome[static_cast<int>(outcome)];
    print_repair(out, outcome_name(outcome), r, detail);
  }
  print_totals(out, repairs.size(), totals);
  const bool all_in_place = totals.by_outcome[static_cast<int>(Outcome::not_applied)] == 0 &&
                            totals.by_outcome[static_cast<int>(Outcome::failed)] == 0;
  return all_in_place ? 0 : 1;
}

}  // namespace paycore::recon
