// Precompiled header for punctual's test executables (CMake: target_precompile_headers; Meson:
// cpp_pch). Only third-party and standard headers belong here — never punctual's own: each test
// file must still include what it uses, and the header self-compile check builds without it.
// An include guard, not #pragma once: Meson compiles this file as a main file, where GCC warns
// about #pragma once.
#ifndef PUNCTUAL_TESTS_PCH_HPP
#define PUNCTUAL_TESTS_PCH_HPP

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <asio.hpp>

#endif  // PUNCTUAL_TESTS_PCH_HPP
