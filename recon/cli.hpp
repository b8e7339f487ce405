#pragma once
// `paycore recon` command line: its words are parsed here, not by CLI11, so that every mistake
// is exit status 2 (docs/recon.md "Command line") and so that the per-statement options pair
// with the `--statement` they follow:
//   paycore recon --snapshot FILE [--archive DIR] --out DIR
//                 --statement FILE [--statement-format F] [--statement-channel C]
//                                  [--statement-merchant ID]...   (repeat for each statement)
//                 [--cutoff TIME] [--since TIME] [--tolerance-seconds N]
// Pairing: a per-statement option after a `--statement FILE` (before the next one) belongs to
// that file; given before the first `--statement` it is the default of every statement. The
// same option in both places, or one value twice for one statement, is refused as ambiguous.
// The snapshot is read by a loader the caller passes in (the snapshot format lives in core/).

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"
#include "recon/local.hpp"

namespace paycore::recon {

// ---- Words to options ---------------------------------------------------------------------

struct ArgSpec {
  std::string_view name;  // "--snapshot"
  bool takes_value = true;
};

// One option with its value, or one positional word, in command-line order.
struct ArgEvent {
  std::string name;   // "--snapshot"; empty for a positional word
  std::string value;  // the option's value, or the positional word
};

// Splits command-line words: `--name VALUE`, `--name=VALUE`, flags, positional words; `-h` and
// `--help` are the flag "--help". kInvalidArgument (its message naming the word) for an unknown
// option, an option without its value (the end of the line, an empty `--name=`, or a next word
// that is itself an option), a value given to a flag, and for "--" (nothing here needs it).
[[nodiscard]] Status split_args(std::span<const std::string> words, std::span<const ArgSpec> specs,
                                std::vector<ArgEvent>* events);

// A whole number in [min, max]; kInvalidArgument naming `option` otherwise.
[[nodiscard]] Status parse_int_arg(std::string_view text, std::string_view option, std::int64_t min,
                                   std::int64_t max, std::int64_t* out);

// ---- paycore recon ------------------------------------------------------------------------

struct StatementArgs {
  std::string path;
  std::string format;                     // csv|alipay|wechat|auto; empty: auto
  std::string channel;                    // empty: the format's own / the rows'
  std::vector<std::string> merchant_ids;  // --statement-merchant, in order given
};

struct ReconArgs {
  std::string snapshot;
  std::string archive;  // --archive DIR (<data_dir>/archive); empty: the snapshot alone
  std::vector<StatementArgs> statements;
  std::string out_dir;
  std::string cutoff;  // RFC 3339; empty: after the latest row
  std::string since;   // RFC 3339; empty: no lower bound
  std::int64_t tolerance_seconds = 1800;
  bool help = false;   // -h / --help: print recon_usage(), exit 0
};

// The words after `paycore recon` into *args; kInvalidArgument (exit status 2) on any mistake:
// unknown option, missing value, a value twice, an ambiguous pairing, a positional word, a
// missing --snapshot / --statement / --out, a bad --tolerance-seconds.
[[nodiscard]] Status parse_recon_args(std::span<const std::string> words, ReconArgs* args);

// The help text of `paycore recon` (with its apply and gen subcommands).
std::string_view recon_usage();

// Loads the local records from a snapshot and an archive (load_local_data, or a test's
// stand-in).
using LocalLoader = std::function<StatusOr<LocalData>(const LocalSources& sources)>;

// Exit status as docs/recon.md says: 0 all matched, 1 findings, 2 error (bad arguments included).
int recon_main(const ReconArgs& args, const LocalLoader& load, std::ostream& out, std::ostream& err);

}  // namespace paycore::recon
