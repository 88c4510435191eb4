// The methods of iowait._iowait (module.cpp) as CPython's own methods are
// made: a vectorcall function (METH_FASTCALL | METH_KEYWORDS) per method,
// whose arguments are parsed here, so that a wrong call is a TypeError in
// the standard library's words naming the public call and its parameters
// ("EPollIOWait.wait(timeout=None) takes at most 1 argument (2 given)"),
// never the binding layer's ("incompatible function arguments"), and so
// that a call on the wait path costs no more than the standard library's.
#pragma once

#include <pybind11/pybind11.h>

#include <array>
#include <new>
#include <string>
#include <string_view>

namespace iowait_python {

namespace py = pybind11;

// A method's parameters: `signature` is how help() shows it without the
// class ("wait(timeout=None)"); `names` the parameters in order, the first
// `required` of them required.
template <std::size_t N>
struct parameters {
    const char* signature;
    std::array<const char*, N> names;
    std::size_t required;
};

// The call as a message names it: "EPollIOWait.wait(timeout=None)".
inline std::string call_text(const char* owner, const char* signature) { return std::string(owner) + "." + signature; }

// The arguments of a vectorcall, positional first, then keywords by name,
// in the order of p.names; null where one was not given. A wrong call sets
// a TypeError in the words of CPython's methods and throws.
template <std::size_t N>
std::array<PyObject*, N> parse(const char* owner, const parameters<N>& p, PyObject* const* args, Py_ssize_t nargs,
                               PyObject* kwnames) {
    std::array<PyObject*, N> out{};
    const auto fail = [&](const std::string& what) {
        PyErr_SetString(PyExc_TypeError, (call_text(owner, p.signature) + " " + what).c_str());
        throw py::error_already_set();
    };
    if (std::size_t(nargs) > N) {
        if (N == 0) fail("takes no arguments (" + std::to_string(nargs) + " given)");
        fail(std::string(p.required == N ? "takes exactly " : "takes at most ") + std::to_string(N) +
             (N == 1 ? " argument (" : " arguments (") + std::to_string(nargs) + " given)");
    }
    for (Py_ssize_t i = 0; i < nargs; ++i) out[std::size_t(i)] = args[i];
    const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; ++k) {
        PyObject* key = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t len = 0;
        const char* name = PyUnicode_AsUTF8AndSize(key, &len);
        if (!name) throw py::error_already_set();
        std::size_t i = 0;
        while (i < N && std::string_view(p.names[i]) != std::string_view(name, std::size_t(len))) ++i;
        if (i == N) fail("got an unexpected keyword argument '" + std::string(name, std::size_t(len)) + "'");
        if (out[i]) fail("got multiple values for argument '" + std::string(p.names[i]) + "'");
        out[i] = args[nargs + k];
    }
    for (std::size_t i = 0; i < p.required; ++i)
        if (!out[i])
            fail("missing required argument '" + std::string(p.names[i]) + "' (pos " + std::to_string(i + 1) + ")");
    return out;
}

// Runs a method's body, turning a C++ exception into the Python error it
// carries (or means) and null, as CPython's methods return.
template <class F>
PyObject* guarded(F body) noexcept {
    try {
        return body();
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (const py::builtin_exception& e) {
        e.set_error();
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}

}  // namespace iowait_python
