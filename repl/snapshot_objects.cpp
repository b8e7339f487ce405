#include "repl/snapshot_objects.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <array>
#include <memory>
#include <vector>

#include "base/log.hpp"
#include "base/status.hpp"
#include "base/time.hpp"
#include "repl/nats_link.hpp"
#include "repl/stream_format.hpp"

namespace paycore::repl {
namespace {

constexpr const char* kObjectName = "snapshot";
constexpr const char* kHeaderSnapshotLsn = "Paycore-Snapshot-Lsn";
constexpr const char* kHeaderLogChecksum = "Paycore-Log-Checksum";
constexpr const char* kHeaderSnapshotBytes = "Paycore-Snapshot-Bytes";
constexpr const char* kHeaderChunks = "Paycore-Chunks";
constexpr const char* kHeaderNuid = "Paycore-Nuid";
constexpr const char* kHeaderFirstChunkSequence = "Paycore-First-Chunk-Sequence";
constexpr const char* kHeaderDigest = "Paycore-Digest";

std::string object_stream(const std::string& bucket) { return "OBJ_" + bucket; }
std::string chunk_subject(const std::string& bucket, const std::string& nuid) {
  return "$O." + bucket + ".C." + nuid;
}

// RFC 4648 section 5 (URL and filename safe alphabet, padded), as Go's base64.URLEncoding
// writes the object store's meta subjects and digests.
std::string base64url(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data,
                                      static_cast<int>(size));
  out.resize(static_cast<std::size_t>(written));
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::string meta_subject(const std::string& bucket) {
  const std::string_view name = kObjectName;
  return "$O." + bucket + ".M." +
         base64url(reinterpret_cast<const unsigned char*>(name.data()), name.size());
}

// A SHA-256 over the bytes given to update(), as "SHA-256=<base64url>" (ADR-20's digest).
class Sha256 {
 public:
  Sha256() : context_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    ok_ = context_ != nullptr && EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) == 1;
  }
  void update(const void* data, std::size_t size) {
    ok_ = ok_ && EVP_DigestUpdate(context_.get(), data, size) == 1;
  }
  std::string digest() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int size = 0;
    ok_ = ok_ && EVP_DigestFinal_ex(context_.get(), md.data(), &size) == 1;
    return ok_ ? "SHA-256=" + base64url(md.data(), size) : std::string("SHA-256=?");
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> context_;
  bool ok_ = false;
};

// A random 32-character token for the chunks' subject (ADR-20 uses a NUID: any unique token).
std::string fresh_nuid() { return writer_id_text(random_writer_id()) + writer_id_text(random_writer_id()); }

std::string object_info_json(const std::string& bucket, const PublishedSnapshot& s) {
  return R"({"name":")" + std::string(kObjectName) + R"(","bucket":")" + bucket +
         R"(","nuid":")" + s.nuid + R"(","size":)" + std::to_string(s.size_bytes) +
         R"(,"chunks":)" + std::to_string(s.chunks) + R"(,"mtime":")" +
         format_rfc3339_us(wall_clock_us()) + R"(","digest":")" + s.digest +
         R"(","options":{"max_chunk_size":)" + std::to_string(kSnapshotChunkBytes) + "}}";
}

// The meta message: ObjectInfo as its body, the same facts in its headers, rolled up.
Status publish_meta(jsCtx* js, const std::string& bucket, const PublishedSnapshot& s) {
  const std::string subject = meta_subject(bucket);
  const std::string body = object_info_json(bucket, s);
  natsMsg* msg = nullptr;
  natsStatus st = natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(),
                                 static_cast<int>(body.size()));
  const std::pair<const char*, std::string> headers[] = {
      {"Nats-Rollup", "sub"},
      {kHeaderSnapshotLsn, std::to_string(s.lsn)},
      {kHeaderLogChecksum, std::to_string(s.log_checksum)},
      {kHeaderSnapshotBytes, std::to_string(s.size_bytes)},
      {kHeaderChunks, std::to_string(s.chunks)},
      {kHeaderNuid, s.nuid},
      {kHeaderFirstChunkSequence, std::to_string(s.first_chunk_sequence)},
      {kHeaderDigest, s.digest}};
  for (const auto& [key, value] : headers) {
    if (st == NATS_OK) st = natsMsgHeader_Set(msg, key, value.c_str());
  }
  jsPubAck* ack = nullptr;
  jsErrCode error{};
  if (st == NATS_OK) st = js_PublishMsg(&ack, js, msg, nullptr, &error);
  if (ack != nullptr) jsPubAck_Destroy(ack);
  if (msg != nullptr) natsMsg_Destroy(msg);
  return nats_status(st, error, "publish the snapshot's meta on " + subject);
}

// Publishes the file's chunks; fills nuid, size_bytes, chunks, first_chunk_sequence, digest.
Status publish_chunks(jsCtx* js, const std::string& bucket, int fd, const std::string& path,
                      PublishedSnapshot* s) {
  s->nuid = fresh_nuid();
  const std::string subject = chunk_subject(bucket, s->nuid);
  std::vector<char> buffer(kSnapshotChunkBytes);
  Sha256 sha;
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0) return errno_status("read " + path, errno);
    if (n == 0) break;
    sha.update(buffer.data(), static_cast<std::size_t>(n));
    jsPubAck* ack = nullptr;
    jsErrCode error{};
    const natsStatus st = js_Publish(&ack, js, subject.c_str(), buffer.data(),
                                     static_cast<int>(n), nullptr, &error);
    if (st == NATS_OK && s->chunks == 0) s->first_chunk_sequence = ack->Sequence;
    if (ack != nullptr) jsPubAck_Destroy(ack);
    if (st != NATS_OK) return nats_status(st, error, "publish a snapshot chunk on " + subject);
    ++s->chunks;
    s->size_bytes += static_cast<std::uint64_t>(n);
  }
  if (s->chunks == 0) return Status::invalid_argument(path + " is empty");
  s->digest = sha.digest();
  return Status::ok();
}

// The replaced object's chunks go (ADR-20 does the same). A purge by subject and sequence
// ("everything on $O.<bucket>.C.> before the new object's first chunk", which would also take
// the chunks of a publish that failed half-way) was tried: nats-server 2.9.10 purged the new
// object's chunks with them. Chunks of a failed publish stay until the bucket is purged.
void purge_chunks(jsCtx* js, const std::string& bucket, const std::string& nuid) {
  jsOptions options;
  jsOptions_Init(&options);
  const std::string subject = chunk_subject(bucket, nuid);
  options.Stream.Purge.Subject = subject.c_str();
  jsErrCode error{};
  const natsStatus st = js_PurgeStream(js, object_stream(bucket).c_str(), &options, &error);
  if (st != NATS_OK) {
    log_line(LogLevel::warn, "snapshot bucket: the replaced chunks were not purged",
             {{"subject", subject}, {"reason", nats_status(st, error, "purge").to_string()}});
  }
}

bool header_text(natsMsg* msg, const char* key, std::string* out) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg, key, &value) != NATS_OK || value == nullptr) return false;
  *out = value;
  return true;
}

}  // namespace

std::string snapshot_bucket_name(std::string_view cluster) {
  return "PAYCORE_SNAP_" + std::string(cluster);
}

Status ensure_snapshot_bucket(jsCtx* js, const std::string& bucket, int replicas) {
  const std::string stream = object_stream(bucket);
  const std::string chunks = "$O." + bucket + ".C.>";
  const std::string metas = "$O." + bucket + ".M.>";
  const char* subjects[] = {chunks.c_str(), metas.c_str()};
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = stream.c_str();
  config.Subjects = subjects;
  config.SubjectsLen = 2;
  config.Storage = js_FileStorage;
  config.Replicas = replicas;
  config.AllowRollup = true;
  jsStreamInfo* info = nullptr;
  jsErrCode error{};
  const natsStatus s = js_AddStream(&info, js, &config, nullptr, &error);
  if (info != nullptr) jsStreamInfo_Destroy(info);
  if (s == NATS_OK || error == JSStreamNameExistErr) return Status::ok();
  return nats_status(s, error, "create stream " + stream);
}

StatusOr<std::optional<PublishedSnapshot>> read_published_snapshot(jsCtx* js,
                                                                   const std::string& bucket) {
  natsMsg* msg = nullptr;
  jsErrCode error{};
  const std::string subject = meta_subject(bucket);
  const natsStatus st =
      js_GetLastMsg(&msg, js, object_stream(bucket).c_str(), subject.c_str(), nullptr, &error);
  if (st != NATS_OK) {
    const Status s = nats_status(st, error, "the snapshot meta on " + subject);
    if (s.code() == StatusCode::kNotFound) return std::optional<PublishedSnapshot>{};
    return s;
  }
  PublishedSnapshot out;
  const bool ok = header_number(msg, kHeaderSnapshotLsn, &out.lsn) &&
                  header_number(msg, kHeaderLogChecksum, &out.log_checksum) &&
                  header_number(msg, kHeaderSnapshotBytes, &out.size_bytes) &&
                  header_number(msg, kHeaderChunks, &out.chunks) &&
                  header_number(msg, kHeaderFirstChunkSequence, &out.first_chunk_sequence) &&
                  header_text(msg, kHeaderNuid, &out.nuid) &&
                  header_text(msg, kHeaderDigest, &out.digest) && out.chunks > 0;
  natsMsg_Destroy(msg);
  if (!ok) return Status::corruption(subject + ": missing or malformed Paycore-* headers");
  return std::optional<PublishedSnapshot>{out};
}

StatusOr<PublishedSnapshot> publish_snapshot_file(jsCtx* js, const std::string& bucket,
                                                  const std::string& path, std::uint64_t lsn,
                                                  std::uint64_t log_checksum) {
  StatusOr<std::optional<PublishedSnapshot>> replaced = read_published_snapshot(js, bucket);
  if (!replaced.is_ok()) return replaced.status();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open " + path, errno);
  PublishedSnapshot published;
  published.lsn = lsn;
  published.log_checksum = log_checksum;
  const Status chunks = publish_chunks(js, bucket, fd, path, &published);
  ::close(fd);
  if (!chunks.is_ok()) return chunks;
  if (Status s = publish_meta(js, bucket, published); !s.is_ok()) return s;
  if (*replaced) purge_chunks(js, bucket, (*replaced)->nuid);
  return published;
}

namespace {

// Appends the chunk messages of `snapshot` to `fd` in stream order, hashing them.
Status copy_chunks(jsCtx* js, const std::string& bucket, const PublishedSnapshot& snapshot,
                   int fd, const std::string& path, Sha256* sha, std::uint64_t* bytes) {
  const std::string stream = object_stream(bucket);
  const std::string subject = chunk_subject(bucket, snapshot.nuid);
  StatusOr<StreamPosition> position = read_position(js, stream);
  if (!position.is_ok()) return position.status();
  std::uint64_t found = 0;
  for (std::uint64_t seq = snapshot.first_chunk_sequence;
       found < snapshot.chunks && seq <= position->last_sequence; ++seq) {
    natsMsg* msg = nullptr;
    jsErrCode error{};
    const natsStatus st = js_GetMsg(&msg, js, stream.c_str(), seq, nullptr, &error);
    const Status s = nats_status(st, error, stream + " message " + std::to_string(seq));
    if (s.code() == StatusCode::kNotFound) continue;  // purged or deleted: not ours
    if (!s.is_ok()) return s;
    const bool ours = subject == natsMsg_GetSubject(msg);
    const auto size = static_cast<std::size_t>(natsMsg_GetDataLength(msg));
    ssize_t written = 0;
    int write_errno = 0;
    if (ours) {
      sha->update(natsMsg_GetData(msg), size);
      written = ::write(fd, natsMsg_GetData(msg), size);
      write_errno = errno;
    }
    natsMsg_Destroy(msg);
    if (!ours) continue;
    if (written != static_cast<ssize_t>(size)) return errno_status("write " + path, write_errno);
    *bytes += size;
    ++found;
  }
  if (found != snapshot.chunks) {
    return Status::corruption(stream + ": " + std::to_string(found) + " of " +
                              std::to_string(snapshot.chunks) +
                              " chunks found (replaced or purged meanwhile?)");
  }
  return Status::ok();
}

}  // namespace

Status download_snapshot(jsCtx* js, const std::string& bucket, const PublishedSnapshot& snapshot,
                         const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("open " + path, errno);
  Sha256 sha;
  std::uint64_t bytes = 0;
  Status s = copy_chunks(js, bucket, snapshot, fd, path, &sha, &bytes);
  if (s.is_ok() && bytes != snapshot.size_bytes) {
    s = Status::corruption(path + ": " + std::to_string(bytes) + " bytes downloaded, the meta says " +
                           std::to_string(snapshot.size_bytes));
  }
  if (s.is_ok()) {
    if (const std::string digest = sha.digest(); digest != snapshot.digest) {
      s = Status::corruption(path + ": digest " + digest + ", the meta says " + snapshot.digest);
    }
  }
  if (s.is_ok() && ::fsync(fd) != 0) s = errno_status("fsync " + path, errno);
  ::close(fd);
  if (!s.is_ok()) ::unlink(path.c_str());
  return s;
}

}  // namespace paycore::repl
