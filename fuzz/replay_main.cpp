// Runs the fuzz target on given files or directories of inputs, for builds
// without libFuzzer (g++, valgrind): ctest replays the seed corpus this way,
// and a crash file found by a fuzzing run can be replayed in any build.
#include <sys/wait.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        if (fs::is_directory(argv[i])) {
            for (const auto& entry : fs::directory_iterator(argv[i]))
                if (entry.is_regular_file()) files.push_back(entry.path());
        } else {
            files.emplace_back(argv[i]);
        }
    }
    if (files.empty()) {
        std::fprintf(stderr, "usage: %s FILE_OR_DIR...: no input files found\n", argv[0]);
        return 2;
    }
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        const std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    // Every child an input forked (fuzz_sources.hpp) was reaped by its session.
    if (const pid_t left = ::waitpid(-1, nullptr, WNOHANG); left != -1 || errno != ECHILD) {
        std::fprintf(stderr, "a child process was left behind (pid %d)\n", int(left));
        return 1;
    }
    std::printf("replayed %zu inputs: OK\n", files.size());
    return 0;
}
