// What the differential fuzzer lets pass when kqueue is libkqueue (Linux):
// four bugs of libkqueue, not of this library (docs/platforms.md, "kqueue and libkqueue"), which would
// otherwise stop every run at once and hide the library's own differences.
// Only kqueue on Linux is libkqueue: on the BSDs and macOS none of this is
// compiled in. IOWAIT_FUZZ_STRICT_LIBKQUEUE=1 turns all four off, to see them.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <iowait/iowait.hpp>
#include <memory>
#include <vector>

namespace libkqueue_quirks {

#ifdef __linux__
inline bool accommodated() {
    const char* strict = std::getenv("IOWAIT_FUZZ_STRICT_LIBKQUEUE");
    return !(strict && *strict && *strict != '0');
}
#else
constexpr bool accommodated() { return false; }
#endif

// 1. libkqueue reads SO_ERROR as it reports a socket's error, which clears
// it: a backend waiting after it in the same round would not see the error,
// and neither would a later recv(). kqueue therefore waits last; the others
// see the error first, libkqueue reports it too, and after that round no one
// does, so all agree.
inline void wait_last(std::vector<std::unique_ptr<iowait::IOWait>>& waits) {
    if (!accommodated()) return;
    std::stable_partition(waits.begin(), waits.end(),
                          [](const auto& w) { return w->backend() != iowait::Backend::kqueue; });
}

// 2. libkqueue drops EV_EOF from EVFILT_READ while data is queued on a
// socket whose reading side is shut (its own SHUT_RD or the peer's SHUT_WR)
// once a write filter was added after the read filter: the fd has one epoll
// entry, and adding the write filter rewrites its mask without EPOLLRDHUP,
// which stays lost after the write filter is deleted again. The hangup shows
// once the data is read (libkqueue then sees no bytes and says EOF). True if
// `got` (kqueue's event) differs from `want` (the others') only by that
// hangup, on such a socket; the caller then takes it as equal.
inline bool dropped_eof(const iowait::Event& want, const iowait::Event& got, bool read_shut, std::size_t queued) {
    if (!accommodated() || !read_shut || queued == 0) return false;
    return want.fd == got.fd && want.read && got.read && want.hangup && !got.hangup && want.write == got.write &&
           want.error == got.error && want.data == got.data;
}

// 3. libkqueue keeps the knotes of a closed fd (its BUGS.md; docs/platforms.md,
// "kqueue and libkqueue"): a watched socket's number closed while a dup() keeps its file
// open leaves a knote that no unwatch() can reach, which answers in later
// waits (a later wait even fails with EBADF). A kernel's kqueue drops the
// knotes at close(), and the conformance suite's ClosedFds.ClosedWithADuplicate
// tests skip kqueue on Linux for this. kqueue is taken out of the comparison
// for the rest of the input (retire()).
//
// 4. libkqueue's EVFILT_PROC watches the child from user space and misses
// one that exited and was reaped between two waits (docs/platforms.md, "kqueue and libkqueue"),
// where a kernel's knote fires at the exit itself and every other backend
// reports it (K1); and after such a reap that kqueue can lose every later
// event, a socket's EOF included (measured with a program on libkqueue
// alone: a read knote added afterwards never fires). So once a child is
// reaped before its watches reported its exit, kqueue is taken out of the
// comparison for the rest of the input (source_ops::take_reaped_unreported).

// Quirks 3 and 4: kqueue moves from `waits` into `retired`, kept alive until
// the session ends (the caller drops its signal watches, source_ops::leave).
// True if it was there.
inline bool retire(std::vector<std::unique_ptr<iowait::IOWait>>& waits,
                   std::vector<std::unique_ptr<iowait::IOWait>>& retired) {
    if (!accommodated()) return false;
    auto it =
        std::find_if(waits.begin(), waits.end(), [](const auto& w) { return w->backend() == iowait::Backend::kqueue; });
    if (it == waits.end()) return false;
    retired.push_back(std::move(*it));
    waits.erase(it);
    return true;
}

}  // namespace libkqueue_quirks
