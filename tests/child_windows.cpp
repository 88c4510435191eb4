// The child process of the Windows ProcessSource tests (POSIX forks instead):
//   iowait_test_child STATUS [EVENT]
// exits with STATUS, at once or once the named event EVENT is set; a minute
// at most, so that a test that dies first leaves no process behind for long.
#include <windows.h>

#include <cstdlib>

int main(int argc, char** argv) {
    if (argc < 2) return 100;
    if (argc > 2) {
        HANDLE gate = ::OpenEventA(SYNCHRONIZE, FALSE, argv[2]);
        if (!gate) return 101;
        ::WaitForSingleObject(gate, 60000);
    }
    return std::atoi(argv[1]);
}
