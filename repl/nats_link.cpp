#include "repl/nats_link.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "repl/stream_format.hpp"

namespace paycore::repl {

Status nats_status(natsStatus status, jsErrCode js_error, const std::string& what) {
  if (status == NATS_OK) return Status::ok();
  std::string message = what + ": " + natsStatus_GetText(status);
  if (js_error != 0) message += " (JetStream error " + std::to_string(js_error) + ")";
  if (js_error == JSStreamWrongLastSequenceErr) return Status(StatusCode::kConflict, message);
  if (js_error == JSStreamNotFoundErr || js_error == JSNoMessageFoundErr ||
      status == NATS_NOT_FOUND) {
    return Status::not_found(message);
  }
  switch (status) {
    case NATS_TIMEOUT:
    case NATS_NO_RESPONDERS:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION: return Status(StatusCode::kUnavailable, message);
    case NATS_INVALID_ARG: return Status::invalid_argument(message);
    default: return Status::io_error(message);
  }
}

StatusOr<std::unique_ptr<NatsLink>> NatsLink::connect(const LinkConfig& config) {
  std::unique_ptr<NatsLink> link(new NatsLink(config));
  natsStatus s = natsOptions_Create(&link->options_);
  // One URL per server: natsOptions_SetURL takes a single one (a list is refused with "no
  // server available"), natsOptions_SetServers the list.
  std::vector<std::string> urls;
  for (std::size_t at = 0; at <= config.urls.size();) {
    const std::size_t comma = std::min(config.urls.find(',', at), config.urls.size());
    if (comma > at) urls.push_back(config.urls.substr(at, comma - at));
    at = comma + 1;
  }
  std::vector<const char*> servers;
  for (const std::string& url : urls) servers.push_back(url.c_str());
  if (servers.empty()) return Status::invalid_argument("nats_url names no server");
  if (s == NATS_OK) {
    s = natsOptions_SetServers(link->options_, servers.data(), static_cast<int>(servers.size()));
  }
  if (s == NATS_OK) s = natsOptions_SetName(link->options_, config.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(link->options_, config.timeout_ms);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(link->options_, -1);  // never give up
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(link->options_, config.reconnect_wait_ms);
  // Frequent pings: a server that went silent is noticed within a second, not two minutes.
  if (s == NATS_OK) s = natsOptions_SetPingInterval(link->options_, 250);
  if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(link->options_, 4);
  if (s != NATS_OK) return nats_status(s, jsErrCode{}, "nats options for " + config.urls);
  s = natsConnection_Connect(&link->connection_, link->options_);
  if (s != NATS_OK) return nats_status(s, jsErrCode{}, "connect to NATS at " + config.urls);
  jsOptions options;
  jsOptions_Init(&options);
  options.Wait = config.timeout_ms;
  options.PublishAsync.MaxPending = config.publish_pending_max;
  options.PublishAsync.AckHandler = config.ack_handler;
  options.PublishAsync.AckHandlerClosure = config.ack_closure;
  s = natsConnection_JetStream(&link->js_, link->connection_, &options);
  if (s != NATS_OK) return nats_status(s, jsErrCode{}, "JetStream context at " + config.urls);
  return link;
}

NatsLink::~NatsLink() {
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (connection_ != nullptr) natsConnection_Destroy(connection_);
  if (options_ != nullptr) natsOptions_Destroy(options_);
}

Status NatsLink::drain_publishes(std::int64_t timeout_ms) {
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MaxWait = timeout_ms;
  return nats_status(js_PublishAsyncComplete(js_, &options), jsErrCode{}, "pending publishes");
}

namespace {

Status check_existing(jsCtx* js, const StreamSettings& settings) {
  jsStreamInfo* info = nullptr;
  jsErrCode error{};
  const natsStatus s = js_GetStreamInfo(&info, js, settings.name.c_str(), nullptr, &error);
  if (s != NATS_OK) return nats_status(s, error, "stream " + settings.name);
  const jsStreamConfig* config = info->Config;
  const bool same_subject = config->SubjectsLen == 1 &&
                            settings.subject == config->Subjects[0];
  const bool same_replicas = config->Replicas == settings.replicas;
  const std::int64_t replicas = config->Replicas;
  jsStreamInfo_Destroy(info);
  if (!same_subject || !same_replicas) {
    return Status::invalid_argument("stream " + settings.name + " exists with another subject or " +
                                    std::to_string(replicas) + " replicas (asked for " +
                                    std::to_string(settings.replicas) + ")");
  }
  return Status::ok();
}

}  // namespace

StatusOr<kvStore*> open_bucket(jsCtx* js, const std::string& name, int replicas) {
  kvConfig config;
  kvConfig_Init(&config);
  config.Bucket = name.c_str();
  config.History = 1;
  config.StorageType = js_FileStorage;
  config.Replicas = replicas;
  kvStore* kv = nullptr;
  natsStatus s = js_CreateKeyValue(&kv, js, &config);
  if (s != NATS_OK) s = js_KeyValue(&kv, js, name.c_str());
  if (s != NATS_OK) return nats_status(s, jsErrCode{}, "bucket " + name);
  return kv;
}

Status ensure_stream(jsCtx* js, const StreamSettings& settings) {
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  const char* subjects[] = {settings.subject.c_str()};
  config.Name = settings.name.c_str();
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  config.Storage = js_FileStorage;
  config.Retention = js_LimitsPolicy;
  config.Discard = js_DiscardOld;
  config.Replicas = settings.replicas;
  config.MaxBytes = settings.bytes_max;
  config.MaxAge = settings.age_max_ms * 1'000'000;  // nanoseconds
  config.MaxMsgSize = settings.message_bytes_max;
  config.Duplicates = settings.duplicate_window_ms * 1'000'000;
  jsStreamInfo* info = nullptr;
  jsErrCode error{};
  const natsStatus s = js_AddStream(&info, js, &config, nullptr, &error);
  if (info != nullptr) jsStreamInfo_Destroy(info);
  if (s == NATS_OK) return Status::ok();
  if (error == JSStreamNameExistErr) return check_existing(js, settings);
  return nats_status(s, error, "create stream " + settings.name);
}

bool header_number(natsMsg* msg, const char* key, std::uint64_t* out) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg, key, &value) != NATS_OK || value == nullptr) return false;
  const char* end = value + std::strlen(value);
  const auto [ptr, ec] = std::from_chars(value, end, *out);
  return ec == std::errc() && ptr == end;
}

StatusOr<StoredMessage> read_message(jsCtx* js, const std::string& stream,
                                     std::uint64_t sequence) {
  natsMsg* msg = nullptr;
  jsErrCode error{};
  const natsStatus s = js_GetMsg(&msg, js, stream.c_str(), sequence, nullptr, &error);
  const std::string what = "stream " + stream + " message " + std::to_string(sequence);
  if (s != NATS_OK) return nats_status(s, error, what);
  StoredMessage out;
  out.sequence = sequence;
  const char* writer = nullptr;
  const bool headers_ok = header_number(msg, kHeaderFirstLsn, &out.first_lsn) &&
                          header_number(msg, kHeaderLastLsn, &out.last_lsn) &&
                          natsMsgHeader_Get(msg, kHeaderWriter, &writer) == NATS_OK &&
                          writer != nullptr && out.first_lsn <= out.last_lsn;
  if (headers_ok) {
    out.writer = writer;
    const auto* data = reinterpret_cast<const std::byte*>(natsMsg_GetData(msg));
    out.data.assign(data, data + natsMsg_GetDataLength(msg));
  }
  natsMsg_Destroy(msg);
  if (!headers_ok) return Status::corruption(what + ": missing or malformed Paycore-* headers");
  return out;
}

StatusOr<StreamPosition> read_position(jsCtx* js, const std::string& stream) {
  jsStreamInfo* info = nullptr;
  jsErrCode error{};
  const natsStatus s = js_GetStreamInfo(&info, js, stream.c_str(), nullptr, &error);
  if (s != NATS_OK) return nats_status(s, error, "stream " + stream);
  StreamPosition position{info->State.FirstSeq, info->State.LastSeq};
  jsStreamInfo_Destroy(info);
  return position;
}

}  // namespace paycore::repl
