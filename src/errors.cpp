// The error category for misuse, the messages of failed calls, and the
// names of the backends.
#include "iowait/iowait.hpp"

#include "detail/messages.hpp"
#include "sources.hpp"

namespace iowait {

namespace {
class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "iowait"; }
    std::string message(int code) const override {
        switch (errc(code)) {
        case errc::already_watched:
            return "already watched (a fd closed without unwatch() stays watched until unwatch())";
        case errc::not_watched: return "not watched";
        case errc::bad_fd: return "negative file descriptor";
        case errc::bad_interest: return "interest must be read, write or read|write";
        case errc::fd_too_large: return "fd is at or above FD_SETSIZE, which select() cannot watch";
        case errc::bad_timeout: return "timeout is negative, NaN, or too large for nanoseconds";
        case errc::backend_unavailable: return "backend not available in this build or refused by the kernel";
        case errc::unknown_backend: return "IOWAIT_BACKEND names no available backend";
        case errc::wait_in_progress: return "wait() from inside this thread's own wait() on the object";
        case errc::moved_from: return "use of a moved-from IOWait";
        case errc::unsupported_mode: return "this backend cannot honour that mode (see IOWait::supports)";
        case errc::forked:
            return "this IOWait was created in the parent process and cannot be used after fork(): "
                   "make a new one in the child";
        case errc::unsupported_source:
            return "this platform has no such source (Windows: signals other than SIGINT and SIGBREAK)";
        }
        return "unknown iowait error";
    }
    // So that generic code can test e.g. ec == std::errc::file_exists.
    std::error_condition default_error_condition(int code) const noexcept override {
        switch (errc(code)) {
        case errc::already_watched: return std::errc::file_exists;
        case errc::not_watched: return std::errc::no_such_file_or_directory;
        case errc::bad_fd: return std::errc::bad_file_descriptor;
        case errc::backend_unavailable: return std::errc::function_not_supported;
        case errc::wait_in_progress: return std::errc::device_or_resource_busy;
        case errc::unsupported_mode: return std::errc::operation_not_supported;
        case errc::forked: return std::errc::operation_not_permitted;
        case errc::unsupported_source: return std::errc::operation_not_supported;
        default: return std::errc::invalid_argument;
        }
    }
};
}  // namespace

const char* usage_error::what() const noexcept { return std::invalid_argument::what(); }

namespace detail {

namespace {

// "iowait: op(arg=value) on backend", to which each exception adds ": " and ec's message.
std::string prefix(const call& c, std::string_view backend) {
    std::string what = "iowait: ";
    what += c.op;
    if (c.arg) {
        const bool source = std::string_view(c.arg) == "fd" && is_source_id(native_handle(c.value));
        what += "(";
        what += source ? "source" : c.arg;
        // Appended piece by piece: "=" + std::to_string() makes gcc 12's
        // -Wrestrict warn about a memcpy of its own (a false positive, -O2).
        what += '=';
        what += std::to_string(c.value);
        what += ')';
    }
    if (!backend.empty()) {
        what += " on ";
        what += backend;
    }
    return what;
}

}  // namespace

// The exception is made here too, so that its what() is the text, whatever
// the standard library's system_error makes of its arguments.
std::string error_message(std::error_code ec, const call& c, std::string_view backend) {
    if (ec.category() == iowait_category()) return usage_error(ec, prefix(c, backend) + ": " + ec.message()).what();
    return std::system_error(ec, prefix(c, backend)).what();
}

void throw_error(std::error_code ec, const call& c, std::string_view backend) {
    if (ec.category() == iowait_category()) throw usage_error(ec, prefix(c, backend) + ": " + ec.message());
    throw std::system_error(ec, prefix(c, backend));
}

}  // namespace detail

const std::error_category& iowait_category() noexcept {
    static const category instance;
    return instance;
}

std::string_view to_string(Backend b) noexcept {
    switch (b) {
    case Backend::epoll: return "epoll";
    case Backend::io_uring: return "io_uring";
    case Backend::poll: return "poll";
    case Backend::select: return "select";
    case Backend::kqueue: return "kqueue";
    case Backend::afd: return "afd";
    case Backend::wsapoll: return "wsapoll";
    }
    return "unknown";
}

std::string_view to_string(Mode m) noexcept {
    switch (m) {
    case Mode::level: return "level";
    case Mode::oneshot: return "oneshot";
    case Mode::edge: return "edge";
    }
    return "unknown";
}

}  // namespace iowait
