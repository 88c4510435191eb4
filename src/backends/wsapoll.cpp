// wsapoll: Winsock's poll(), the simple fallback on Windows;
// named explicitly, or by IOWAIT_BACKEND=wsapoll. The automatic choice is afd.
//
// Mapping: as the poll backend: a wanted array changed under the front end's
// lock, and a copy for the waiter taken in before_wait() when something
// changed; a change during a wait reaches the kernel when the front end wakes
// the waiter (changes_need_wakeup) through its loopback socket pair.
//
// Quirks handled here:
// - WSAPoll refuses (WSAEINVAL) event bits it does not know, POLLPRI among
//   them: only POLLRDNORM and POLLWRNORM are asked for.
// - It takes whole milliseconds: timeouts round up (winsock.hpp).
// - A closed socket in the array is POLLNVAL for that entry (the front end
//   drops it); if every entry is invalid the whole call fails with
//   WSAENOTSOCK. The waker's socket is always there, so that cannot happen.
//   Wine 8 sets POLLNVAL but does not count the entry in WSAPoll's result
//   (measured: 0 returned after the full timeout, revents = POLLNVAL), so
//   the result is not used to stop the scan of the array early.
// - Wine 8 sets POLLHUP when the peer closes but not when it only shuts down
//   its sending side (shutdown(SD_SEND)): the socket is merely readable. A
//   readable socket watched for read is therefore asked once with
//   recv(MSG_PEEK) of one byte: 0 is end of stream, a hangup, as epoll's
//   EPOLLRDHUP says. The peek cannot block: WSAPoll just said data or EOF is
//   there (unless another thread reads the socket meanwhile). Stream sockets
//   only: for a datagram socket 0 is an empty datagram.
// - Older Windows 10 (before 2004) did not report a refused connect through
//   WSAPoll; Wine reports POLLERR, which is what the conformance suite checks.
// - Disarmed watches (Interest::none, oneshot) are left out of the copy:
//   with events = 0 WSAPoll would still report POLLHUP and POLLERR.
// - WSAPoll keys by handle value, so keys_by_number(): the front end checks
//   that a reported handle is still a socket of the same type.
//
// Handles that are not sockets (pipes, console input, waitable objects) go
// to a handle_set (handles_windows.hpp), whose waits wake this one through
// a loopback socket pair of its own, in the array like the waker's.
#include <winsock2.h>

#include <unordered_map>

#include "backend.hpp"
#include "backends/handles_windows.hpp"
#include "detail/waker.hpp"
#include "detail/winsock.hpp"

namespace iowait::detail {

namespace {

short to_wsapoll(Interest interest) {
    short ev = 0;
    if (has(interest, Interest::read)) ev |= POLLRDNORM;
    if (has(interest, Interest::write)) ev |= POLLWRNORM;
    return ev;
}

unsigned from_wsapoll(short rev) {
    unsigned flags = 0;
    if (rev & (POLLRDNORM | POLLRDBAND)) flags |= readable;
    if (rev & POLLWRNORM) flags |= writable;
    if (rev & POLLHUP) flags |= hangup;
    if (rev & POLLERR) flags |= error;
    return flags;
}

// True if the peer has shut down its sending side (see the header).
bool at_end_of_stream(SOCKET s) {
    char byte;
    return ::recv(s, &byte, 1, MSG_PEEK) == 0;
}

class wsapoll_backend final : public backend {
public:
    Backend kind() const noexcept override { return Backend::wsapoll; }
    bool keys_by_number() const noexcept override { return true; }
    bool changes_need_wakeup() const noexcept override { return true; }

    status add(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept override {
        if (index_.count(fd)) return std::make_error_code(std::errc::file_exists);
        int type = 0;
        int len = sizeof type;
        if (::getsockopt(SOCKET(fd), SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(&type), &len) != 0) {
            if (::WSAGetLastError() != WSAENOTSOCK) return last_wsa_error();
            return add_handle(fd, interest, mode, token);
        }
        try {
            wanted_.push_back({SOCKET(fd), to_wsapoll(interest), 0});
            tokens_.push_back(token);
            stream_.push_back(type == SOCK_STREAM);
            index_.emplace(fd, wanted_.size() - 1);
        } catch (const std::bad_alloc&) {
            wanted_.resize(index_.size());
            tokens_.resize(index_.size());
            stream_.resize(index_.size());
            return std::make_error_code(std::errc::not_enough_memory);
        }
        dirty_ = true;
        return {};
    }

    status modify(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept override {
        auto it = index_.find(fd);
        if (it == index_.end())
            return handles_ ? handles_->modify(fd, interest, mode, token)
                            : std::make_error_code(std::errc::no_such_file_or_directory);
        wanted_[it->second].events = to_wsapoll(interest);
        tokens_[it->second] = token;
        dirty_ = true;
        return {};
    }

    status remove(native_handle fd) noexcept override {
        auto it = index_.find(fd);
        if (it == index_.end())
            return handles_ ? handles_->remove(fd) : std::make_error_code(std::errc::no_such_file_or_directory);
        // Swap with the last entry: O(1), and order carries no meaning.
        const std::size_t i = it->second;
        index_.erase(it);
        if (i != wanted_.size() - 1) {
            wanted_[i] = wanted_.back();
            tokens_[i] = tokens_.back();
            stream_[i] = stream_.back();
            index_[native_handle(wanted_[i].fd)] = i;
        }
        wanted_.pop_back();
        tokens_.pop_back();
        stream_.pop_back();
        dirty_ = true;
        return {};
    }

    void before_wait() noexcept override {
        // Here, under the front end's lock: wait() runs without it, beside add().
        handles_ready_ = handles_ && handles_->before_wait();
        handles_promised_ = handles_ ? handles_->size() : 0;
        if (!dirty_) return;
        polled_.clear();  // reuses the capacity once it has grown
        polled_tokens_.clear();
        polled_stream_.clear();
        for (std::size_t i = 0; i < wanted_.size(); ++i) {
            if (wanted_[i].events == 0) continue;  // disarmed
            polled_.push_back(wanted_[i]);
            polled_tokens_.push_back(tokens_[i]);
            polled_stream_.push_back(stream_[i]);
        }
        dirty_ = false;
    }

    status wait(const ::timespec* timeout, std::size_t& count) noexcept override {
        const unsigned long ms = handles_ready_ ? 0 : timeout_ms(timeout);
        const int n =
            ::WSAPoll(polled_.data(), ULONG(polled_.size()), ms == INFINITE ? -1 : int(ms > INT_MAX ? INT_MAX : ms));
        if (n == SOCKET_ERROR) return last_wsa_error();
        // Every entry is looked at, whatever n says: see POLLNVAL in the header.
        count = polled_.size() + handles_promised_;
        return {};
    }

    // Walks the waiter's copy, which the sink's modify() and remove() calls
    // (on wanted_) leave alone.
    void deliver(event_sink& sink) noexcept override {
        for (std::size_t i = 0; i < polled_.size(); ++i) {
            const short rev = polled_[i].revents;
            if (rev == 0) continue;
            if (polled_[i].fd == SOCKET(handles_waker_.fd())) {  // handles_->deliver() below looks at them all
                handles_waker_.drain();
                continue;
            }
            if (rev & POLLNVAL) {
                sink.closed(polled_tokens_[i]);
                continue;
            }
            unsigned flags = from_wsapoll(rev);
            if (polled_stream_[i] && (polled_[i].events & POLLRDNORM) && (flags & readable) && !(flags & hangup) &&
                at_end_of_stream(polled_[i].fd))
                flags |= hangup;
            sink.deliver(polled_tokens_[i], flags);
        }
        if (handles_) handles_->deliver(sink, handles_promised_);
    }

private:
    // A handle that is not a socket.
    status add_handle(native_handle fd, Interest interest, Mode mode, std::uint64_t token) noexcept {
        if (!handles_)
            if (auto st = make_handles()) return st;
        return handles_->add(fd, interest, mode, token);
    }

    // The handle set and its waker, whose read end joins the array.
    status make_handles() noexcept {
        std::error_code ec;
        waker w(ec);
        if (ec) return ec;
        try {
            wanted_.reserve(wanted_.size() + 1);
            tokens_.reserve(wanted_.size() + 1);
            stream_.reserve(wanted_.size() + 1);
            index_.emplace(w.fd(), wanted_.size());
        } catch (const std::bad_alloc&) {
            return std::make_error_code(std::errc::not_enough_memory);
        }
        handles_.reset(new (std::nothrow)
                           handle_set([](void* c) noexcept { static_cast<waker*>(c)->signal(); }, &handles_waker_));
        if (!handles_) {
            index_.erase(w.fd());
            return std::make_error_code(std::errc::not_enough_memory);
        }
        wanted_.push_back({SOCKET(w.fd()), POLLRDNORM, 0});
        tokens_.push_back(0);  // never handed to the sink: deliver() knows the socket
        stream_.push_back(false);
        handles_waker_ = std::move(w);
        dirty_ = true;
        return {};
    }

    std::vector<WSAPOLLFD> wanted_;
    std::vector<std::uint64_t> tokens_;                     // parallel to wanted_
    std::vector<char> stream_;                              // parallel: a SOCK_STREAM socket?
    std::unordered_map<native_handle, std::size_t> index_;  // handle -> position in wanted_
    std::vector<WSAPOLLFD> polled_;                         // the waiter's copy
    std::vector<std::uint64_t> polled_tokens_;
    std::vector<char> polled_stream_;
    bool dirty_ = true;
    // Pipes, console input, waitable objects: made by the first such watch.
    // Declared after its waker, so destroyed first: its waits write to it.
    waker handles_waker_;
    std::unique_ptr<handle_set> handles_;
    bool handles_ready_ = false;        // its before_wait() found one ready: the wait must not block
    std::size_t handles_promised_ = 0;  // its size() at before_wait(): at most what deliver() hands over
};

}  // namespace

std::unique_ptr<backend> make_wsapoll_backend(std::error_code& ec) {
    if ((ec = winsock_start())) return nullptr;
    return std::make_unique<wsapoll_backend>();
}

}  // namespace iowait::detail
