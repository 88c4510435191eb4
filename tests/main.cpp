// The main() of every googletest program here. ctest runs one test, or one
// filter, per entry, listed when the program was built; on a machine that
// refuses a backend the build's machine had (a container without io_uring,
// say) that filter matches nothing, and googletest would pass with "Running 0
// tests". So: a run in which no test passed, because none ran or every one was
// skipped, exits with 77, which ctest shows as skipped (SKIP_RETURN_CODE,
// tests/CMakeLists.txt), and prints which backends this build has that this
// machine refuses, with the kernel's reason.
//
// `--iowait-backends` prints that table and exits: CI's summary of what it
// could not test.
#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <iowait/iowait.hpp>
#include <sstream>
#include <string>
#include <vector>

#ifndef IOWAIT_TEST_COMPILED_BACKENDS
#error "IOWAIT_TEST_COMPILED_BACKENDS: the build's backends, comma-separated (tests/CMakeLists.txt)"
#endif

namespace {

constexpr int skipped = 77;

// Each backend of this build, and why this machine refuses it ("" if it does not).
std::vector<std::pair<std::string, std::string>> backends() {
    std::vector<std::pair<std::string, std::string>> out;
    std::stringstream names(IOWAIT_TEST_COMPILED_BACKENDS);
    for (std::string name; std::getline(names, name, ',');) {
        std::string why = "no such backend in this library";
        for (int b = 0; b <= int(iowait::Backend::wsapoll); ++b) {
            if (iowait::to_string(iowait::Backend(b)) != name) continue;
            try {
                iowait::IOWait probe{iowait::Backend(b)};
                why.clear();
            } catch (const std::exception& e) {
                why = e.what();
            }
        }
        out.emplace_back(name, why);
    }
    return out;
}

void print_backends(std::ostream& os) {
    std::string available, refused;
    for (const auto& [name, why] : backends()) {
        if (why.empty())
            available += (available.empty() ? "" : ", ") + name;
        else
            refused += "  " + name + ": " + why + "\n";
    }
    os << "backends available here: " << (available.empty() ? "none" : available) << "\n";
    if (!refused.empty()) os << "backends this build has that this machine refuses (not tested):\n" << refused;
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--iowait-backends") == 0) {
            print_backends(std::cout);
            return 0;
        }
    testing::InitGoogleTest(&argc, argv);
    const int result = RUN_ALL_TESTS();
    const testing::UnitTest& run = *testing::UnitTest::GetInstance();
    if (result != 0 || GTEST_FLAG_GET(list_tests) || run.successful_test_count() > 0) return result;
    std::cout << "[ SKIPPED  ] no test passed here: " << run.test_to_run_count() << " matched the filter '"
              << GTEST_FLAG_GET(filter) << "', " << run.skipped_test_count() << " skipped.\n";
    print_backends(std::cout);
    return skipped;
}
