// Choosing a backend: the automatic choice, IOWAIT_BACKEND, and refusals.
#include <cstdlib>

#include "helpers.hpp"

namespace iowait::test {
namespace {

#ifdef _WIN32
// No setenv() on Windows; _putenv_s with "" removes the variable.
inline void setenv(const char* name, const char* value, int) { ::_putenv_s(name, value); }
inline void unsetenv(const char* name) { ::_putenv_s(name, ""); }
#else
using ::setenv;
using ::unsetenv;
#endif

struct env_guard {
    env_guard(const char* value) {
        if (value)
            setenv("IOWAIT_BACKEND", value, 1);
        else
            unsetenv("IOWAIT_BACKEND");
    }
    ~env_guard() { unsetenv("IOWAIT_BACKEND"); }
};

TEST(BackendChoice, AvailableListsTheBestFirstAndDefaultTakesIt) {
    env_guard env(nullptr);
    auto available = IOWait::available_backends();
    ASSERT_FALSE(available.empty());
#ifdef __linux__
    EXPECT_EQ(available.back(), Backend::select);  // the last resort
    EXPECT_NE(std::find(available.begin(), available.end(), Backend::epoll), available.end());
#endif
#ifdef _WIN32
    EXPECT_EQ(available, (std::vector<Backend>{Backend::afd, Backend::wsapoll}));  // both, AFD first
#endif
    EXPECT_EQ(IOWait().backend(), available.front());
    std::string names;
    for (Backend b : available) names += std::string(to_string(b)) + " ";
    std::cout << "backends available here, best first: " << names << "\n";
}

TEST(BackendChoice, EnvironmentVariableOverridesTheChoice) {
    for (Backend b : IOWait::available_backends()) {
        env_guard env(std::string(to_string(b)).c_str());
        EXPECT_EQ(IOWait().backend(), b);
    }
}

TEST(BackendChoice, UnknownNameInEnvironmentIsAClearError) {
    env_guard env("no-such-backend");
    try {
        IOWait w;
        ADD_FAILURE() << "IOWAIT_BACKEND=no-such-backend was accepted";
    } catch (const usage_error& e) {
        EXPECT_EQ(e.code(), errc::unknown_backend);
        const std::string what = e.what();
        EXPECT_NE(what.find("IOWAIT_BACKEND=no-such-backend"), std::string::npos) << what;
        EXPECT_NE(what.find("available:"), std::string::npos) << what;
    }
}

TEST(BackendChoice, EmptyEnvironmentVariableMeansAutomatic) {
    env_guard env("");
    EXPECT_EQ(IOWait().backend(), IOWait::available_backends().front());
}

TEST(BackendChoice, BackendNotBuiltInIsBackendUnavailable) {
    for (Backend b : {Backend::epoll, Backend::io_uring, Backend::poll, Backend::select, Backend::kqueue, Backend::afd,
                      Backend::wsapoll}) {
        auto available = IOWait::available_backends();
        if (std::find(available.begin(), available.end(), b) != available.end()) continue;
        try {
            IOWait w{b};
            ADD_FAILURE() << to_string(b) << " is not available but was created";
        } catch (const usage_error& e) {
            EXPECT_EQ(e.code(), errc::backend_unavailable);
            EXPECT_NE(std::string(e.what()).find(to_string(b)), std::string::npos) << e.what();
        }
    }
}

TEST(BackendChoice, EachBackendHasADistinctName) {
    EXPECT_EQ(to_string(Backend::epoll), "epoll");
    EXPECT_EQ(to_string(Backend::poll), "poll");
    EXPECT_EQ(to_string(Backend::select), "select");
    EXPECT_EQ(to_string(Backend::io_uring), "io_uring");
    EXPECT_EQ(to_string(Backend::kqueue), "kqueue");
}

}  // namespace
}  // namespace iowait::test
