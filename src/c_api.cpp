// The C API (include/iowait/iowait.h) over the public C++ API: each call
// forwards to the error_code overload of iowait::IOWait and turns the
// error_code into an int; the constructors are called in their throwing
// form, whose message says why a backend was refused, and caught. Messages
// are the C++ ones (src/detail/messages.hpp). No exception leaves this file.
#include "iowait/iowait.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "detail/file_identity.hpp"
#include "detail/messages.hpp"
#include "detail/thread_key.hpp"
#include "iowait/iowait.hpp"
#include "sources.hpp"

// The C names are the C++ values: one list of each, checked here.
static_assert(std::is_same_v<iowait_fd, iowait::native_handle>);
static_assert(IOWAIT_READ == unsigned(iowait::Interest::read) && IOWAIT_WRITE == unsigned(iowait::Interest::write));
static_assert(IOWAIT_LEVEL == int(iowait::Mode::level) && IOWAIT_ONESHOT == int(iowait::Mode::oneshot) &&
              IOWAIT_EDGE == int(iowait::Mode::edge));
static_assert(IOWAIT_BACKEND_EPOLL == int(iowait::Backend::epoll) &&
              IOWAIT_BACKEND_IO_URING == int(iowait::Backend::io_uring) &&
              IOWAIT_BACKEND_POLL == int(iowait::Backend::poll) &&
              IOWAIT_BACKEND_SELECT == int(iowait::Backend::select) &&
              IOWAIT_BACKEND_KQUEUE == int(iowait::Backend::kqueue) &&
              IOWAIT_BACKEND_AFD == int(iowait::Backend::afd) &&
              IOWAIT_BACKEND_WSAPOLL == int(iowait::Backend::wsapoll));
static_assert(IOWAIT_E_ALREADY_WATCHED == -10000 - int(iowait::errc::already_watched) &&
              IOWAIT_E_NOT_WATCHED == -10000 - int(iowait::errc::not_watched) &&
              IOWAIT_E_BAD_FD == -10000 - int(iowait::errc::bad_fd) &&
              IOWAIT_E_BAD_INTEREST == -10000 - int(iowait::errc::bad_interest) &&
              IOWAIT_E_FD_TOO_LARGE == -10000 - int(iowait::errc::fd_too_large) &&
              IOWAIT_E_BAD_TIMEOUT == -10000 - int(iowait::errc::bad_timeout) &&
              IOWAIT_E_BACKEND_UNAVAILABLE == -10000 - int(iowait::errc::backend_unavailable) &&
              IOWAIT_E_UNKNOWN_BACKEND == -10000 - int(iowait::errc::unknown_backend) &&
              IOWAIT_E_WAIT_IN_PROGRESS == -10000 - int(iowait::errc::wait_in_progress) &&
              IOWAIT_E_UNSUPPORTED_MODE == -10000 - int(iowait::errc::unsupported_mode) &&
              IOWAIT_E_MOVED_FROM == -10000 - int(iowait::errc::moved_from));

// An event of a batch that did not fit the caller's array, and the file its
// fd named when the kernel reported it.
struct leftover {
    iowait_event event;  // events == 0: taken out (unwatched, masked by modify)
    iowait::detail::file_identity id;
};

// The rest of one thread's batch that did not fit its array, for that
// thread's next iowait_wait() (several threads may wait: each has its own,
// as each has its own Events in C++). rest.capacity() stays above the number
// of watched fds (one event per fd per wait), so storing a rest never
// allocates. Before it is handed out, each is checked as the front end
// checks a fresh batch: its watch is still the same (unwatch and modify edit
// the rest) and its fd still names the file that was reported (C1, C3), or
// it is dropped.
struct thread_rest {
    std::uintptr_t thread = 0;  // iowait::detail::thread_key()
    std::vector<leftover> rest;
    std::size_t next = 0;  // the first of rest not handed out
};

// The handle. unwatch and modify, from any thread, edit every rest under `mu`.
struct iowait_handle {
    explicit iowait_handle(iowait::IOWait&& w) : cxx(std::move(w)) {}
    iowait::IOWait cxx;
    std::atomic<int> rests{0};  // threads with a rest not yet handed out; read without the lock
    std::mutex mu;              // guards threads, watched
    std::vector<thread_rest> threads;
    std::size_t watched = 0;
};

using iowait::detail::fd_call;

namespace {

constexpr int errc_base = 10000;
[[maybe_unused]] constexpr int windows_base = 100000;  // used by the Windows error mapping only

// The message of the last failed call in this thread (iowait_last_error).
thread_local std::string last_message;
thread_local const char* last_error = "";
// What iowait_strerror() returned last in this thread.
thread_local std::string strerror_message;

int to_code(std::error_code ec) noexcept {
    if (!ec) return 0;
    const int v = ec.value();
    if (ec.category() == iowait::iowait_category()) return v > 0 && v < 1000 ? -(errc_base + v) : IOWAIT_E_UNKNOWN;
#ifdef _WIN32
    if (ec.category() == std::system_category())
        return v > 0 && v < INT_MAX - windows_base ? -(windows_base + v) : IOWAIT_E_UNKNOWN;
#else
    // POSIX's system_category() holds errno values too.
    if (ec.category() == std::system_category() && v > 0 && v < errc_base) return -v;
#endif
    if (ec.category() == std::generic_category() && v > 0 && v < errc_base) return -v;
    return IOWAIT_E_UNKNOWN;
}

std::error_code from_code(int code) noexcept {
    if (code <= -1 && code > -errc_base) return {-code, std::generic_category()};
    if (code < -errc_base && code > IOWAIT_E_UNKNOWN) return {-code - errc_base, iowait::iowait_category()};
#ifdef _WIN32
    if (code < -windows_base) return {-code - windows_base, std::system_category()};
#endif
    return {};
}

// Records what the C++ API would have thrown for the same failure (one
// source for both: src/detail/messages.hpp), with the C API's own detail
// after it, and returns the code.
int fail(std::error_code ec, const iowait::detail::call& c, const iowait_t* w, const char* detail = nullptr) {
    try {
        std::string what =
            iowait::detail::error_message(ec, c, w ? iowait::to_string(w->cxx.backend()) : std::string_view{});
        if (detail) what += std::string(" (") + detail + ")";
        last_message = std::move(what);
        last_error = last_message.c_str();
    } catch (...) {
        last_error = "iowait: out of memory while describing an error";
    }
    return to_code(ec);
}

int fail(int code, const char* what) noexcept {
    try {
        last_message = what;
        last_error = last_message.c_str();
    } catch (...) {
        last_error = "iowait: out of memory while describing an error";
    }
    return code;
}

// An enum parameter as the int the C caller passed. C lets any int through
// an enum; in C++ a value outside the enumerators' range may not be read as
// the enum (UBSan's -fsanitize=enum says so), so its bytes are copied.
template <class Enum>
int as_int(const Enum& e) noexcept {
    static_assert(sizeof(Enum) == sizeof(int));
    int v;
    std::memcpy(&v, &e, sizeof v);
    return v;
}

std::error_code invalid() noexcept { return std::make_error_code(std::errc::invalid_argument); }
std::error_code no_memory() noexcept { return std::make_error_code(std::errc::not_enough_memory); }

iowait_event to_c(const iowait::Event& e) noexcept {
    return {e.fd,
            (e.read ? IOWAIT_READ : 0u) | (e.write ? IOWAIT_WRITE : 0u) | (e.hangup ? IOWAIT_HANGUP : 0u) |
                (e.error ? IOWAIT_ERROR : 0u),
            e.data};
}

template <class Make>
int create(iowait_t** out, const char* op, Make make) noexcept {
    if (!out) return fail(invalid(), {op}, nullptr, "out is NULL");
    *out = nullptr;
    try {
        *out = new iowait_handle(make());
        return 0;
    } catch (const iowait::usage_error& e) {
        return fail(to_code(e.code()), e.what());
    } catch (const std::system_error& e) {
        return fail(to_code(e.code()), e.what());
    } catch (const std::bad_alloc&) {
        return fail(no_memory(), {op}, nullptr);
    } catch (const std::exception& e) {
        return fail(IOWAIT_E_UNKNOWN, e.what());
    } catch (...) {
        return fail(IOWAIT_E_UNKNOWN, "iowait: unknown exception");
    }
}

// The file an event's fd names now; false for a fd that is not open. A
// source's id names no file: always true, with an empty identity.
bool file_of(iowait_fd fd, iowait::detail::file_identity& id) noexcept {
    id = {};
    return iowait::detail::is_source_id(fd) || !iowait::detail::identify(fd, id);
}

// Whether a kept event may still be handed out: its fd names the file it
// named when the kernel reported it (one fstat; getsockopt on Windows).
bool still_names_its_file(const leftover& l) noexcept {
    iowait::detail::file_identity now;
    return file_of(l.event.fd, now) && now == l.id;
}

// Room for one more watch's event in every thread's rest, under mu.
bool make_room(iowait_t* w) noexcept {
    try {
        for (thread_rest& t : w->threads)
            if (t.rest.capacity() <= w->watched) t.rest.reserve(std::max<std::size_t>(16, 2 * t.rest.capacity()));
        return true;
    } catch (const std::bad_alloc&) {
        return false;
    }
}

// The calling thread's rest, made (with room for every watch) by its first
// wait that needs one; null if out of memory. Under mu.
thread_rest* rest_of_this_thread(iowait_t* w) noexcept {
    const std::uintptr_t me = iowait::detail::thread_key();
    for (thread_rest& t : w->threads)
        if (t.thread == me) return &t;
    try {
        thread_rest t;
        t.thread = me;
        t.rest.reserve(std::max<std::size_t>(16, 2 * w->watched));
        w->threads.push_back(std::move(t));
        return &w->threads.back();
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}

// Hands out the rest of this thread's last batch; 0 if there is none left. Under mu.
std::size_t take_rest(iowait_t* w, thread_rest& t, iowait_event* events, std::size_t capacity) noexcept {
    std::size_t n = 0;
    for (; n < capacity && t.next < t.rest.size(); ++t.next)
        if (const leftover& l = t.rest[t.next]; l.event.events && still_names_its_file(l)) events[n++] = l.event;
    while (t.next < t.rest.size() && !t.rest[t.next].event.events) ++t.next;
    if (t.next == t.rest.size() && !t.rest.empty()) {
        t.rest.clear();  // keeps its capacity
        t.next = 0;
        w->rests.fetch_sub(1, std::memory_order_relaxed);
    }
    return n;
}

int wait(iowait_t* w, iowait_event* events, std::size_t capacity, std::int64_t timeout_ns, bool or_signal) noexcept {
    const char* op = or_signal ? "wait_or_signal" : "wait";
    if (!w) return fail(invalid(), {op}, nullptr, "NULL handle");
    if (!events || !capacity) return fail(invalid(), {op}, w, "events is NULL or capacity is 0");
    capacity = std::min<std::size_t>(capacity, INT_MAX);

    if (w->rests.load(std::memory_order_acquire) != 0) {
        std::lock_guard lock(w->mu);
        if (thread_rest* t = rest_of_this_thread(w))
            if (const std::size_t n = take_rest(w, *t, events, capacity)) return int(n);
    }

    std::error_code ec;
    std::span<const iowait::Event> got;
    const std::chrono::nanoseconds timeout(timeout_ns);
    if (or_signal)
        got = timeout_ns < 0 ? w->cxx.wait_or_signal(ec) : w->cxx.wait_or_signal(timeout, ec);
    else
        got = timeout_ns < 0 ? w->cxx.wait(ec) : w->cxx.wait(timeout, ec);
    if (ec) return fail(ec, {op}, w);

    const std::size_t n = std::min(got.size(), capacity);
    for (std::size_t i = 0; i < n; ++i) events[i] = to_c(got[i]);
    if (got.size() > n) {
        std::lock_guard lock(w->mu);
        thread_rest* t = rest_of_this_thread(w);
        if (!t) return int(n);  // out of memory: the rest is lost, as if the array had been the batch
        // This thread's rest is empty here (a wait that found one returned
        // it above), and its capacity covers every watched fd: push_back
        // cannot throw. The file each fd names as the kernel reported it,
        // for take_rest().
        for (std::size_t i = n; i < got.size(); ++i)
            if (leftover l{to_c(got[i]), {}}; file_of(l.event.fd, l.id)) t->rest.push_back(l);
        if (!t->rest.empty()) w->rests.fetch_add(1, std::memory_order_release);
    }
    return int(n);
}

}  // namespace

// A source gets room in rest like a fd, before it exists.
template <class Make>
int watch_source(iowait_t* w, const iowait::detail::call& op, iowait_fd* id, Make make) {
    if (!w || !id) return fail(invalid(), op, w, !w ? "NULL handle" : "NULL id");
    std::lock_guard lock(w->mu);
    if (!make_room(w)) return fail(no_memory(), op, w);
    std::error_code ec;
    const iowait::native_handle made = make(ec);
    if (ec) return fail(ec, op, w);
    *id = made;
    ++w->watched;
    return 0;
}

extern "C" {

int iowait_create(iowait_t** out) {
    return create(out, "IOWait()", [] { return iowait::IOWait(); });
}

int iowait_create_backend(iowait_t** out, iowait_backend backend) {
    const int b = as_int(backend);
    return create(out, "IOWait(Backend)", [b] { return iowait::IOWait(iowait::Backend(b)); });
}

void iowait_destroy(iowait_t* w) { delete w; }

int iowait_watch(iowait_t* w, iowait_fd fd, uint32_t interest, uint64_t data, iowait_mode mode) {
    if (!w) return fail(invalid(), fd_call("watch", fd), nullptr, "NULL handle");
    std::lock_guard lock(w->mu);
    // Room in every rest for one more fd's event, before the watch exists.
    if (!make_room(w)) return fail(no_memory(), fd_call("watch", fd), w);
    std::error_code ec;
    w->cxx.watch(fd, iowait::Interest(interest), data, iowait::Mode(as_int(mode)), ec);
    if (ec) return fail(ec, fd_call("watch", fd), w);
    ++w->watched;
    return 0;
}

int iowait_watch_signal(iowait_t* w, int signo, uint64_t data, iowait_mode mode, iowait_fd* id) {
    return watch_source(w, {"watch_signal", "signo", signo}, id, [&](std::error_code& ec) {
        return w->cxx.watch_signal(signo, data, iowait::Mode(as_int(mode)), ec);
    });
}

int iowait_watch_process(iowait_t* w, int64_t pid, uint64_t data, iowait_fd* id) {
    return watch_source(w, {"watch_process", "pid", pid}, id,
                        [&](std::error_code& ec) { return w->cxx.watch_process(pid, data, ec); });
}

int iowait_watch_timer(iowait_t* w, int64_t first_ns, int64_t period_ns, uint64_t data, iowait_mode mode,
                       iowait_fd* id) {
    return watch_source(w, {"watch_timer"}, id, [&](std::error_code& ec) {
        return w->cxx.watch_timer(std::chrono::nanoseconds(first_ns), std::chrono::nanoseconds(period_ns), data,
                                  iowait::Mode(as_int(mode)), ec);
    });
}

int iowait_modify(iowait_t* w, iowait_fd fd, uint32_t interest, uint64_t data, iowait_mode mode) {
    if (!w) return fail(invalid(), fd_call("modify", fd), nullptr, "NULL handle");
    std::lock_guard lock(w->mu);
    std::error_code ec;
    w->cxx.modify(fd, iowait::Interest(interest), data, iowait::Mode(as_int(mode)), ec);
    if (ec) return fail(ec, fd_call("modify", fd), w);
    // The rest reports the fd as the new watch would: its data, its interests.
    // Linear in the rest, which is short unless a big batch met a small array.
    if (w->rests.load(std::memory_order_relaxed) != 0)
        for (thread_rest& t : w->threads)
            for (std::size_t i = t.next; i < t.rest.size(); ++i) {
                iowait_event& e = t.rest[i].event;
                if (e.fd != fd || !e.events) continue;
                e.data = data;
                e.events &= interest | IOWAIT_HANGUP | IOWAIT_ERROR;
                if (!(e.events & (IOWAIT_READ | IOWAIT_WRITE))) e.events = 0;
            }
    return 0;
}

int iowait_unwatch(iowait_t* w, iowait_fd fd) {
    if (!w) return fail(invalid(), fd_call("unwatch", fd), nullptr, "NULL handle");
    std::lock_guard lock(w->mu);
    std::error_code ec;
    w->cxx.unwatch(fd, ec);
    if (ec) return fail(ec, fd_call("unwatch", fd), w);
    --w->watched;
    if (w->rests.load(std::memory_order_relaxed) != 0)
        for (thread_rest& t : w->threads)
            for (std::size_t i = t.next; i < t.rest.size(); ++i)
                if (t.rest[i].event.fd == fd) t.rest[i].event.events = 0;
    return 0;
}

int iowait_wait(iowait_t* w, iowait_event* events, size_t capacity, int64_t timeout_ns) {
    return wait(w, events, capacity, timeout_ns, false);
}

int iowait_wait_or_signal(iowait_t* w, iowait_event* events, size_t capacity, int64_t timeout_ns) {
    return wait(w, events, capacity, timeout_ns, true);
}

int iowait_notify(iowait_t* w) {
    if (!w) return fail(invalid(), {"notify"}, nullptr, "NULL handle");
    std::error_code ec;
    w->cxx.notify(ec);
    return ec ? fail(ec, {"notify"}, w) : 0;
}

iowait_backend iowait_get_backend(const iowait_t* w) {
    return w ? iowait_backend(w->cxx.backend()) : IOWAIT_BACKEND_NONE;
}

int iowait_supports(const iowait_t* w, iowait_mode mode) { return w && w->cxx.supports(iowait::Mode(as_int(mode))); }

int iowait_available_backends(iowait_backend* out, size_t capacity) {
    if (!out && capacity) return fail(invalid(), {"available_backends"}, nullptr, "out is NULL");
    try {
        const auto all = iowait::IOWait::available_backends();
        for (std::size_t i = 0; i < all.size() && i < capacity; ++i) out[i] = iowait_backend(all[i]);
        return int(all.size());
    } catch (const std::bad_alloc&) {
        return fail(no_memory(), {"available_backends"}, nullptr);
    } catch (...) {
        return fail(IOWAIT_E_UNKNOWN, "iowait: available_backends: unknown exception");
    }
}

// The names are string literals (src/errors.cpp), hence NUL-terminated.
const char* iowait_backend_name(iowait_backend backend) {
    return iowait::to_string(iowait::Backend(as_int(backend))).data();
}

int iowait_backend_from_name(const char* name, iowait_backend* out) {
    if (!name || !out) return fail(invalid(), {"backend_from_name"}, nullptr, "NULL argument");
    for (int b = IOWAIT_BACKEND_EPOLL; b <= IOWAIT_BACKEND_WSAPOLL; ++b)
        if (iowait::to_string(iowait::Backend(b)) == name) {
            *out = iowait_backend(b);
            return 0;
        }
    return fail(iowait::errc::unknown_backend, {"backend_from_name"}, nullptr, name);
}

const char* iowait_strerror(int code) {
    std::string& message = strerror_message;
    try {
        if (code == IOWAIT_E_UNKNOWN)
            message = "unknown error (iowait_last_error() has its message)";
        else if (const std::error_code ec = from_code(code); ec || code == 0)
            message = code == 0 ? "success" : ec.message();
        else
            message = "not an iowait error code: " + std::to_string(code);
        return message.c_str();
    } catch (...) {
        return "iowait: out of memory while describing an error";
    }
}

const char* iowait_last_error(void) { return last_error; }

}  // extern "C"
