#pragma once
// The HTTP status of a core result (docs/api.md "Errors"): HTTP is net's business, so the
// mapping lives here and the core only knows its ResultCodes.

#include "core/command.hpp"
#include "core/result.hpp"

namespace paycore::net {

/// The status code of a result with `code` for a command of `kind`: 201 for a created
/// resource (account, payment, refund, mandate), 200 for any other success, and the status
/// docs/api.md gives each refusal (400, 402, 403, 404, 409, 422, 503, 507); 500 for a code
/// this table does not know.
int http_status(ResultCode code, CommandKind kind);

}  // namespace paycore::net
