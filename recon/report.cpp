#include "recon/report.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>

#include "recon/text.hpp"
#include "base/assert.hpp"

namespace paycore::recon {
namespace {

constexpr std::size_t html_findings_max = 200;
constexpr std::size_t json_malformed_max = 1000;

std::string sum_to_string(AmountSum value) {
  if (value == 0) return "0";
  const bool negative = value < 0;
  std::string digits;
  while (value != 0) {
    const auto digit = static_cast<int>(value % 10);
    digits.push_back(static_cast<char>('0' + (negative ? -digit : digit)));
    value /= 10;
  }
  if (negative) digits.push_back('-');
  std::reverse(digits.begin(), digits.end());
  return digits;
}

// {"CNY": 123, ...} over the non-zero entries.
void append_json_strings(std::string* out, const std::vector<std::string>& texts) {
  *out += '[';
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (i != 0) *out += ", ";
    append_json_string(*out, texts[i]);
  }
  *out += ']';
}

void append_sums_json(std::string* out, const std::vector<AmountSum>& sums) {
  *out += "{";
  bool first = true;
  for (std::size_t i = 1; i < sums.size(); ++i) {
    if (sums[i] == 0) continue;
    if (!first) *out += ", ";
    first = false;
    append_json_string(*out, currency_code(Currency{static_cast<std::uint16_t>(i)}));
    *out += ": " + sum_to_string(sums[i]);
  }
  *out += "}";
}

std::string sums_text(const std::vector<AmountSum>& sums) {
  std::string text;
  for (std::size_t i = 1; i < sums.size(); ++i) {
    if (sums[i] == 0) continue;
    if (!text.empty()) text += "; ";
    text += format_amount(sums[i], Currency{static_cast<std::uint16_t>(i)});
  }
  return text.empty() ? "-" : text;
}

void append_totals_json(std::string* out, const Totals& totals, const char* indent) {
  *out += "{";
  for (std::size_t c = 0; c < finding_class_count; ++c) {
    const ClassTotals& t = totals.classes[c];
    *out += c == 0 ? "\n" : ",\n";
    *out += indent;
    append_json_string(*out, finding_class_name(static_cast<FindingClass>(c)));
    *out += ": {\"count\": " + std::to_string(t.count) + ", \"local_amount\": ";
    append_sums_json(out, t.local_amount);
    *out += ", \"channel_amount\": ";
    append_sums_json(out, t.channel_amount);
    *out += "}";
  }
  *out += "}";
}

std::string time_text(bool present, std::int64_t time_us) {
  return present ? format_rfc3339_us(time_us) : std::string();
}

}  // namespace

std::string format_amount(AmountSum amount, Currency currency) {
  const auto exponent = static_cast<std::size_t>(currency_exponent(currency));
  const bool negative = amount < 0;
  std::string digits = sum_to_string(negative ? -amount : amount);
  if (digits.size() <= exponent) digits.insert(0, exponent + 1 - digits.size(), '0');
  // Built by appends: GCC 12 at -O3 reports a false -Wrestrict on insert() and + chains here.
  const std::string_view all = digits;
  std::string text;
  text.reserve(digits.size() + 6);
  if (negative) text += '-';
  text += all.substr(0, all.size() - exponent);
  if (exponent > 0) {
    text += '.';
    text += all.substr(all.size() - exponent);
  }
  text += ' ';
  text += currency_code(currency);
  return text;
}

std::string repair_id(const Finding& f) {
  std::string key;
  for (const std::string_view part :
       {finding_class_name(f.finding_class), f.reason, std::string_view(f.channel),
        std::string_view(f.channel_txn_id), std::string_view(f.merchant_id),
        std::string_view(f.order_id), std::string_view(f.refund_id)}) {
    key += part;
    key.push_back('\x1f');
  }
  const XXH128_hash_t hash = XXH3_128bits(key.data(), key.size());
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(hash.high64),
                static_cast<unsigned long long>(hash.low64));
  return std::string("rp_") + hex;
}

void write_summary_json(const ReconReport& report, std::ostream& out) {
  const MatchResult& m = report.match;
  std::string json = "{\n  \"exit_status\": " + std::to_string(report.exit_status);
  json += ",\n  \"cutoff\": ";
  append_json_string(json, m.cutoff_us == INT64_MAX ? "none" : format_rfc3339_us(m.cutoff_us));
  json += ",\n  \"cutoff_from_statement\": " + std::string(m.cutoff_from_statement ? "true" : "false");
  json += ",\n  \"window_start\": ";
  if (report.window_start_us) {
    append_json_string(json, format_rfc3339_us(*report.window_start_us));
  } else {
    json += "null";
  }
  json += ",\n  \"tolerance_seconds\": " + std::to_string(report.tolerance_seconds);
  json += ",\n  \"statement_rows\": " + std::to_string(m.statement_rows_count);
  json += ",\n  \"malformed_rows\": " + std::to_string(m.malformed_count);
  json += ",\n  \"problems\": " + std::to_string(m.problems_count());
  json += ",\n  \"local_not_due\": " + std::to_string(m.local_not_due_count);
  json += ",\n  \"channel_rows_ignored\": " + std::to_string(m.channel_rows_ignored_count);
  json += ",\n  \"statements\": [";
  for (std::size_t i = 0; i < report.statements.size(); ++i) {
    const StatementSummary& s = report.statements[i];
    json += i == 0 ? "\n    {\"file\": " : ",\n    {\"file\": ";
    append_json_string(json, s.path);
    json += ", \"format\": ";
    append_json_string(json, statement_format_name(s.stats.format));
    json += ", \"channel\": ";
    append_json_string(json, s.stats.channel);
    json += ", \"merchants\": ";
    append_json_strings(&json, s.merchant_ids);
    json += ", \"encoding\": ";
    append_json_string(json, text_encoding_name(s.stats.encoding));
    json += ", \"rows\": " + std::to_string(s.stats.rows_count) +
            ", \"malformed\": " + std::to_string(s.stats.malformed_count) + "}";
  }
  json += "]";
  // Only these pairs' local records were swept for what no statement had.
  json += ",\n  \"covered\": [";
  for (std::size_t i = 0; i < m.covered.size(); ++i) {
    json += i == 0 ? "\n    {\"channel\": " : ",\n    {\"channel\": ";
    append_json_string(json, m.covered[i].channel);
    json += ", \"merchant_id\": ";
    append_json_string(json, m.covered[i].merchant_id.empty() ? "*" : m.covered[i].merchant_id);
    json += "}";
  }
  json += "]";
  json += ",\n  \"classes\": ";
  append_totals_json(&json, m.totals, "    ");
  json += ",\n  \"channels\": {";
  for (std::size_t i = 0; i < m.by_channel.size(); ++i) {
    json += i == 0 ? "\n    " : ",\n    ";
    append_json_string(json, m.by_channel[i].channel);
    json += ": ";
    append_totals_json(&json, m.by_channel[i].totals, "      ");
  }
  json += "}";
  json += ",\n  \"malformed\": [";
  const std::size_t listed = std::min(m.malformed.size(), json_malformed_max);
  for (std::size_t i = 0; i < listed; ++i) {
    json += i == 0 ? "\n    {\"file\": " : ",\n    {\"file\": ";
    append_json_string(json, m.malformed[i].file);
    json += ", \"line\": " + std::to_string(m.malformed[i].line) + ", \"reason\": ";
    append_json_string(json, m.malformed[i].reason);
    json += "}";
  }
  json += "],\n  \"malformed_listed\": " + std::to_string(listed) + "\n}\n";
  out << json;
}

void write_mismatches_csv(const MatchResult& match, std::ostream& out) {
  out << "class,reason,kind,channel,merchant_id,order_id,refund_id,"
         "local_status,local_amount,local_currency,local_channel_txn_id,local_time,"
         "statement_file,statement_line,channel_txn_id,channel_status,channel_amount,"
         "channel_currency,channel_time,anomaly_reason,repair_id\n";
  std::string line;
  for (const Finding& f : match.findings) {
    line.clear();
    const auto field = [&](std::string_view text) {
      append_csv_field(&line, text);
      line.push_back(',');
    };
    field(finding_class_name(f.finding_class));
    field(f.reason);
    field(record_kind_name(f.kind));
    field(f.channel);
    field(f.merchant_id);
    field(f.order_id);
    field(f.refund_id);
    field(f.has_local ? f.local_status : "");
    field(f.has_local ? std::to_string(f.local_amount) : "");
    field(f.has_local ? currency_code(f.local_currency) : "");
    field(f.local_channel_txn_id);
    field(time_text(f.has_local, f.local_time_us));
    field(f.statement_file);
    field(f.has_channel ? std::to_string(f.statement_line) : "");
    field(f.channel_txn_id);
    field(f.has_channel ? channel_status_name(f.channel_status) : "");
    field(f.has_channel ? std::to_string(f.channel_amount) : "");
    field(f.has_channel ? currency_code(f.channel_currency) : "");
    field(time_text(f.has_channel, f.channel_time_us));
    field(f.anomaly_reason);
    append_csv_field(&line, f.finding_class == FindingClass::within_cutoff ? "" : repair_id(f));
    line.push_back('\n');
    out << line;
  }
}

namespace {

// The notification the channel would have sent: POST /v1/notify/{channel} (docs/api.md). The
// channel_txn_id makes it idempotent on the server ("a repeated notification for the same
// channel_txn_id changes nothing"); the nonce is derived from the repair id for the same reason.
void append_notification_repair(std::string* json, const Finding& f, const std::string& id) {
  PAYCORE_ASSERT(f.has_channel);
  PAYCORE_ASSERT(f.repairable);
  *json += ", \"needs_person\": false, \"method\": \"POST\", \"path\": ";
  append_json_string(*json, "/v1/notify/" + f.channel);
  *json += ", \"headers\": {\"X-Channel-Nonce\": ";
  append_json_string(*json, id);
  *json += "}, \"sign\": \"SHA256withRSA by the channel's key over TIMESTAMP\\\\nNONCE\\\\nBODY\\\\n at send time\"";
  *json += ", \"body\": {\"channel_txn_id\": ";
  append_json_string(*json, f.channel_txn_id);
  *json += ", \"merchant_id\": ";
  append_json_string(*json, f.merchant_id);
  *json += ", \"order_id\": ";
  append_json_string(*json, f.order_id);
  *json += ", \"amount\": " + std::to_string(f.channel_amount) + ", \"currency\": ";
  append_json_string(*json, currency_code(f.channel_currency));
  *json += ", \"status\": ";
  append_json_string(*json, f.channel_status == ChannelStatus::success ? "SUCCESS" : "FAILED");
  *json += ", \"paid_at\": ";
  append_json_string(*json, format_rfc3339_us(f.channel_time_us));
  *json += "}";
}

std::string person_detail(const Finding& f) {
  std::string detail;
  if (f.has_local) {
    detail += "local " + f.local_status + " " + format_amount(f.local_amount, f.local_currency);
  } else {
    detail += "no local record";
  }
  detail += "; ";
  if (f.has_channel) {
    detail += "channel " + std::string(channel_status_name(f.channel_status)) + " " +
              format_amount(f.channel_amount, f.channel_currency) + " at " + f.statement_file +
              ":" + std::to_string(f.statement_line);
  } else {
    detail += "no channel row";
  }
  if (!f.anomaly_reason.empty()) detail += "; local anomaly: " + f.anomaly_reason;
  return detail;
}

}  // namespace

void write_repairs_jsonl(const MatchResult& match, std::ostream& out) {
  std::string json;
  for (const Finding& f : match.findings) {
    if (f.finding_class == FindingClass::within_cutoff) continue;  // wait for the next file
    const std::string id = repair_id(f);
    json.clear();
    json += "{\"repair_id\": ";
    append_json_string(json, id);
    json += ", \"finding\": ";
    append_json_string(json, finding_class_name(f.finding_class));
    json += ", \"reason\": ";
    append_json_string(json, f.reason);
    json += ", \"kind\": ";
    append_json_string(json, record_kind_name(f.kind));
    json += ", \"channel\": ";
    append_json_string(json, f.channel);
    json += ", \"merchant_id\": ";
    append_json_string(json, f.merchant_id);
    json += ", \"order_id\": ";
    append_json_string(json, f.order_id);
    if (!f.refund_id.empty()) {
      json += ", \"refund_id\": ";
      append_json_string(json, f.refund_id);
    }
    if (f.repairable) {
      append_notification_repair(&json, f, id);
    } else {
      json += ", \"needs_person\": true, \"detail\": ";
      append_json_string(json, person_detail(f));
    }
    json += "}\n";
    out << json;
  }
}

namespace {

// "alipay/m_001, card/* (every merchant)": the pairs whose local records were swept.
std::string coverage_text(const MatchResult& m) {
  if (m.covered.empty()) return "nothing (no row names a channel)";
  std::string text;
  for (const Coverage& c : m.covered) {
    if (!text.empty()) text += ", ";
    text += c.channel + "/" + (c.merchant_id.empty() ? std::string("* (every merchant)") : c.merchant_id);
  }
  return text;
}

}  // namespace

void print_table(const ReconReport& report, std::ostream& out) {
  const MatchResult& m = report.match;
  char line[256];
  std::snprintf(line, sizeof line, "%-22s %12s  %s\n", "class", "count", "channel amount / local amount");
  out << line;
  for (std::size_t c = 0; c < finding_class_count; ++c) {
    const ClassTotals& t = m.totals.classes[c];
    std::snprintf(line, sizeof line, "%-22s %12llu  ",
                  std::string(finding_class_name(static_cast<FindingClass>(c))).c_str(),
                  static_cast<unsigned long long>(t.count));
    out << line << sums_text(t.channel_amount) << " / " << sums_text(t.local_amount) << "\n";
  }
  std::snprintf(line, sizeof line, "%-22s %12llu\n", "malformed_rows",
                static_cast<unsigned long long>(m.malformed_count));
  out << line;
  const std::size_t shown = std::min<std::size_t>(m.malformed.size(), 10);
  for (std::size_t i = 0; i < shown; ++i) {
    out << "  " << m.malformed[i].file << ":" << m.malformed[i].line << ": " << m.malformed[i].reason
        << "\n";
  }
  if (m.malformed_count > shown) out << "  ... " << (m.malformed_count - shown) << " more\n";
  out << "statement rows " << m.statement_rows_count << ", cut-off "
      << (m.cutoff_us == INT64_MAX ? std::string("none") : format_rfc3339_us(m.cutoff_us))
      << ", exit status " << report.exit_status << "\n";
  out << "covered (channel/merchant): " << coverage_text(m) << "\n";
}

namespace {

// The page's head and the line of figures under its title.
void append_html_head(std::string* html, const ReconReport& report) {
  const MatchResult& m = report.match;
  *html +=
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>paycore reconciliation</title><style>"
      "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
      "td.n{text-align:right}.bad{color:#b00}</style></head><body>\n"
      "<h1>paycore reconciliation</h1>\n<p>cut-off ";
  append_html_escaped(html, m.cutoff_us == INT64_MAX ? "none" : format_rfc3339_us(m.cutoff_us));
  *html += ", tolerance " + std::to_string(report.tolerance_seconds) + " s, statement rows " +
           std::to_string(m.statement_rows_count) + ", malformed rows " +
           std::to_string(m.malformed_count) + ", exit status " +
           std::to_string(report.exit_status) + "</p>\n<p>covered (channel/merchant): ";
  append_html_escaped(html, coverage_text(m));
  *html += "</p>\n";
}

// Bar chart of the findings per class: log scale, since matched is usually orders of
// magnitude above the rest.
void append_class_chart(std::string* html, const MatchResult& m) {
  constexpr int bar_height = 22, label_width = 180, chart_width = 420;
  double max_log = 1;
  for (const ClassTotals& t : m.totals.classes) {
    max_log = std::max(max_log, std::log10(static_cast<double>(t.count) + 1));
  }
  const int height = bar_height * static_cast<int>(finding_class_count) + 24;
  *html += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
           std::to_string(label_width + chart_width + 120) + "\" height=\"" + std::to_string(height) +
           "\" role=\"img\" aria-label=\"findings per class (log scale)\">\n";
  for (std::size_t c = 0; c < finding_class_count; ++c) {
    const auto finding_class = static_cast<FindingClass>(c);
    const std::uint64_t count = m.totals.classes[c].count;
    const double fraction = std::log10(static_cast<double>(count) + 1) / max_log;
    const int width = static_cast<int>(fraction * chart_width);
    const int y = static_cast<int>(c) * bar_height;
    const char* colour = finding_class == FindingClass::matched ? "#3a3"
                         : finding_class_is_problem(finding_class) ? "#c33" : "#999";
    *html += "<text x=\"0\" y=\"" + std::to_string(y + 15) + "\" font-size=\"13\">" +
             std::string(finding_class_name(finding_class)) + "</text>";
    *html += "<rect x=\"" + std::to_string(label_width) + "\" y=\"" + std::to_string(y + 3) +
             "\" width=\"" + std::to_string(width) + "\" height=\"" + std::to_string(bar_height - 6) +
             "\" fill=\"" + colour + "\"/>";
    *html += "<text x=\"" + std::to_string(label_width + width + 6) + "\" y=\"" +
             std::to_string(y + 15) + "\" font-size=\"13\">" + std::to_string(count) + "</text>\n";
  }
  *html += "<text x=\"" + std::to_string(label_width) + "\" y=\"" + std::to_string(height - 4) +
           "\" font-size=\"11\" fill=\"#666\">bar length: log10(count + 1)</text></svg>\n";
}

void append_class_table(std::string* html, const MatchResult& m) {
  *html += "<h2>Classes</h2><table><tr><th>class</th><th>count</th><th>channel amount</th>"
           "<th>local amount</th></tr>\n";
  for (std::size_t c = 0; c < finding_class_count; ++c) {
    const ClassTotals& t = m.totals.classes[c];
    *html += "<tr><td>" + std::string(finding_class_name(static_cast<FindingClass>(c))) +
             "</td><td class=\"n\">" + std::to_string(t.count) + "</td><td>";
    append_html_escaped(html, sums_text(t.channel_amount));
    *html += "</td><td>";
    append_html_escaped(html, sums_text(t.local_amount));
    *html += "</td></tr>\n";
  }
  *html += "</table>\n";
}

// The first html_findings_max findings (all of them are in mismatches.csv).
void append_findings_table(std::string* html, const MatchResult& m) {
  *html += "<h2>Findings";
  if (m.findings.size() > html_findings_max) {
    *html += " (first " + std::to_string(html_findings_max) + " of " +
             std::to_string(m.findings.size()) + "; all in mismatches.csv)";
  }
  *html += "</h2><table><tr><th>class</th><th>reason</th><th>channel</th><th>merchant</th>"
           "<th>order</th><th>refund</th><th>detail</th></tr>\n";
  for (std::size_t i = 0; i < m.findings.size() && i < html_findings_max; ++i) {
    const Finding& f = m.findings[i];
    *html += "<tr class=\"";
    *html += finding_class_is_problem(f.finding_class) ? "bad" : "";
    *html += "\">";
    for (const std::string_view cell :
         {finding_class_name(f.finding_class), f.reason, std::string_view(f.channel),
          std::string_view(f.merchant_id), std::string_view(f.order_id),
          std::string_view(f.refund_id)}) {
      *html += "<td>";
      append_html_escaped(html, cell);
      *html += "</td>";
    }
    *html += "<td>";
    append_html_escaped(html, person_detail(f));
    *html += "</td></tr>\n";
  }
  *html += "</table>\n";
}

void append_malformed_table(std::string* html, const MatchResult& m) {
  *html += "<h2>Malformed rows (" + std::to_string(m.malformed_count) +
           ")</h2><table><tr><th>file</th><th>line</th><th>reason</th></tr>\n";
  for (std::size_t i = 0; i < m.malformed.size() && i < html_findings_max; ++i) {
    *html += "<tr><td>";
    append_html_escaped(html, m.malformed[i].file);
    *html += "</td><td class=\"n\">" + std::to_string(m.malformed[i].line) + "</td><td>";
    append_html_escaped(html, m.malformed[i].reason);
    *html += "</td></tr>\n";
  }
  *html += "</table>\n";
}

}  // namespace

void write_report_html(const ReconReport& report, std::ostream& out) {
  std::string html;
  append_html_head(&html, report);
  append_class_chart(&html, report.match);
  append_class_table(&html, report.match);
  append_findings_table(&html, report.match);
  append_malformed_table(&html, report.match);
  html += "</body></html>\n";
  out << html;
}

namespace {

Status write_file(const std::filesystem::path& path,
                  const std::function<void(std::ostream&)>& write) {
  std::filesystem::path temporary = path;
  temporary += ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) return Status::io_error("cannot create " + temporary.string());
    write(out);
    out.flush();
    if (!out) return Status::io_error("cannot write " + temporary.string());
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) return Status::io_error("cannot rename " + temporary.string() + ": " + error.message());
  return Status::ok();
}

}  // namespace

Status write_report_files(const ReconReport& report, const std::filesystem::path& out_dir) {
  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  if (error) return Status::io_error("cannot create " + out_dir.string() + ": " + error.message());
  const std::pair<const char*, std::function<void(std::ostream&)>> files[] = {
      {"summary.json", [&](std::ostream& o) { write_summary_json(report, o); }},
      {"mismatches.csv", [&](std::ostream& o) { write_mismatches_csv(report.match, o); }},
      {"repairs.jsonl", [&](std::ostream& o) { write_repairs_jsonl(report.match, o); }},
      {"report.html", [&](std::ostream& o) { write_report_html(report, o); }},
  };
  for (const auto& [name, write] : files) {
    PAYCORE_RETURN_IF_ERROR(write_file(out_dir / name, write));
  }
  return Status::ok();
}

}  // namespace paycore::recon
