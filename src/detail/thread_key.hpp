// A number that tells the calling thread from every other thread alive, in
// one instruction where the compiler can read the thread pointer: the front
// end compares it on every wait() to know that the thread waiting is the one
// that waited last (docs/behaviour.md, "Several waiters").
#pragma once

#include <cstdint>

namespace iowait::detail {

// Its low three bits are always clear (the thread pointer and a thread_local
// of 8-byte alignment both are), so the front end keeps flags there. A
// thread that has exited may leave its number to a thread started later.
inline std::uintptr_t thread_key() noexcept {
#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__)) && (defined(__GNUC__) || defined(__clang__))
    return reinterpret_cast<std::uintptr_t>(__builtin_thread_pointer());
#else
    alignas(8) static thread_local char key;
    return reinterpret_cast<std::uintptr_t>(&key);
#endif
}

}  // namespace iowait::detail
