// poll: POSIX's array-of-fds interface; the fallback where epoll is missing
// or refused, and a reference behaviour for the others.
//
// Mapping: the backend keeps the wanted pollfd array (changed under the front
// end's lock) and waits on a copy taken in before_wait(), because another
// thread may change the wanted array while the kernel reads the copy. The
// copy is taken only when something changed. A change during a wait reaches
// the kernel when the front end wakes the waiter (changes_need_wakeup).
//
// Quirks handled here:
// - ppoll() takes a timespec, so timeouts keep nanosecond precision.
// - POLLNVAL means the fd was closed: it is reported as `closed`, and the
//   front end drops it; left in the array it would make every poll return
//   at once (a busy loop).
// - poll keys by fd number, so a number closed and reused would report the
//   new file: keys_by_number() makes the front end check identity first.
// - Oneshot is emulated by the front end (disarm = a negative fd); edge
//   cannot be told from level with poll, so it is refused, not faked.
// - POLLRDHUP (Linux) is asked for with read interest so that a peer's
//   shutdown(SHUT_WR) is a hangup, as with epoll's EPOLLRDHUP.
#include <poll.h>

#include "backend.hpp"
#include "backends/poll_flags.hpp"
#include "detail/sys_error.hpp"

namespace iowait::detail {

namespace {

// A disarmed watch (Interest::none) keeps its place with a negative fd,
// which poll() skips: with events = 0 it would still report POLLHUP/POLLERR.
int disarmed(int fd) { return ~fd; }
int real_fd(int pfd) { return pfd < 0 ? ~pfd : pfd; }

short to_poll(Interest interest) {
    short ev = 0;
    if (has(interest, Interest::read)) ev |= POLLIN | POLLRDHUP;
    if (has(interest, Interest::write)) ev |= POLLOUT;
    return ev;
}

class poll_backend final : public backend {
public:
    Backend kind() const noexcept override { return Backend::poll; }
    bool keys_by_number() const noexcept override { return true; }
    bool changes_need_wakeup() const noexcept override { return true; }

    status add(native_handle fd, Interest interest, Mode, std::uint64_t token) noexcept override {
        if (std::size_t(fd) < index_.size() && index_[fd] >= 0) return sys_error(EEXIST);
        try {
            if (std::size_t(fd) >= index_.size()) index_.resize(std::size_t(fd) + 1, -1);
            wanted_.push_back({interest == Interest::none ? disarmed(fd) : fd, to_poll(interest), 0});
            tokens_.push_back(token);
        } catch (const std::bad_alloc&) {
            if (wanted_.size() > tokens_.size()) wanted_.pop_back();
            return sys_error(ENOMEM);
        }
        index_[fd] = int(wanted_.size() - 1);
        dirty_ = true;
        return {};
    }

    status modify(native_handle fd, Interest interest, Mode, std::uint64_t token) noexcept override {
        if (std::size_t(fd) >= index_.size() || index_[fd] < 0) return sys_error(ENOENT);
        wanted_[index_[fd]].fd = interest == Interest::none ? disarmed(fd) : fd;
        wanted_[index_[fd]].events = to_poll(interest);
        tokens_[index_[fd]] = token;
        dirty_ = true;
        return {};
    }

    status remove(native_handle fd) noexcept override {
        if (std::size_t(fd) >= index_.size() || index_[fd] < 0) return sys_error(ENOENT);
        // Swap with the last entry: O(1), and order carries no meaning.
        const int i = index_[fd];
        wanted_[i] = wanted_.back();
        tokens_[i] = tokens_.back();
        index_[real_fd(wanted_[i].fd)] = i;
        wanted_.pop_back();
        tokens_.pop_back();
        index_[fd] = -1;
        dirty_ = true;
        return {};
    }

    void before_wait() noexcept override {
        if (!dirty_) return;
        polled_ = wanted_;  // reuses polled_'s capacity once it has grown
        polled_tokens_ = tokens_;
        dirty_ = false;
    }

    status wait(const std::timespec* timeout, std::size_t& count) noexcept override {
        ready_ = ::ppoll(polled_.data(), polled_.size(), timeout, nullptr);
        if (ready_ < 0) {
            ready_ = 0;
            return last_error();
        }
        count = std::size_t(ready_);
        return {};
    }

    // Walks the waiter's copy, which the sink's modify() and remove() calls
    // (on wanted_) leave alone.
    void deliver(event_sink& sink) noexcept override {
        int n = ready_;
        for (std::size_t i = 0; n > 0 && i < polled_.size(); ++i) {
            const auto rev = std::uint16_t(polled_[i].revents);
            if (rev == 0) continue;
            --n;
            if (rev & POLLNVAL)
                sink.closed(polled_tokens_[i]);
            else
                sink.deliver(polled_tokens_[i], from_poll(rev));
        }
    }

private:
    std::vector<pollfd> wanted_;
    std::vector<std::uint64_t> tokens_;  // parallel to wanted_
    std::vector<int> index_;             // fd -> position in wanted_, -1 if absent
    std::vector<pollfd> polled_;         // the waiter's copy
    std::vector<std::uint64_t> polled_tokens_;
    bool dirty_ = true;
    int ready_ = 0;  // entries of polled_ with revents, from the last wait
};

}  // namespace

std::unique_ptr<backend> make_poll_backend(std::error_code&) { return std::make_unique<poll_backend>(); }

}  // namespace iowait::detail
