#include "auth/keys.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <sys/stat.h>
#include <unistd.h>

#include <simdjson.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "base/assert.hpp"
#include "base/hex.hpp"
#include "base/random_hex.hpp"
#include "base/json_text.hpp"

namespace paycore::auth {

// Builds a Keys object; the only code allowed to touch its insides.
struct KeysBuilder {
  std::shared_ptr<Keys> keys = std::make_shared<Keys>();

  std::vector<Principal>& principals() { return keys->principals_; }
  std::vector<ChannelKey>& channels() { return keys->channels_; }

  void finish() {
    auto by_id = [](const Principal& a, const Principal& b) { return a.id.view() < b.id.view(); };
    std::sort(keys->principals_.begin(), keys->principals_.end(), by_id);
    std::sort(
        keys->channels_.begin(), keys->channels_.end(),
        [](const ChannelKey& a, const ChannelKey& b) { return a.name.view() < b.name.view(); });
    std::size_t operators_count = 0;
    for (std::size_t i = 0; i < keys->principals_.size(); ++i) {
      if (keys->principals_[i].kind == PrincipalKind::operator_) {
        keys->operator_index_ = i;
        ++operators_count;
      }
    }
    PAYCORE_ASSERT_EQ(operators_count, std::size_t{1});
  }
};

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// Every refusal of a keys file: the origin (the file name), then what is wrong.
Status failure(std::string_view origin, std::string_view message) {
  std::string text(origin);
  text.append(": ").append(message);
  return Status::invalid_argument(std::move(text));
}

std::string quote(std::string_view text) {
  std::string quoted;
  quoted.reserve(text.size() + 2);
  quoted.push_back('"');
  quoted.append(text);
  quoted.push_back('"');
  return quoted;
}

// The names of an object's members must be unique; DOM keeps duplicates, so check here.
bool find_duplicate(object members, std::string* duplicate) {
  std::set<std::string_view> seen;
  for (auto member : members) {
    if (!seen.insert(member.key).second) {
      *duplicate = std::string(member.key);
      return true;
    }
  }
  return false;
}

Status parse_operator(element value, Principal* out) {
  object members;
  if (value.get_object().get(members))
    return Status::invalid_argument("\"operator\" must be an object {\"id\", \"secret\"}");
  std::string duplicate;
  if (find_duplicate(members, &duplicate))
    return Status::invalid_argument("operator: duplicate key " + quote(duplicate));
  std::string_view id;
  std::string_view secret;
  if (members["id"].get_string().get(id))
    return Status::invalid_argument("operator.id is missing or not a string");
  if (members["secret"].get_string().get(secret)) {
    return Status::invalid_argument("operator.secret is missing or not a string");
  }
  if (!Id::from(id, &out->id)) {
    return Status::invalid_argument("operator.id " + quote(id) +
                                    " is not an id (1-64 of [A-Za-z0-9_.:-])");
  }
  if (secret.empty()) return Status::invalid_argument("operator.secret must not be empty");
  out->kind = PrincipalKind::operator_;
  out->secret = std::string(secret);
  return Status::ok();
}

Status parse_merchants(element value, std::vector<Principal>* out) {
  object members;
  if (value.get_object().get(members))
    return Status::invalid_argument("\"merchants\" must be an object {id: secret}");
  std::string duplicate;
  if (find_duplicate(members, &duplicate))
    return Status::invalid_argument("merchants: duplicate merchant " + quote(duplicate));
  for (auto member : members) {
    Principal principal;
    if (!Id::from(member.key, &principal.id)) {
      return Status::invalid_argument("merchants: " + quote(member.key) +
                                      " is not an id (1-64 of [A-Za-z0-9_.:-])");
    }
    std::string_view secret;
    if (member.value.get_string().get(secret)) {
      return Status::invalid_argument("merchants." + std::string(member.key) +
                                      ": the secret must be a string");
    }
    if (secret.empty())
      return Status::invalid_argument("merchants." + std::string(member.key) +
                                      ": the secret is empty");
    principal.kind = PrincipalKind::merchant;
    principal.secret = std::string(secret);
    out->push_back(std::move(principal));
  }
  return Status::ok();
}

Status parse_channels(element value, std::vector<ChannelKey>* out) {
  object members;
  if (value.get_object().get(members)) {
    return Status::invalid_argument(
        "\"channels\" must be an object {name: {\"public_key_pem\": ...}}");
  }
  std::string duplicate;
  if (find_duplicate(members, &duplicate))
    return Status::invalid_argument("channels: duplicate channel " + quote(duplicate));
  for (auto member : members) {
    const std::string where = "channels." + std::string(member.key);
    ChannelKey channel;
    if (!Id::from(member.key, &channel.name)) {
      return Status::invalid_argument("channels: " + quote(member.key) +
                                      " is not a channel name (1-64 of [A-Za-z0-9_.:-])");
    }
    if (member.key == balance_channel)
      return Status::invalid_argument(where + ": \"balance\" is reserved");
    object fields;
    if (member.value.get_object().get(fields))
      return Status::invalid_argument(where + " must be an object");
    std::string_view pem;
    if (fields["public_key_pem"].get_string().get(pem)) {
      return Status::invalid_argument(where + ".public_key_pem is missing or not a string");
    }
    channel.public_key = pem_public_key(pem);
    if (channel.public_key == nullptr)
      return Status::invalid_argument(where + ".public_key_pem is not a PEM public key");
    if (!EVP_PKEY_is_a(channel.public_key.get(), "RSA"))
      return Status::invalid_argument(where + ": the key is not RSA");
    if (EVP_PKEY_get_bits(channel.public_key.get()) < channel_key_bits_min) {
      return Status::invalid_argument(where + ": the RSA key has fewer than 2048 bits");
    }
    channel.public_key_pem = std::string(pem);
    out->push_back(std::move(channel));
  }
  return Status::ok();
}

// ---- keys_init helpers ----

std::string random_secret_hex() { return random_hex(32); }

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

struct PemPair {
  std::string public_pem;
  std::string private_pem;
};

bool generate_rsa_pair(PemPair* out) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_RSA_gen(2048), EVP_PKEY_free);
  if (key == nullptr) return false;
  std::unique_ptr<BIO, decltype(&BIO_free)> pub(BIO_new(BIO_s_mem()), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> priv(BIO_new(BIO_s_mem()), BIO_free);
  if (pub == nullptr || priv == nullptr) return false;
  if (PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1) return false;
  if (PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return false;
  }
  out->public_pem = bio_text(pub.get());
  out->private_pem = bio_text(priv.get());
  return true;
}

// "cannot <what> <path>: <strerror>", the words `paycore keys` has always printed.
Status file_error(std::string_view what, const std::string& path, int error_number) {
  std::string message = "cannot ";
  message.append(what).append(" ").append(path).append(": ").append(std::strerror(error_number));
  return Status::io_error(std::move(message));
}

// Writes `content` to a new file `path` with mode 0600 and fsyncs it.
Status write_new_file(const std::string& path, std::string_view content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return file_error("create", path, errno);
  std::size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const Status status = file_error("write", path, errno);
      ::close(fd);
      return status;
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const Status status = file_error("fsync", path, errno);
    ::close(fd);
    return status;
  }
  ::close(fd);
  return Status::ok();
}

// Writes through a temporary name and renames: replaces an older file of that name.
Status replace_file(const std::string& path, std::string_view content) {
  const std::string temporary = path + ".tmp";
  ::unlink(temporary.c_str());
  PAYCORE_RETURN_IF_ERROR(write_new_file(temporary, content));
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    return file_error("rename", temporary + " to " + path, errno);
  }
  return Status::ok();
}

// Creates `path` with `content` only if it does not exist, atomically: the file appears
// whole or not at all (link(2) refuses to replace).
Status create_file_exclusively(const std::string& path, std::string_view content) {
  const std::string temporary = path + ".tmp";
  ::unlink(temporary.c_str());
  PAYCORE_RETURN_IF_ERROR(write_new_file(temporary, content));
  const int linked = ::link(temporary.c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(temporary.c_str());
  if (linked != 0) return file_error("create", path, link_errno);
  return Status::ok();
}

// The JSON of a development keys file (compact, one line): the operator, the merchants of
// dev_merchant_ids, and `channels`, each a name and its public key PEM.
std::string dev_keys_json(const std::vector<std::pair<std::string_view, std::string>>& channels) {
  std::string json = "{\"operator\":{\"id\":\"operator\",\"secret\":";
  append_json_string(json, random_secret_hex());
  json += "},\"merchants\":{";
  for (std::size_t i = 0; i < std::size(dev_merchant_ids); ++i) {
    if (i > 0) json += ',';
    append_json_string(json, dev_merchant_ids[i]);
    json += ':';
    append_json_string(json, random_secret_hex());
  }
  json += "},\"channels\":{";
  for (std::size_t i = 0; i < channels.size(); ++i) {
    if (i > 0) json += ',';
    append_json_string(json, channels[i].first);
    json += ":{\"public_key_pem\":";
    append_json_string(json, channels[i].second);
    json += '}';
  }
  json += "}}\n";
  return json;
}

}  // namespace

std::shared_ptr<EVP_PKEY> pem_public_key(std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (bio == nullptr) return nullptr;
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) return nullptr;
  return std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free);
}

std::shared_ptr<EVP_PKEY> pem_private_key(std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (bio == nullptr) return nullptr;
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) return nullptr;
  return std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free);
}

const Principal* Keys::find_principal(std::string_view id) const {
  const auto it = std::lower_bound(
      principals_.begin(), principals_.end(), id,
      [](const Principal& principal, std::string_view key) { return principal.id.view() < key; });
  if (it == principals_.end() || it->id.view() != id) return nullptr;
  return &*it;
}

const ChannelKey* Keys::find_channel(std::string_view name) const {
  const auto it = std::lower_bound(
      channels_.begin(), channels_.end(), name,
      [](const ChannelKey& channel, std::string_view key) { return channel.name.view() < key; });
  if (it == channels_.end() || it->name.view() != name) return nullptr;
  return &*it;
}

StatusOr<std::shared_ptr<const Keys>> keys_parse(std::string_view json, std::string_view origin) {
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(json.data(), json.size());
  element root;
  if (const auto error = parser.parse(padded).get(root)) {
    return failure(origin, std::string("not valid JSON: ") + simdjson::error_message(error));
  }
  object top;
  if (root.get_object().get(top)) return failure(origin, "the top level must be a JSON object");
  std::string duplicate;
  if (find_duplicate(top, &duplicate)) return failure(origin, "duplicate key " + quote(duplicate));

  KeysBuilder builder;
  Principal operator_principal;
  element value;
  if (top["operator"].get(value)) return failure(origin, "\"operator\" is missing");
  PAYCORE_RETURN_IF_ERROR(parse_operator(value, &operator_principal).with_context(origin));
  if (top["merchants"].get(value)) return failure(origin, "\"merchants\" is missing");
  PAYCORE_RETURN_IF_ERROR(parse_merchants(value, &builder.principals()).with_context(origin));
  for (const Principal& merchant : builder.principals()) {
    if (merchant.id == operator_principal.id) {
      return failure(origin, "merchant " + quote(merchant.id.view()) +
                                 " has the operator's id; ids must be distinct");
    }
  }
  builder.principals().push_back(std::move(operator_principal));
  if (!top["channels"].get(value)) {  // optional: no external channels
    PAYCORE_RETURN_IF_ERROR(parse_channels(value, &builder.channels()).with_context(origin));
  }
  builder.finish();
  return std::shared_ptr<const Keys>(std::move(builder.keys));
}

StatusOr<std::shared_ptr<const Keys>> keys_load(const std::string& path) {
  simdjson::padded_string text;
  if (const auto error = simdjson::padded_string::load(path).get(text)) {
    return Status::io_error(path + ": cannot read: " + simdjson::error_message(error) + " (" +
                            std::strerror(errno) + ")");
  }
  return keys_parse(std::string_view(text.data(), text.size()), path);
}

StatusOr<KeysInit> keys_init(const std::string& keys_path, const std::string& private_dir) {
  struct stat status {};
  if (::stat(keys_path.c_str(), &status) == 0) {
    return Status::invalid_argument(keys_path + " already exists; not overwriting it");
  }
  if (::mkdir(private_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return file_error("create", private_dir, errno);
  }
  KeysInit made;
  made.keys_path = keys_path;
  std::vector<std::pair<std::string_view, std::string>> channels;
  for (std::string_view channel : dev_channel_names) {
    PemPair pair;
    if (!generate_rsa_pair(&pair)) {
      return Status::io_error("cannot generate an RSA key pair for channel " +
                              std::string(channel));
    }
    const std::string private_path = private_dir + "/" + std::string(channel) + ".private.pem";
    PAYCORE_RETURN_IF_ERROR(replace_file(private_path, pair.private_pem));
    made.private_key_paths.push_back(private_path);
    channels.emplace_back(channel, std::move(pair.public_pem));
  }
  const std::string json = dev_keys_json(channels);
  // What we write must be what we accept.
  const bool accepted = keys_parse(json, keys_path).is_ok();
  PAYCORE_ASSERT(accepted);
  PAYCORE_RETURN_IF_ERROR(create_file_exclusively(keys_path, json));
  return made;
}

}  // namespace paycore::auth
