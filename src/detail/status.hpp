// The result of a backend or front-end call, in one int: success costs
// nothing to make or test. std::error_code{} calls into libstdc++ for its
// category on every construction (about 9 user-space instructions, measured
// with callgrind), which the watch and wait paths would pay several times
// per call; the error_code is made only at the public API's edge, and only
// for an error.
#pragma once

#include <system_error>

#include "iowait/iowait.hpp"

namespace iowait::detail {

class status {
public:
    constexpr status() noexcept = default;  // success
    status(std::error_code ec) noexcept : value_(encode(ec)) {}
    status(errc e) noexcept : value_(-int(e)) {}
    static status from_errno(int e) noexcept { return status(e, 0); }

    explicit operator bool() const noexcept { return value_ != 0; }
    bool operator==(std::errc e) const noexcept { return value_ == int(e); }
    bool operator==(errc e) const noexcept { return value_ == -int(e); }

    // Its value as an int, and back: for a result that carries it in a register of its own.
    constexpr int raw() const noexcept { return value_; }
    static constexpr status from_raw(int v) noexcept { return status(v, 0); }

    std::error_code code() const noexcept {
        if (value_ == 0) return {};
        if (value_ < 0) return make_error_code(errc(-value_));
        if (value_ & system_bit) return {value_ & ~system_bit, std::system_category()};
        return {value_, std::generic_category()};
    }

private:
    // Errno values (generic category) as themselves, iowait::errc negated,
    // system-category codes (Windows' own errors) with this bit set.
    static constexpr int system_bit = 0x40000000;
    constexpr status(int v, int) noexcept : value_(v) {}
    static int encode(std::error_code ec) noexcept {
        if (!ec) return 0;
        if (ec.category() == iowait_category()) return -ec.value();
        if (ec.category() == std::generic_category()) return ec.value();
        return ec.value() | system_bit;
    }

    int value_ = 0;
};

}  // namespace iowait::detail
