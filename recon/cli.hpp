#pragma once
// `paycore recon` after CLI11 has parsed its arguments:
//   paycore recon --snapshot FILE --statement FILE [...] --out DIR
//                 [--statement-format csv|alipay|wechat|auto] [--statement-merchant ID]
//                 [--statement-channel NAME] [--cutoff TIME] [--since TIME] [--tolerance-seconds N]
// The snapshot is read by a loader the caller passes in (the snapshot format lives in src/).

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "recon/local.hpp"

namespace paycore::recon {

struct ReconArgs {
  std::string snapshot;
  std::vector<std::string> statements;
  std::string out_dir;
  std::string statement_format = "auto";  // applies to every statement file
  std::string statement_merchant;         // paycore merchant of Alipay / WeChat bills
  std::string statement_channel;          // channel name, if not the format's default
  std::string cutoff;                     // RFC 3339; empty: after the latest row
  std::string since;                      // RFC 3339; empty: no lower bound
  std::int64_t tolerance_seconds = 1800;
};

// Loads the local records from a snapshot; nullopt and *error on failure.
using LocalLoader = std::function<std::optional<LocalData>(const std::string& snapshot, std::string* error)>;

// Exit status as DESIGN.md says: 0 all matched, 1 findings, 2 error (bad arguments included).
int recon_main(const ReconArgs& args, const LocalLoader& load, std::ostream& out, std::ostream& err);

}  // namespace paycore::recon
