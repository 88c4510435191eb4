// The front end's table of watches, keyed by native handle.
//
// POSIX fds are small and dense, so a vector indexed by fd is the fastest
// table. Windows SOCKETs are kernel handle values: multiples of 4, usually
// small too, but nothing bounds them. One table serves both: values below
// dense_limit live in the vector, any other in a hash map, so a large handle
// costs a map entry instead of a vector of its size.
#pragma once

#include <cstddef>
#include <unordered_map>
#include <vector>

#include "iowait/iowait.hpp"

namespace iowait::detail {

template <class T>  // T{} is the "nothing here" value
class fd_table {
public:
    // 2^20 entries: above any RLIMIT_NOFILE default; a bigger fd goes to the map.
    static constexpr std::size_t dense_limit = std::size_t(1) << 20;

    // The entry of fd, or null if it was never made.
    T* get(native_handle fd) noexcept {
        if (std::size_t(fd) < dense_limit) return std::size_t(fd) < dense_.size() ? &dense_[std::size_t(fd)] : nullptr;
        auto it = sparse_.find(fd);
        return it == sparse_.end() ? nullptr : &it->second;
    }
    // The entries of the handles below dense_limit, indexed by handle.
    const T* dense_data() const noexcept { return dense_.data(); }
    std::size_t dense_size() const noexcept { return dense_.size(); }
    // The entry of fd, made (as T{}) if needed; may throw std::bad_alloc.
    T& make(native_handle fd) {
        if (std::size_t(fd) >= dense_limit) return sparse_[fd];
        if (std::size_t(fd) >= dense_.size()) dense_.resize(std::size_t(fd) + 1);
        return dense_[std::size_t(fd)];
    }
    // f(fd, entry) for every entry made (T{} ones included); f must not add or erase.
    template <class F>
    void for_each(F f) {
        for (std::size_t i = 0; i < dense_.size(); ++i) f(native_handle(i), dense_[i]);
        for (auto& [fd, entry] : sparse_) f(fd, entry);
    }
    // Back to T{}.
    void erase(native_handle fd) noexcept {
        if (std::size_t(fd) < dense_limit) {
            if (std::size_t(fd) < dense_.size()) dense_[std::size_t(fd)] = T{};
        } else {
            sparse_.erase(fd);
        }
    }

private:
    std::vector<T> dense_;
    std::unordered_map<native_handle, T> sparse_;
};

}  // namespace iowait::detail
