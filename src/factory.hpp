// Choosing a backend: by name, or the best this kernel accepts.
#pragma once

#include <string>

#include "backend.hpp"

namespace iowait::detail {

// The named backend, or null with ec = errc::backend_unavailable (not built
// in, or refused by the kernel) or the kernel's errno (EMFILE, ENOMEM); `why`
// then says what the kernel refused, where the backend can tell.
std::unique_ptr<backend> make_backend(Backend kind, std::error_code& ec, std::string& why);
// IOWAIT_BACKEND's choice if set, else the first compiled-in backend the
// kernel accepts. On failure `why` may name the environment variable.
std::unique_ptr<backend> make_best_backend(std::error_code& ec, std::string& why);
// The backends that can be created now, best first.
std::vector<Backend> available();

}  // namespace iowait::detail
