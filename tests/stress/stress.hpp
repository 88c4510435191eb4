// Shared by the stress tests: fd limits, memory use, and the backends a
// stress test runs on.
#pragma once

#include <dirent.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "helpers.hpp"

namespace iowait::test {

// The soft RLIMIT_NOFILE raised to the hard one; returns the new soft limit.
inline rlim_t raise_fd_limit() {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

// How many fds this process has open now, from /proc/self/fd.
inline int open_fd_count() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (const dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
        --n;  // the directory's own fd
    }
    return n;
}

// Resident set size in bytes, from /proc/self/statm.
inline long rss_bytes() {
    long pages = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return resident * ::sysconf(_SC_PAGESIZE);
}

// Bytes the C heap has handed out and not taken back.
inline std::size_t heap_in_use() { return ::mallinfo2().uordblks; }

// Stress tests take a fraction of their load under valgrind (IOWAIT_STRESS_SCALE=0.01 ...).
inline double stress_scale() {
    const char* s = std::getenv("IOWAIT_STRESS_SCALE");
    const double v = s ? std::atof(s) : 1.0;
    return v > 0 ? v : 1.0;
}

}  // namespace iowait::test
