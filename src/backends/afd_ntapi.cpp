// Windows only: see afd_ntapi.hpp.
#include "backends/afd_ntapi.hpp"

#include "detail/winsock.hpp"

namespace iowait::detail::afd {

namespace {
template <class F>
bool load(HMODULE module, const char* name, F& f) {
    // GetProcAddress returns a generic FARPROC; the cast through void* is
    // the documented way to give it its real type.
    f = reinterpret_cast<F>(reinterpret_cast<void*>(::GetProcAddress(module, name)));
    return f != nullptr;
}

ntdll load_all() {
    ntdll nt;
    const HMODULE module = ::GetModuleHandleW(L"ntdll.dll");
    if (!module || !load(module, "NtCreateFile", nt.create_file) ||
        !load(module, "NtDeviceIoControlFile", nt.device_io_control_file) ||
        !load(module, "NtCancelIoFileEx", nt.cancel_io_file_ex) ||
        !load(module, "RtlNtStatusToDosError", nt.status_to_dos_error))
        nt.create_file = nullptr;
    return nt;
}
}  // namespace

const ntdll* ntdll::get() noexcept {
    static const ntdll nt = load_all();
    return nt.create_file ? &nt : nullptr;
}

std::error_code ntdll::error(NTSTATUS status) const noexcept { return wsa_error(int(status_to_dos_error(status))); }

}  // namespace iowait::detail::afd
