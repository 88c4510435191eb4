// The public IOWait: its checks, its messages and its calls into the front
// end (front_end.hpp), whose common watch and wait it makes inline.
#include "iowait/iowait.hpp"

#include <string>

#include "detail/messages.hpp"
#include "detail/status.hpp"
#include "factory.hpp"
#include "front_end.hpp"

namespace iowait {

namespace {

using detail::status;

bool valid_interest(Interest i) { return i != Interest::none && (unsigned(i) & ~3u) == 0; }

using detail::call;
using detail::throw_error;

// Out of line, so that the calls that succeed pay nothing for building the
// message (src/detail/messages.hpp: the C API's messages are the same).
[[noreturn, gnu::noinline, gnu::cold]] void fail(status st, const call& c, Backend backend) {
    throw_error(st.code(), c, to_string(backend));
}

}  // namespace

IOWait::IOWait() {
    std::error_code ec;
    std::string why;
    auto be = detail::make_best_backend(ec, why);
    if (!be) [[unlikely]] {
        const std::string op = why.empty() ? "IOWait()" : "IOWait() with " + why;
        throw_error(ec, {op}, {});
    } else {
        // An else, not the code after the block: cppcheck does not see that
        // throw_error() given a braced argument does not return.
        backend_ = be->kind();
    }
    impl_ = std::make_unique<impl>(std::move(be), ec, why);
    if (ec) throw_error(ec, {why.empty() ? "IOWait()" : "IOWait() (" + why + ")"}, to_string(backend_));
}

IOWait::IOWait(Backend backend) : backend_(backend) {
    std::error_code ec;
    std::string why;  // what the kernel refused, where the backend can say (io_uring)
    auto be = detail::make_backend(backend, ec, why);
    if (!be && !why.empty() && ec.category() == iowait_category())
        throw usage_error(
            ec, "iowait: IOWait(Backend) on " + std::string(to_string(backend)) + ": " + ec.message() + ": " + why);
    // A kernel limit the backend could explain (select's own wake-up fd, X2).
    if (!be && !why.empty()) throw_error(ec, {"IOWait(Backend) (" + why + ")"}, to_string(backend));
    if (!be) throw_error(ec, {"IOWait(Backend)"}, to_string(backend));
    impl_ = std::make_unique<impl>(std::move(be), ec, why);
    if (ec) throw_error(ec, {why.empty() ? "IOWait(Backend)" : "IOWait(Backend) (" + why + ")"}, to_string(backend));
}

IOWait::IOWait(std::error_code& ec) noexcept : backend_(Backend::epoll) {
    ec.clear();
    try {
        std::string why;
        auto be = detail::make_best_backend(ec, why);
        if (!be) return;
        backend_ = be->kind();
        auto made = std::make_unique<impl>(std::move(be), ec, why);
        if (!ec) impl_ = std::move(made);
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
    }
}

IOWait::IOWait(Backend backend, std::error_code& ec) noexcept : backend_(backend) {
    ec.clear();
    try {
        std::string why;
        auto be = detail::make_backend(backend, ec, why);
        if (!be) return;
        auto made = std::make_unique<impl>(std::move(be), ec, why);
        if (!ec) impl_ = std::move(made);
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
    }
}

IOWait::~IOWait() = default;
IOWait::IOWait(IOWait&&) noexcept = default;
IOWait& IOWait::operator=(IOWait&&) noexcept = default;

std::vector<Backend> IOWait::available_backends() { return detail::available(); }

std::vector<Backend> IOWait::available_backends(std::error_code& ec) noexcept {
    ec.clear();
    try {
        return detail::available();
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
        return {};
    }
}

// The checks that need no lock and no kernel, shared by watch and modify.
static status check_args(native_handle fd, Interest interest) noexcept {
    if (fd == native_handle(-1) || std::int64_t(fd) < 0) return errc::bad_fd;
    if (!valid_interest(interest)) return errc::bad_interest;
    return {};
}

// Moved from, forked, or bad arguments: the checks before the lock.
// A template only because impl is private: the type is deduced, not named.
template <class Impl>
static status usable(const Impl* impl, native_handle fd, Interest interest) noexcept {
    if (!impl) return errc::moved_from;
    if (impl->forked()) [[unlikely]]
        return errc::forked;
    return check_args(fd, interest);
}

// The throwing overloads go straight to the status, so that a call that
// succeeds makes no std::error_code at all.
// The general path of watch, out of line: every check, every backend, every error.
template <class Impl>
[[gnu::noinline]] static status watch_general(Impl* impl, native_handle fd, Interest interest, std::uint64_t data,
                                              Mode mode) noexcept {
    status st = usable(impl, fd, interest);
    if (!st) st = impl->watch(fd, interest, data, mode);
    return st;
}

template <class Impl>
[[gnu::noinline]] static void watch_or_throw(Impl* impl, Backend backend, native_handle fd, Interest interest,
                                             std::uint64_t data, Mode mode) {
    if (status st = watch_general(impl, fd, interest, data, mode)) fail(st, detail::fd_call("watch", fd), backend);
}

void IOWait::watch(native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
#ifdef __linux__
    // The general path takes the impl, not this, so that the fast path
    // keeps one pointer fewer across its system call.
    if (impl* p = impl_.get())
        return p->watch_fast(fd, interest, data, mode, [p](native_handle f, Interest i, std::uint64_t d, Mode m) {
            watch_or_throw(p, p->kind, f, i, d, m);
        });
#endif
    watch_or_throw(impl_.get(), backend_, fd, interest, data, mode);
}

void IOWait::watch(native_handle fd, Interest interest, std::uint64_t data, Mode mode, std::error_code& ec) noexcept {
#ifdef __linux__
    if (impl* p = impl_.get()) {
        ec =
            p->watch_fast(fd, interest, data, mode, [p](native_handle f, Interest i, std::uint64_t d, Mode m) noexcept {
                 return watch_general(p, f, i, d, m);
             }).code();
        return;
    }
#endif
    ec = watch_general(impl_.get(), fd, interest, data, mode).code();
}

void IOWait::watch(native_handle fd, Interest interest, std::uint64_t data, std::error_code& ec) noexcept {
    watch(fd, interest, data, Mode::level, ec);
}

// A source id (negative) goes to the sources; any other value is a fd.
template <class Impl>  // IOWait::impl, private: named through the deduction
static status modify_any(Impl* impl, native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
    if (!impl) return errc::moved_from;
    if (impl->forked()) [[unlikely]]
        return errc::forked;
    if (detail::is_source_id(fd))
        return impl->on_sources([&](detail::sources& s) { return s.modify(fd, interest, data, mode); });
    if (auto st = check_args(fd, interest)) return st;
    return impl->modify(fd, interest, data, mode);
}

template <class Impl>
static status unwatch_any(Impl* impl, native_handle fd) {
    if (!impl) return errc::moved_from;
    if (impl->forked()) [[unlikely]]
        return errc::forked;
    if (detail::is_source_id(fd)) return impl->on_sources([&](detail::sources& s) { return s.unwatch(fd); });
    if (auto st = check_args(fd, Interest::read)) return st;
    return impl->unwatch(fd);
}

void IOWait::modify(native_handle fd, Interest interest, std::uint64_t data, Mode mode) {
    if (auto st = modify_any(impl_.get(), fd, interest, data, mode)) fail(st, detail::fd_call("modify", fd), backend_);
}

void IOWait::modify(native_handle fd, Interest interest, std::uint64_t data, Mode mode, std::error_code& ec) noexcept {
    ec = modify_any(impl_.get(), fd, interest, data, mode).code();
}

void IOWait::modify(native_handle fd, Interest interest, std::uint64_t data, std::error_code& ec) noexcept {
    modify(fd, interest, data, Mode::level, ec);
}

bool IOWait::supports(Mode mode) const noexcept { return impl_ && impl_->supports(mode); }

void IOWait::unwatch(native_handle fd, std::error_code& ec) noexcept { ec = unwatch_any(impl_.get(), fd).code(); }

void IOWait::unwatch(native_handle fd) {
    if (auto st = unwatch_any(impl_.get(), fd)) fail(st, detail::fd_call("unwatch", fd), backend_);
}

native_handle IOWait::watch_signal(int signo, std::uint64_t data, Mode mode, std::error_code& ec) noexcept {
    native_handle id = -1;
    const status st =
        !impl_ ? status(errc::moved_from)
               : impl_->on_sources([&](detail::sources& s) { return s.watch_signal(signo, data, mode, id); });
    ec = st.code();
    return st ? native_handle(-1) : id;
}

native_handle IOWait::watch_signal(int signo, std::uint64_t data, Mode mode) {
    std::error_code ec;
    const native_handle id = watch_signal(signo, data, mode, ec);
    if (ec) fail(ec, {"watch_signal", "signo", signo}, backend_);
    return id;
}

native_handle IOWait::watch_process(std::int64_t pid, std::uint64_t data, std::error_code& ec) noexcept {
    native_handle id = -1;
    const status st = !impl_ ? status(errc::moved_from)
                             : impl_->on_sources([&](detail::sources& s) { return s.watch_process(pid, data, id); });
    ec = st.code();
    return st ? native_handle(-1) : id;
}

native_handle IOWait::watch_process(std::int64_t pid, std::uint64_t data) {
    std::error_code ec;
    const native_handle id = watch_process(pid, data, ec);
    if (ec) fail(ec, {"watch_process", "pid", pid}, backend_);
    return id;
}

native_handle IOWait::watch_timer_ns(std::int64_t first, std::int64_t period, std::uint64_t data, Mode mode,
                                     std::error_code& ec) noexcept {
    native_handle id = -1;
    const status st =
        !impl_ ? status(errc::moved_from)
               : impl_->on_sources([&](detail::sources& s) { return s.watch_timer(first, period, data, mode, id); });
    ec = st.code();
    return st ? native_handle(-1) : id;
}

native_handle IOWait::watch_timer_ns(std::int64_t first, std::int64_t period, std::uint64_t data, Mode mode) {
    // Not through the error_code overload: a server starts a timer per
    // connection and request, and making the error_code costs a call.
    native_handle id = -1;
    const status st =
        !impl_ ? status(errc::moved_from)
               : impl_->on_sources([&](detail::sources& s) { return s.watch_timer(first, period, data, mode, id); });
    if (st) fail(st, {"watch_timer"}, backend_);
    return id;
}

std::span<const Event> IOWait::wait_ns(std::int64_t timeout_ns, std::error_code& ec) noexcept {
    return wait_ns(timeout_ns < 0 ? -1 : timeout_ns, false, ec);
}

// Each wait hands back the calling thread's own Events in registers (an
// answer): another thread may take over the front end's the moment it ends
// (share()).
std::span<const Event> IOWait::wait_ns(std::int64_t timeout_ns) {
    if (!impl_) fail(errc::moved_from, {"wait"}, backend_);
    const auto a = impl_->run(timeout_ns < 0 ? -1 : timeout_ns, false);
    if (a) fail(a.failure(), {"wait"}, backend_);
    return {a.data, a.size};
}

std::span<const Event> IOWait::wait_ns(std::int64_t timeout_ns, bool return_on_signal, std::error_code& ec) noexcept {
    if (!impl_) {
        ec = make_error_code(errc::moved_from);
        return {};
    }
    const auto a = impl_->run(timeout_ns, return_on_signal);
    ec = a ? a.failure().code() : std::error_code();
    if (a) return {};
    return {a.data, a.size};
}

// The wait without a timeout of both overloads below, and of the C API's:
// its common case inline where the front end has one (front_end.hpp).
template <class Impl>
[[gnu::always_inline]] static inline auto wait_without_timeout(Impl* p) noexcept {
#ifdef __linux__
    return p->wait_fast();
#else
    return p->run(-2, false);
#endif
}

std::span<const Event> IOWait::wait(std::error_code& ec) noexcept {
    impl* const p = impl_.get();
    if (!p) [[unlikely]] {
        ec = make_error_code(errc::moved_from);
        return {};
    }
    const auto a = wait_without_timeout(p);
    ec = a ? a.failure().code() : std::error_code();
    if (a) [[unlikely]]
        return {};
    return {a.data, a.size};
}

std::span<const Event> IOWait::wait() {
    impl* const p = impl_.get();
    if (!p) fail(errc::moved_from, {"wait"}, backend_);
    const auto a = wait_without_timeout(p);
    if (a) [[unlikely]]
        fail(a.failure(), {"wait"}, p->kind);
    return {a.data, a.size};
}

bool IOWait::batch_full() const noexcept { return impl_ && impl_->batch_full(); }

void IOWait::notify(std::error_code& ec) noexcept {
    ec.clear();
    if (!impl_)
        ec = errc::moved_from;
    else if (impl_->forked())
        ec = errc::forked;
    else
        impl_->notify();
}

void IOWait::notify() {
    std::error_code ec;
    notify(ec);
    if (ec) fail(ec, {"notify"}, backend_);
}

}  // namespace iowait
