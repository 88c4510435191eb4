// select: the oldest interface, everywhere; kept as the last fallback and as
// a check that our rules do not lean on any one kernel's extras.
//
// Mapping: wanted read and write fd_sets, changed under the front end's lock;
// the waiter takes copies in before_wait() (changes during a wait arrive by
// a wake-up, as with poll) and hands pselect() a fresh copy on every call,
// because select() overwrites the sets it is given.
//
// Quirks handled here:
// - A fd at or above FD_SETSIZE would be written past the end of an fd_set:
//   add() refuses it (errc::fd_too_large) instead. Our own waker's fd is no
//   caller's mistake: when every number below FD_SETSIZE is taken, the
//   backend cannot be made (EMFILE, with select_refusal() saying why).
// - select() says only "readable" or "writable". To report hangup and error
//   as the other backends do, the fds it returns are asked once more with a
//   zero-timeout poll(), one call for all of them, made only when some are ready.
// - One closed fd makes the whole call fail with EBADF and says not which:
//   we find it with fcntl(F_GETFD), report it `closed`, and ask again at
//   once about the others, whose readiness the failed call did not report.
// - Oneshot is emulated by the front end (disarm = out of both sets, still
//   watched); edge cannot be told from level with select, so it is refused.
// - pselect() takes a timespec, so timeouts keep nanosecond precision.
#include <fcntl.h>
#include <poll.h>
#include <sys/select.h>

#include "backend.hpp"
#include "detail/sys_error.hpp"
#include "detail/waker.hpp"

#ifndef POLLRDHUP
#define POLLRDHUP 0
#endif

namespace iowait::detail {

namespace {

struct fd_state {
    fd_set read;
    fd_set write;
    fd_set watched;                     // read | write, plus disarmed watches (Interest::none)
    std::vector<int> fds;               // the watched fds, so nothing scans all FD_SETSIZE bits
    std::vector<std::uint64_t> tokens;  // by fd
    int max_fd = -1;
};

class select_backend final : public backend {
public:
    select_backend() {
        FD_ZERO(&wanted_.read);
        FD_ZERO(&wanted_.write);
        FD_ZERO(&wanted_.watched);
        wanted_.tokens.assign(FD_SETSIZE, 0);
    }

    Backend kind() const noexcept override { return Backend::select; }
    bool keys_by_number() const noexcept override { return true; }
    bool changes_need_wakeup() const noexcept override { return true; }

    status add(native_handle fd, Interest interest, Mode, std::uint64_t token) noexcept override {
        if (fd >= FD_SETSIZE) return errc::fd_too_large;
        if (watched(fd)) return sys_error(EEXIST);
        try {
            wanted_.fds.push_back(fd);
        } catch (const std::bad_alloc&) {
            return sys_error(ENOMEM);
        }
        if (fd > wanted_.max_fd) wanted_.max_fd = fd;
        FD_SET(fd, &wanted_.watched);
        set(fd, interest, token);
        return {};
    }

    status modify(native_handle fd, Interest interest, Mode, std::uint64_t token) noexcept override {
        if (fd >= FD_SETSIZE || !watched(fd)) return sys_error(ENOENT);
        set(fd, interest, token);
        return {};
    }

    status remove(native_handle fd) noexcept override {
        if (fd >= FD_SETSIZE || !watched(fd)) return sys_error(ENOENT);
        FD_CLR(fd, &wanted_.read);
        FD_CLR(fd, &wanted_.write);
        FD_CLR(fd, &wanted_.watched);
        std::erase(wanted_.fds, fd);
        wanted_.max_fd = -1;
        for (int f : wanted_.fds) wanted_.max_fd = std::max(wanted_.max_fd, f);
        dirty_ = true;
        return {};
    }

    void before_wait() noexcept override {
        if (!dirty_) return;
        taken_ = wanted_;
        dirty_ = false;
    }

    status wait(const std::timespec* timeout, std::size_t& count) noexcept override {
        closed_.clear();
        details_.clear();
        // Room for every fd of the waiter's copy, taken here: these two are
        // the waiter's own (add() runs beside it), and grow only with the set.
        try {
            closed_.reserve(taken_.fds.size());
            details_.reserve(taken_.fds.size());
        } catch (const std::bad_alloc&) {
            return sys_error(ENOMEM);
        }
        fd_set r = taken_.read, w = taken_.write;
        int n = ::pselect(taken_.max_fd + 1, &r, &w, nullptr, timeout, nullptr);
        if (n < 0 && errno == EBADF) {
            // The closed fd failed the whole call, so the others were not
            // looked at: without a second look a wait(0) would miss them.
            find_closed();
            r = taken_.read;
            w = taken_.write;
            const std::timespec now{};
            n = ::pselect(taken_.max_fd + 1, &r, &w, nullptr, &now, nullptr);
            if (n < 0 && errno == EBADF) n = 0;  // another closed meanwhile: the next wait() finds it
        }
        if (n < 0) return last_error();
        if (n > 0) {
            for (int fd : taken_.fds)
                if (FD_ISSET(fd, &r) || FD_ISSET(fd, &w))
                    details_.push_back({fd, short(FD_ISSET(fd, &taken_.read) ? POLLRDHUP : 0), 0});
            ::poll(details_.data(), details_.size(), 0);  // on failure revents stay 0: no hangup/error detail
            // Readable and writable are select's answer; poll only adds the details.
            for (pollfd& p : details_)
                p.events = short((FD_ISSET(p.fd, &r) ? POLLIN : 0) | (FD_ISSET(p.fd, &w) ? POLLOUT : 0));
        }
        count = details_.size();
        return {};
    }

    void deliver(event_sink& sink) noexcept override {
        for (int fd : closed_) sink.closed(taken_.tokens[fd]);
        for (const pollfd& p : details_) {
            unsigned flags = 0;
            if (p.events & POLLIN) flags |= readable;
            if (p.events & POLLOUT) flags |= writable;
            if (p.revents & (POLLHUP | POLLRDHUP)) flags |= hangup;
            if (p.revents & POLLHUP) flags |= write_closed;
            if (p.revents & POLLERR) flags |= error;
            sink.deliver(taken_.tokens[p.fd], flags);
        }
    }

private:
    bool watched(int fd) const { return FD_ISSET(fd, &wanted_.watched); }

    void set(int fd, Interest interest, std::uint64_t token) {
        FD_CLR(fd, &wanted_.read);
        FD_CLR(fd, &wanted_.write);
        if (has(interest, Interest::read)) FD_SET(fd, &wanted_.read);
        if (has(interest, Interest::write)) FD_SET(fd, &wanted_.write);
        wanted_.tokens[fd] = token;
        dirty_ = true;
    }

    // Also takes them out of the waiter's copy, for the second look.
    void find_closed() noexcept {
        for (int fd : taken_.fds)
            if ((FD_ISSET(fd, &taken_.read) || FD_ISSET(fd, &taken_.write)) && ::fcntl(fd, F_GETFD) < 0 &&
                errno == EBADF) {
                closed_.push_back(fd);  // capacity reserved in wait(): cannot throw
                FD_CLR(fd, &taken_.read);
                FD_CLR(fd, &taken_.write);
            }
    }

    fd_state wanted_;
    fd_state taken_;               // the waiter's copy
    std::vector<pollfd> details_;  // the fds select() returned, with poll()'s details
    std::vector<int> closed_;      // the fds found closed by the last wait
    bool dirty_ = true;
};

}  // namespace

namespace {
thread_local const char* refusal = "";
}

std::string select_refusal() { return refusal; }

// The front end's waker, made right after this, takes the lowest free fd
// number; at or above FD_SETSIZE select() could never watch it. A probe of
// the same kind says now whether a lower number is free (X2), so that
// available_backends() leaves select out when it cannot be made; the front
// end checks the waker itself too (another thread may take the number).
std::unique_ptr<backend> make_select_backend(std::error_code& ec) {
    refusal = "";
    {
        waker probe(ec);
        if (ec) return nullptr;
        if (probe.fd() >= FD_SETSIZE) {
            ec = sys_error(EMFILE);
            refusal = select_waker_refusal;
            return nullptr;
        }
    }
    return std::make_unique<select_backend>();
}

}  // namespace iowait::detail
