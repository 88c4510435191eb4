// Windows only: the undocumented part of Winsock that the afd backend uses.
//
// IOCTL_AFD_POLL is the request that WSAPoll and select() themselves send to
// the AFD driver (\Device\Afd, Winsock's kernel side). Its structures are not
// in the SDK; their layout here is the one wepoll, mio, Rust's polling and
// libuv use, and Wine 8 implements (checked under Wine: see afd.cpp). The NT
// functions are looked up in ntdll.dll at run time, so that a system without
// them refuses the backend instead of failing to load the program.
#pragma once

#include <windows.h>
#include <winsock2.h>
#include <winternl.h>

#include <system_error>

namespace iowait::detail::afd {

constexpr ULONG ioctl_poll = 0x00012024;  // _AFD_CONTROL_CODE(AFD_POLL = 9, METHOD_BUFFERED)

// Poll events: what a request waits for, and what its completion reports.
enum : ULONG {
    poll_receive = 0x0001,
    poll_receive_expedited = 0x0002,
    poll_send = 0x0004,
    poll_disconnect = 0x0008,   // the peer shut down its sending side (FIN)
    poll_abort = 0x0010,        // the connection was reset
    poll_local_close = 0x0020,  // the socket was closed by this process
    poll_connect = 0x0040,
    poll_accept = 0x0080,
    poll_connect_fail = 0x0100,
};

struct poll_handle_info {
    HANDLE handle;
    ULONG events;
    NTSTATUS status;
};

struct poll_info {
    LARGE_INTEGER timeout;  // INT64_MAX: none
    ULONG number_of_handles;
    ULONG exclusive;
    poll_handle_info handles[1];
};

constexpr NTSTATUS status_pending = NTSTATUS(0x00000103L);
constexpr NTSTATUS status_cancelled = NTSTATUS(0xC0000120L);

// The four ntdll functions, or a refusal if one is missing.
struct ntdll {
    NTSTATUS(NTAPI* create_file)
    (PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, PLARGE_INTEGER, ULONG, ULONG, ULONG, ULONG, PVOID,
     ULONG) = nullptr;
    NTSTATUS(NTAPI* device_io_control_file)
    (HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, ULONG, PVOID, ULONG, PVOID, ULONG) = nullptr;
    NTSTATUS(NTAPI* cancel_io_file_ex)(HANDLE, PIO_STATUS_BLOCK, PIO_STATUS_BLOCK) = nullptr;
    ULONG(NTAPI* status_to_dos_error)(NTSTATUS) = nullptr;

    // Looked up once per process; null if ntdll lacks any of them.
    static const ntdll* get() noexcept;
    // An NTSTATUS as an error code: the matching Win32 error, then errno where one fits.
    std::error_code error(NTSTATUS status) const noexcept;
};

}  // namespace iowait::detail::afd
