#pragma once
// `paycore recon apply REPAIRS --server URL --keys FILE`: makes the automatically repairable
// entries of a repairs.jsonl through the HTTP API, and only those.
//
// Each repairable entry is the notification the channel would have sent; it is signed here
// with the channel's private key (SHA256withRSA over TIMESTAMP "\n" NONCE "\n" BODY "\n",
// docs/api.md) from `<keys dir>/private/<channel>.private.pem` (where `paycore keys init` writes
// it; --channel-keys DIR to say otherwise) and posted to /v1/notify/{channel}. The server
// ignores a notification whose channel_txn_id it has seen, so applying a file twice changes
// nothing. Entries that need a person are listed and skipped.
//
// Everything is checked before the first request (validate, then act): an unreadable or
// malformed line, a repair that is not a POST to /v1/notify/{its channel}, or a missing
// channel key stops the run with exit status 2 and nothing sent.
//
// The notification's answer is 200 {"code":"SUCCESS"} whether it settled the payment, repeated
// an earlier one, or was kept as an anomaly. When the keys file has the merchant's secret, the
// payment is read before and after (GET /v1/payments/{order_id}, HMAC-signed as the merchant)
// to tell which; otherwise the line says "sent".
//
// Output: one line per entry, then totals. Exit status: 0 every repair is in place (applied
// now or before), 1 some were not (refused, kept as an anomaly, or an unexpected answer),
// 2 error (bad arguments or input, keys, the server unreachable).

#include <ostream>
#include <string>

namespace paycore::recon {

struct ApplyOptions {
  std::string repairs_path;
  std::string server_url;        // http://HOST:PORT
  std::string keys_path;         // the keys file (merchant secrets, for reading payments back)
  std::string channel_keys_dir;  // empty: <directory of keys_path>/private
  int timeout_ms = 10'000;
  bool dry_run = false;          // check and list, send nothing
};

int apply_repairs(const ApplyOptions& options, std::ostream& out, std::ostream& err);

}  // namespace paycore::recon
