// The io_uring ring itself, over the raw system calls (no liburing): setup,
// the three shared mappings, SQE slots, io_uring_enter and CQE reaping.
// Only src/backends/io_uring.cpp includes it; the backend logic is there.
//
// Why raw system calls: iowait is a static or shared library whose consumers
// would otherwise need liburing too (CMake package, pkg-config Libs.private),
// and the part of liburing we need is ~150 lines. The ABI is the kernel's
// <linux/io_uring.h> (linux-libc-dev), stable since 5.1.
//
// Memory ordering follows io_uring(7): the kernel reads the SQ tail and
// writes the CQ tail; we publish SQEs with a release store of the SQ tail
// and read CQEs after an acquire load of the CQ tail, and give slots back
// with a release store of the CQ head.
#pragma once

#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <system_error>

#include "detail/sys_error.hpp"
#include "detail/unique_fd.hpp"

namespace iowait::detail {

// Kernel features the backend relies on, as io_uring_params.features bits,
// with the first kernel version that has each.
constexpr std::uint32_t uring_required_features =
    IORING_FEAT_NODROP |  // 5.5: a full CQ never drops a completion
    IORING_FEAT_EXT_ARG;  // 5.11: a timespec timeout with the wait, no timeout SQE

class uring_ring {
public:
    uring_ring() = default;
    uring_ring(const uring_ring&) = delete;
    uring_ring& operator=(const uring_ring&) = delete;
    ~uring_ring() {
        if (sq_map_ != MAP_FAILED) ::munmap(sq_map_, sq_map_len_);
        if (cq_map_ != MAP_FAILED && cq_map_ != sq_map_) ::munmap(cq_map_, cq_map_len_);
        if (sqes_ != MAP_FAILED) ::munmap(sqes_, sqes_len_);
    }

    // Sets up the ring; on failure returns the errno and says which step failed in `step`.
    std::error_code setup(unsigned sq_entries, unsigned cq_entries, const char*& step) noexcept {
        io_uring_params p{};
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = cq_entries;
        step = "io_uring_setup";
        const int fd = int(::syscall(SYS_io_uring_setup, sq_entries, &p));
        if (fd < 0) return last_error();
        fd_.reset(fd);  // io_uring fds are close-on-exec by construction (anon inode, O_CLOEXEC)
        step = "kernel features (NODROP 5.5, EXT_ARG 5.11)";
        if ((p.features & uring_required_features) != uring_required_features) return sys_error(EOPNOTSUPP);
        step = "mmap of the rings";
        sq_map_len_ = p.sq_off.array + p.sq_entries * sizeof(std::uint32_t);
        cq_map_len_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
        if (p.features & IORING_FEAT_SINGLE_MMAP) sq_map_len_ = cq_map_len_ = std::max(sq_map_len_, cq_map_len_);
        sq_map_ =
            ::mmap(nullptr, sq_map_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
        if (sq_map_ == MAP_FAILED) return last_error();
        if (p.features & IORING_FEAT_SINGLE_MMAP) {
            cq_map_ = sq_map_;
        } else {
            cq_map_ =
                ::mmap(nullptr, cq_map_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
            if (cq_map_ == MAP_FAILED) return last_error();
        }
        sqes_len_ = p.sq_entries * sizeof(io_uring_sqe);
        sqes_ = ::mmap(nullptr, sqes_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
        if (sqes_ == MAP_FAILED) return last_error();

        auto* sq = static_cast<char*>(sq_map_);
        sq_khead_ = reinterpret_cast<unsigned*>(sq + p.sq_off.head);
        sq_ktail_ = reinterpret_cast<unsigned*>(sq + p.sq_off.tail);
        sq_mask_ = *reinterpret_cast<unsigned*>(sq + p.sq_off.ring_mask);
        // Slot i of the index array always names SQE i, so filling SQEs in
        // ring order is all a submission needs.
        auto* array = reinterpret_cast<unsigned*>(sq + p.sq_off.array);
        for (unsigned i = 0; i < p.sq_entries; ++i) array[i] = i;
        sq_tail_ = *sq_ktail_;

        auto* cq = static_cast<char*>(cq_map_);
        cq_khead_ = reinterpret_cast<unsigned*>(cq + p.cq_off.head);
        cq_ktail_ = reinterpret_cast<unsigned*>(cq + p.cq_off.tail);
        cq_mask_ = *reinterpret_cast<unsigned*>(cq + p.cq_off.ring_mask);
        cqes_ = reinterpret_cast<io_uring_cqe*>(cq + p.cq_off.cqes);
        features_ = p.features;
        return {};
    }

    int fd() const noexcept { return fd_.get(); }
    std::uint32_t features() const noexcept { return features_; }

    // The opcodes below 64 that the kernel knows, bit i for opcode i, in
    // one IORING_REGISTER_PROBE (5.6); 0 where the kernel cannot say.
    std::uint64_t supported_ops() const noexcept {
        constexpr unsigned max_ops = 64;
        alignas(io_uring_probe) unsigned char buf[sizeof(io_uring_probe) + max_ops * sizeof(io_uring_probe_op)] = {};
        auto* probe = reinterpret_cast<io_uring_probe*>(buf);
        if (::syscall(SYS_io_uring_register, fd_.get(), IORING_REGISTER_PROBE, probe, max_ops) != 0) return 0;
        std::uint64_t ops = 0;
        for (unsigned op = 0; op < probe->ops_len && op < max_ops && op <= probe->last_op; ++op)
            if (probe->ops[op].flags & IO_URING_OP_SUPPORTED) ops |= std::uint64_t(1) << op;
        return ops;
    }

    // The next SQE slot, as it was left: the caller knows there is room (it
    // keeps at most a couple of SQEs in flight) and what the slot holds.
    io_uring_sqe* next_sqe() noexcept { return slot(sq_tail_++); }
    // Slot i of the SQ (taken modulo its size), and how many there are.
    io_uring_sqe* slot(unsigned i) noexcept { return static_cast<io_uring_sqe*>(sqes_) + (i & sq_mask_); }
    unsigned slots() const noexcept { return sq_mask_ + 1; }

    // SQEs filled but not yet taken by the kernel.
    unsigned pending() const noexcept { return sq_tail_ - std::atomic_ref(*sq_khead_).load(std::memory_order_acquire); }

    // Takes back the SQEs the kernel has not taken (after an io_uring_enter
    // that failed before it submitted them). The kernel reads the SQ only
    // within io_uring_enter, and only the one thread that waits calls that.
    void unfill() noexcept {
        sq_tail_ = std::atomic_ref(*sq_khead_).load(std::memory_order_acquire);
        std::atomic_ref(*sq_ktail_).store(sq_tail_, std::memory_order_release);
    }

    // Publishes the filled SQEs and enters the kernel: submits them and, with
    // wait_for > 0, waits until a CQE is there. Returns the kernel's answer:
    // the count submitted, or -errno (EINTR, EBUSY...).
    long enter(unsigned wait_for) noexcept { return enter(pending(), wait_for); }
    // The same where the caller knows how many SQEs it filled.
    long enter(unsigned to_submit, unsigned wait_for) noexcept {
        std::atomic_ref(*sq_ktail_).store(sq_tail_, std::memory_order_release);
        return raw_enter(to_submit, wait_for, IORING_ENTER_GETEVENTS, nullptr, _NSIG / 8);
    }
    // The same with a timeout for the wait (IORING_ENTER_EXT_ARG, 5.11).
    long enter(unsigned wait_for, const timespec& timeout) noexcept {
        std::atomic_ref(*sq_ktail_).store(sq_tail_, std::memory_order_release);
        __kernel_timespec ts{};
        ts.tv_sec = timeout.tv_sec;
        ts.tv_nsec = timeout.tv_nsec;
        io_uring_getevents_arg arg{};
        arg.sigmask_sz = _NSIG / 8;
        arg.ts = std::uint64_t(reinterpret_cast<std::uintptr_t>(&ts));
        return raw_enter(pending(), wait_for, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
    }

    // Calls f(cqe) for every CQE there, then gives their slots back.
    template <class F>
    void reap(F&& f) noexcept {
        unsigned head = *cq_khead_;
        const unsigned tail = std::atomic_ref(*cq_ktail_).load(std::memory_order_acquire);
        for (; head != tail; ++head) f(cqes_[head & cq_mask_]);
        std::atomic_ref(*cq_khead_).store(head, std::memory_order_release);
    }

    // The common answer to a wait: exactly one CQE, and it carries `tag`.
    // Takes it and gives its result; takes nothing otherwise (reap() then).
    bool reap_only(std::uint64_t tag, int& res) noexcept {
        const unsigned head = *cq_khead_;
        const unsigned tail = std::atomic_ref(*cq_ktail_).load(std::memory_order_acquire);
        if (tail - head != 1) return false;
        const io_uring_cqe& cqe = cqes_[head & cq_mask_];
        if (cqe.user_data != tag) return false;
        res = cqe.res;
        std::atomic_ref(*cq_khead_).store(tail, std::memory_order_release);
        return true;
    }

private:
    // io_uring_enter, with the kernel's -errno convention. On x86-64 the
    // system call instruction itself: libc's variadic syscall() and its
    // argument shuffling were a third of what a wait through the ring costs
    // in user space beyond epoll's (the target: within 1.2x of epoll's
    // instructions per event; docs/benchmarks.md).
    long raw_enter(unsigned to_submit, unsigned wait_for, unsigned flags, const void* arg, std::size_t argsz) noexcept {
#if defined(__x86_64__) && !defined(__CPPCHECK__)
        // The last three arguments go to r10, r8 and r9 inside the asm, not
        // through register variables: code the compiler puts between setting
        // those and the asm (a sanitizer's call for a load) may clobber them.
        long ret = SYS_io_uring_enter;
        asm volatile(
            "mov %[flags], %%r10\n\t"
            "mov %[arg], %%r8\n\t"
            "mov %[argsz], %%r9\n\t"
            "syscall"
            : "+a"(ret)
            : "D"(long(fd_.get())), "S"(long(to_submit)),
              "d"(long(wait_for)), [flags] "r"(long(flags)), [arg] "r"(arg), [argsz] "r"(argsz)
            : "rcx", "r11", "r10", "r8", "r9", "memory");
        return ret;
#else
        const long n = ::syscall(SYS_io_uring_enter, fd_.get(), to_submit, wait_for, flags, arg, argsz);
        return n < 0 ? -errno : n;
#endif
    }

    unique_fd fd_;
    std::uint32_t features_ = 0;
    void* sq_map_ = MAP_FAILED;
    void* cq_map_ = MAP_FAILED;
    void* sqes_ = MAP_FAILED;
    std::size_t sq_map_len_ = 0, cq_map_len_ = 0, sqes_len_ = 0;
    unsigned* sq_khead_ = nullptr;
    unsigned* sq_ktail_ = nullptr;
    unsigned sq_mask_ = 0;
    unsigned sq_tail_ = 0;  // ours: SQEs filled; the kernel's tail is published by enter()
    unsigned* cq_khead_ = nullptr;
    unsigned* cq_ktail_ = nullptr;
    unsigned cq_mask_ = 0;
    io_uring_cqe* cqes_ = nullptr;
};

}  // namespace iowait::detail
