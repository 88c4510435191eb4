// The one place that knows which backends this build has, best first, and
// chooses among them at run time by trying them.
#include "factory.hpp"

#include <cerrno>
#include <cstdlib>
#include <string>

namespace iowait::detail {

namespace {
struct entry {
    Backend kind;
    std::unique_ptr<backend> (*make)(std::error_code&);
    std::string (*refusal)() = nullptr;  // why the kernel refused it, where the backend can say
};

// Preference order. IOWAIT_HAVE_* come from the build's file lists.
constexpr entry compiled_in[] = {
#ifdef IOWAIT_HAVE_EPOLL
    {Backend::epoll, make_epoll_backend},
#endif
#ifdef IOWAIT_HAVE_IO_URING
    // After epoll, by measurement (bench/uring_vs_epoll.cpp, figures in
    // docs/benchmarks.md, "io_uring beside epoll"): a wait through the ring costs a little more
    // than epoll_wait, and the rules need every change answered at once, so
    // the ring cannot batch them. It waits on an epoll set, so where epoll
    // is refused it is too: in effect it is chosen only by name.
    {Backend::io_uring, make_io_uring_backend, io_uring_refusal},
#endif
#ifdef IOWAIT_HAVE_KQUEUE
    {Backend::kqueue, make_kqueue_backend},
#endif
#ifdef IOWAIT_HAVE_POLL
    {Backend::poll, make_poll_backend},
#endif
#ifdef IOWAIT_HAVE_SELECT
    {Backend::select, make_select_backend, select_refusal},
#endif
#ifdef IOWAIT_HAVE_AFD
    {Backend::afd, make_afd_backend},
#endif
#ifdef IOWAIT_HAVE_WSAPOLL
    {Backend::wsapoll, make_wsapoll_backend},
#endif
};

// A kernel that lacks or forbids a mechanism says so with one of these; any
// other failure (EMFILE, ENOMEM) would hit the next backend too, and hiding
// it behind a fallback would only make it harder to see.
bool refused(std::error_code ec) {
    const int e = ec.value();
    return ec.category() == std::generic_category() &&
           (e == ENOSYS || e == EPERM || e == EACCES || e == EINVAL || e == EOPNOTSUPP);
}

std::string available_names() {
    std::string names;
    for (Backend b : available()) names += std::string(names.empty() ? "" : ", ") + std::string(to_string(b));
    return names;
}
}  // namespace

std::unique_ptr<backend> make_backend(Backend kind, std::error_code& ec, std::string& why) {
    for (const entry& e : compiled_in)
        if (e.kind == kind) {
            auto b = e.make(ec);
            if (!b && e.refusal) why = e.refusal();
            if (!b && refused(ec)) ec = errc::backend_unavailable;
            return b;
        }
    ec = errc::backend_unavailable;
    return nullptr;
}

std::unique_ptr<backend> make_best_backend(std::error_code& ec, std::string& why) {
    if (const char* name = std::getenv("IOWAIT_BACKEND"); name && *name) {
        for (const entry& e : compiled_in)
            if (to_string(e.kind) == name) {
                std::string refusal;
                auto b = make_backend(e.kind, ec, refusal);
                if (!b) why = std::string("IOWAIT_BACKEND=") + name + (refusal.empty() ? "" : ": " + refusal);
                return b;
            }
        ec = errc::unknown_backend;
        why = std::string("IOWAIT_BACKEND=") + name + " (available: " + available_names() + ")";
        return nullptr;
    }
    std::error_code first;
    for (const entry& e : compiled_in) {
        auto b = e.make(ec);
        if (b) return b;
        if (!first) first = ec;
        if (!refused(ec)) return nullptr;
    }
    ec = first ? first : make_error_code(errc::backend_unavailable);
    return nullptr;
}

std::vector<Backend> available() {
    std::vector<Backend> out;
    for (const entry& e : compiled_in) {
        std::error_code ec;
        if (e.make(ec)) out.push_back(e.kind);
    }
    return out;
}

}  // namespace iowait::detail
