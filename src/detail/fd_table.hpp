// The front end's table of watches, keyed by native handle.
//
// POSIX fds are small and dense, so an array indexed by fd is the fastest
// table. Windows SOCKETs are kernel handle values: multiples of 4, usually
// small too, but nothing bounds them. One table serves both: values below
// dense_limit live in the array, any other in a hash map, so a large handle
// costs a map entry instead of an array of its size.
//
// The array grows by doubling and is never constructed entry by entry: T{}
// must be all zero bytes and T trivially copyable. On Linux it is an
// anonymous mapping grown with mremap(), so the kernel hands over zeroed
// pages and moves the old ones without a copy; elsewhere calloc() and
// memcpy(). A watch of a fresh IOWait then costs no table work beyond the
// store of its entry (a std::vector grown one constructed entry at a time
// cost about 85 user-space instructions per watch, and calloc's memset and
// memcpy as much again: glibc's rep stosb/movsb at these sizes).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <unordered_map>

#ifdef __linux__
#include <sys/mman.h>
#endif

#include "iowait/iowait.hpp"

namespace iowait::detail {

template <class T>  // T{} is the "nothing here" value, all zero bytes
class fd_table {
    static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);

public:
    // 2^20 entries: above any RLIMIT_NOFILE default; a bigger fd goes to the map.
    static constexpr std::size_t dense_limit = std::size_t(1) << 20;

    fd_table() = default;
    fd_table(const fd_table&) = delete;
    fd_table& operator=(const fd_table&) = delete;
    ~fd_table() {
#ifdef __linux__
        if (dense_) ::munmap(dense_, size_ * sizeof(T));
#else
        std::free(dense_);
#endif
    }

    // The entry of fd, or null if it was never made.
    T* get(native_handle fd) noexcept {
        if (std::size_t(fd) < dense_limit) return std::size_t(fd) < size_ ? &dense_[std::size_t(fd)] : nullptr;
        auto it = sparse_.find(fd);
        return it == sparse_.end() ? nullptr : &it->second;
    }
    // For a lookup with no test of the size, where an entry that is not
    // there must compare unequal anyway: lookup()[fd & lookup_mask()] is the
    // entry of fd, if it has one, else some other entry (the dense part's
    // size is a power of two), or a T{} while there is none.
    const T* lookup() const noexcept { return lookup_; }
    std::size_t lookup_mask() const noexcept { return mask_; }
    // The entry of a fd below dense_size().
    T& dense_at(native_handle fd) noexcept { return dense_[std::size_t(fd)]; }
    // The entries of the handles below dense_limit, indexed by handle: 0 or
    // a power of two of them.
    const T* dense_data() const noexcept { return dense_; }
    // Atomic (relaxed: one plain load on x86-64), since the front end's
    // common watch reads it before it takes the lock that guards grow();
    // what it then reads of the table, it reads under that lock.
    std::size_t dense_size() const noexcept {
        return std::atomic_ref<std::size_t>(const_cast<std::size_t&>(size_)).load(std::memory_order_relaxed);
    }
    // The entry of fd, made (as T{}) if needed; may throw std::bad_alloc.
    T& make(native_handle fd) {
        if (std::size_t(fd) < size_) [[likely]]
            return dense_[std::size_t(fd)];
        if (std::size_t(fd) >= dense_limit) return sparse_[fd];
        grow(std::size_t(fd));
        return dense_[std::size_t(fd)];
    }
    // f(fd, entry) for every entry made (T{} ones included); f must not add or erase.
    template <class F>
    void for_each(F f) {
        for (std::size_t i = 0; i < size_; ++i) f(native_handle(i), dense_[i]);
        for (auto& [fd, entry] : sparse_) f(fd, entry);
    }
    // Back to T{}.
    void erase(native_handle fd) noexcept {
        if (std::size_t(fd) < dense_limit) {
            if (std::size_t(fd) < size_) dense_[std::size_t(fd)] = T{};
        } else {
            sparse_.erase(fd);
        }
    }

private:
    // Room for fd at least, doubling from a page's worth (4 KiB).
    [[gnu::noinline]] void grow(std::size_t fd) {
        std::size_t n = size_ == 0 ? 4096 / sizeof(T) : size_ * 2;
        while (n <= fd) n *= 2;
        if (n > dense_limit) n = dense_limit;
#ifdef __linux__
        void* p = dense_ ? ::mremap(dense_, size_ * sizeof(T), n * sizeof(T), MREMAP_MAYMOVE)
                         : ::mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        T* grown = static_cast<T*>(p);
#else
        T* grown = static_cast<T*>(std::calloc(n, sizeof(T)));
        if (!grown) throw std::bad_alloc();
        if (size_ != 0) std::memcpy(static_cast<void*>(grown), dense_, size_ * sizeof(T));
        std::free(dense_);
#endif
        dense_ = grown;
        std::atomic_ref<std::size_t>(size_).store(n, std::memory_order_relaxed);
        lookup_ = grown;
        mask_ = n - 1;
    }

    inline static const T empty_{};
    T* dense_ = nullptr;
    std::size_t size_ = 0;
    const T* lookup_ = &empty_;
    std::size_t mask_ = 0;
    std::unordered_map<native_handle, T> sparse_;
};

}  // namespace iowait::detail
