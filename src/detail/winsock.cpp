// Windows only: see winsock.hpp.
#include "detail/winsock.hpp"

#include <windows.h>

#include <cerrno>
#include <ctime>
#include <mutex>
#include <utility>

namespace iowait::detail {

std::error_code winsock_start() noexcept {
    static std::once_flag once;
    static int result = 0;
    std::call_once(once, [] {
        WSADATA data;
        result = ::WSAStartup(MAKEWORD(2, 2), &data);
    });
    return result ? wsa_error(result) : std::error_code{};
}

std::error_code wsa_error(int code) noexcept {
    auto generic = [](std::errc e) { return std::make_error_code(e); };
    switch (code) {
    case WSAENOTSOCK: return generic(std::errc::not_a_socket);
    case WSAEBADF: return generic(std::errc::bad_file_descriptor);
    case WSAEINVAL: return generic(std::errc::invalid_argument);
    case WSAEFAULT: return generic(std::errc::bad_address);
    case WSAEINTR: return generic(std::errc::interrupted);
    case WSAENOBUFS: return generic(std::errc::no_buffer_space);
    case WSAEMFILE: return generic(std::errc::too_many_files_open);
    case WSAEWOULDBLOCK: return generic(std::errc::operation_would_block);
    case WSAECONNREFUSED: return generic(std::errc::connection_refused);
    case WSAECONNRESET: return generic(std::errc::connection_reset);
    case WSAENOTCONN: return generic(std::errc::not_connected);
    case WSAEOPNOTSUPP: return generic(std::errc::operation_not_supported);
    case WSASYSNOTREADY:
    case WSAVERNOTSUPPORTED: return generic(std::errc::function_not_supported);
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return generic(std::errc::not_enough_memory);
    case ERROR_INVALID_HANDLE: return generic(std::errc::bad_file_descriptor);
    default: return {code, std::system_category()};
    }
}

std::error_code loopback_pair(SOCKET (&out)[2]) noexcept {
    out[0] = out[1] = INVALID_SOCKET;
    auto fail = [&](SOCKET listener) {
        const std::error_code ec = last_wsa_error();
        for (SOCKET s : {listener, out[0], out[1]})
            if (s != INVALID_SOCKET) ::closesocket(s);
        out[0] = out[1] = INVALID_SOCKET;
        return ec;
    };
    SOCKET listener = ::WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_NO_HANDLE_INHERIT);
    if (listener == INVALID_SOCKET) return last_wsa_error();
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int len = sizeof addr;
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || ::listen(listener, 1) != 0)
        return fail(listener);
    out[0] = ::WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_NO_HANDLE_INHERIT);
    if (out[0] == INVALID_SOCKET || ::connect(out[0], reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        return fail(listener);
    // Another local process could connect to the listener first: accept only
    // the peer whose address is our own connecting socket's.
    sockaddr_in mine{}, peer{};
    int mine_len = sizeof mine, peer_len = sizeof peer;
    if (::getsockname(out[0], reinterpret_cast<sockaddr*>(&mine), &mine_len) != 0) return fail(listener);
    for (int attempts = 0; attempts < 8; ++attempts) {
        peer_len = sizeof peer;
        out[1] = ::accept(listener, reinterpret_cast<sockaddr*>(&peer), &peer_len);
        if (out[1] == INVALID_SOCKET) return fail(listener);
        if (peer.sin_port == mine.sin_port && peer.sin_addr.s_addr == mine.sin_addr.s_addr) break;
        ::closesocket(std::exchange(out[1], INVALID_SOCKET));
    }
    if (out[1] == INVALID_SOCKET) {
        ::WSASetLastError(WSAECONNREFUSED);
        return fail(listener);
    }
    ::closesocket(listener);
    u_long on = 1;
    const BOOL nodelay = TRUE;
    for (SOCKET s : out) {
        if (::ioctlsocket(s, FIONBIO, &on) != 0) return fail(INVALID_SOCKET);
        // A wake is one byte: send it now, not after Nagle's delay.
        ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&nodelay), sizeof nodelay);
    }
    return {};
}

void send_wake_byte(SOCKET write_end) noexcept {
    const char one = 1;
    for (int attempt = 0; attempt < 100; ++attempt) {
        if (::send(write_end, &one, 1, 0) == 1 || ::WSAGetLastError() != WSAEWOULDBLOCK) return;
        fd_set writable;
        FD_ZERO(&writable);
        FD_SET(write_end, &writable);
        timeval limit{0, 100000};  // 100 ms: a full buffer stays full, an in-flight send ends
        if (::select(0, nullptr, &writable, nullptr, &limit) <= 0) return;
    }
}

unsigned long timeout_ms(const ::timespec* ts) noexcept {
    if (!ts) return INFINITE;
    const long double ms = (long double)ts->tv_sec * 1000 + (long double)(ts->tv_nsec + 999'999) / 1'000'000;
    constexpr unsigned long cap = INFINITE - 1;  // 49.7 days
    return ms >= cap ? cap : (unsigned long)ms;
}

}  // namespace iowait::detail
