// The public headers alone, as a consumer compiles them: C++20 with strict
// warnings as errors through a plain -I (tests/CMakeLists.txt,
// package.cxx_header/*). The templates are used, so that they are compiled.
#include <iowait/iowait.h>

#include <iowait/iowait.hpp>

struct session {
    int id;
};

int header_check(iowait::IOWait& w, iowait::native_handle fd, session* s);
int header_check(iowait::IOWait& w, iowait::native_handle fd, session* s) {
    using namespace std::chrono_literals;
    w.watch(fd, iowait::Interest::read | iowait::Interest::write, s, iowait::Mode::oneshot);
    w.modify(fd, iowait::Interest::read, s);
    int n = 0;
    for (const iowait::Event& e : w.wait(1.5ms)) n += e.ptr<session>()->id;
    std::error_code ec;
    for (const iowait::Event& e : w.wait(std::chrono::microseconds(10), ec)) n += e.ptr<session>()->id;
    for (const iowait::Event& e : w.wait_or_signal(2s, ec)) n += int(e.data);
    try {
        w.unwatch(fd);
    } catch (const iowait::usage_error& e) {
        return e.code() == iowait::errc::not_watched ? -1 : -2;
    }
    return n;
}
